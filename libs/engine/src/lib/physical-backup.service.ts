import { availableParallelism } from 'node:os';
import { Readable } from 'node:stream';
import {
  ArtifactRecord,
  BackupManifest,
  ConfigError,
  InvariantError,
  SourceUnavailableError,
  StorageClass,
  TablespaceRecord,
  TierName,
  parseLsn,
  rootCauseOf,
  signManifest,
  walSegmentName,
} from '@rookery/core';
import { type BasebackupResult, INCREMENTAL_BASE_BACKUP_MIN_VERSION, describePgUrl } from '@rookery/postgres';
import { WalArchive, WalSystemRecord, walLayout } from '@rookery/repository';
import { ArtifactEncoding, artifactFileName, writeArtifact } from './artifact.codec';
import { cleanUpFailedBackup } from './backup-cleanup';
import { allocateBackupId } from './backup-ids';
import type { NamedBackupRequest } from './backup-run';
import { PageIndexLookup, PageIndexWriter, SpillStore, writeIncremental } from './block-incremental';
import { EngineContext } from './engine.context';
import {
  INDEX_SPILL_MEMORY_BYTES,
  IncrementalParent,
  TarKey,
  chainReadOptions,
  chooseIncrementalParent,
  decodedArtifact,
  indexWhileStoring,
  loadParentIndexes,
} from './physical-incremental';
import { ServerFacts } from './postgres.tools';

/**
 * A physical backup of a tier: the base tar (with the WAL that makes it consistent) and one tar
 * per user tablespace streamed through the pipeline straight into the primary store, then the
 * manifest. On a tier that takes block incrementals, each tar's page index is stored beside it, and
 * an incremental stores each tar as the pages changed since the parent's (physical-incremental.ts).
 */
export class PhysicalBackupService {
  constructor(private readonly context: EngineContext) {}

  async backup(request: NamedBackupRequest): Promise<BackupManifest> {
    const { config, repository, lock, postgres } = this.context;
    const tier = config.tiers[request.tier];
    const url = tier.pgUrl?.reveal();
    if (!url) {
      throw new ConfigError(`no database URL for tier '${request.tier}'`, [`tiers.${request.tier}.pgUrl`], {
        hint: `set tiers.${request.tier}.pgUrl in rookery.yaml or pass --pg-url`,
      });
    }
    const now = request.now;

    // Fail before the backup starts if the store or the database cannot be reached (both asked at once).
    const archive = new WalArchive(repository.store, repository.keyring);
    const [, server, totalBytes, listed] = await Promise.all([
      repository.store.check(),
      postgres.control.serverInfo(url),
      postgres.control.clusterSize(url).catch(() => undefined),
      postgres.control.tablespaces(url),
    ]);
    const tablespaces = checkTablespaces(describePgUrl(url), server, listed);
    // The tier's WAL archive belongs to one database system: a backup of another could never be
    // rolled forward with it. Read (and its signature checked) before anything is written.
    const recorded = await archive.system(request.tier);
    requireArchivedSystem(request.tier, server, recorded);

    // One backup per tier at a time: a second request fails fast with LockHeldError.
    const held = await lock.acquire(request.tier, { holder: `rookery backup (${this.context.actor})` });
    let cleaned = false;
    let named: { tier: TierName; id: string; startedAt: string } | undefined;
    try {
      const startedAt = now();
      // Named by its BackupRun before the lock; checked again now that no other run can take it.
      const id = await allocateBackupId(repository, request.tier, startedAt, request.id);
      named = { tier: request.tier, id, startedAt: startedAt.toISOString() };
      const encoding: ArtifactEncoding = this.context.encoding;
      // A tier that takes block incrementals indexes the pages of every backup (the next
      // incremental compares against them); an incremental is taken against the tier's newest
      // backup, or taken as a full when the chain is at its policy bound (said as a warning).
      const chainPolicy = tier.policy.physical?.incremental;
      let parent: IncrementalParent | null = null;
      if (request.type === 'incremental' && chainPolicy) {
        const choice = chooseIncrementalParent((await repository.list(request.tier)).backups, {
          policy: chainPolicy,
          systemIdentifier: server.systemIdentifier,
          now: startedAt,
        });
        if ('reason' in choice) request.onWarning?.(`backup ${id} is taken as a full backup, not an incremental: ${choice.reason}`);
        else parent = choice;
      }
      const taken = await this.takeBaseBackup({
        url,
        label: `rookery ${id}`,
        checkpoint: tier.checkpoint,
        // The pages must reach rookery uncompressed for an incremental to compare them.
        serverCompresses:
          !parent && Boolean(encoding.serverCompression) && encoding.compression.codec === 'zstd' && server.versionNum >= 150_000,
        indexing: chainPolicy !== undefined,
        parent,
        // An incremental's page index as a delta against its parent's (physical.incremental.deltaIndex, default on).
        deltaIndex: chainPolicy?.deltaIndex !== false,
        // PostgreSQL 17+ with summarize_wal sends only the changed blocks (BASE_BACKUP INCREMENTAL
        // against the parent's backup_manifest); before that, every page comes and rookery compares.
        serverIncremental:
          parent !== null &&
          server.versionNum >= INCREMENTAL_BASE_BACKUP_MIN_VERSION &&
          server.summarizeWal === true &&
          parent.parent.artifacts.some((artifact) => artifact.kind === 'pg-manifest'),
        tablespaces,
        encoding,
        keyOf: (name) => repository.artifactKey({ tier: request.tier, id, startedAt: startedAt.toISOString() }, name),
        backup: { tier: request.tier, id },
        storageClass: tier.policy.storageClass,
        signal: request.signal,
        onBytes: (bytes) => request.onProgress?.({ phase: 'backup', artifact: 'base.tar', bytes, totalBytes }),
      });
      const { result, artifacts } = taken;
      // Read after the backup stopped: every xid below it was assigned before the backup ended,
      // which is what lets a restore to a target xid pick this backup (recovery-window.ts).
      const nextXid = await postgres.control.nextXid(url).catch(() => undefined);
      const finishedAt = now();

      const manifest = signManifest({
        formatVersion: 1,
        id,
        tier: request.tier,
        database: tier.policy.database,
        type: parent ? 'incremental' : 'full',
        method: 'physical',
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        postgres: {
          version: server.version,
          versionNum: server.versionNum,
          systemIdentifier: server.systemIdentifier,
        },
        timeline: result.timeline,
        startLsn: result.startLsn,
        stopLsn: result.stopLsn,
        walRange: {
          start: walSegmentName(result.timeline, parseLsn(result.startLsn)),
          stop: walSegmentName(result.timeline, parseLsn(result.stopLsn)),
        },
        ...(nextXid ? { nextXid } : {}),
        ...(server.librarySettings ? { librarySettings: server.librarySettings } : {}),
        parent: parent ? parent.parent.id : null,
        retentionUntil: new Date(finishedAt.getTime() + tier.policy.retentionDays * 86_400_000).toISOString(),
        storageClass: tier.policy.storageClass,
        regions: [this.context.primaryRegion],
        bytes: artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
        storedBytes: artifacts.reduce((sum, artifact) => sum + artifact.storedBytes, 0),
        artifacts,
        tool: { name: 'rookery', version: this.context.version },
      });
      // The tier's first backup records the system its WAL archive is for (or the first wal-push does).
      if (!recorded && server.walSegmentSize && manifest.walRange) {
        await archive.recordSystem(request.tier, {
          systemIdentifier: server.systemIdentifier,
          segmentSize: server.walSegmentSize,
          firstSegment: manifest.walRange.start,
          recordedAt: finishedAt.toISOString(),
        });
      }
      // The manifest is written last: until it exists, this backup does not.
      return await repository.commit(manifest);
    } catch (error) {
      // A failed backup takes what it wrote with it, before the lock lets the next one start.
      cleaned = true;
      await cleanUpFailedBackup(repository, { tier: request.tier, lock: held, backup: named }, { onWarning: request.onWarning });
      throw error;
    } finally {
      if (!cleaned) await held.release().catch(() => undefined);
    }
  }

  /**
   * The base tar (with the WAL that makes it consistent) and one tar per user tablespace streamed
   * into the store. With a PostgreSQL 15+ server and compression.location 'server', the server
   * compresses while it sends (BASE_BACKUP over the replication protocol) and PostgreSQL's
   * backup_manifest is stored beside the tars. Otherwise the tars are compressed here: taken by
   * pg_basebackup (one tar with backup_manifest as its last member) for a cluster without
   * tablespaces, and over the replication protocol, uncompressed, for one with tablespaces:
   * pg_basebackup writes a single archive to a pipe (`can only write single tablespace to
   * stdout`), and writing -Ft to a directory would need local disk as large as the backup.
   * Either way a failed backup rejects and aborts the store writes: no manifest follows.
   */
  private async takeBaseBackup(options: {
    url: string;
    label: string;
    checkpoint: 'fast' | 'spread';
    serverCompresses: boolean;
    /** Store a page index beside each tar (a tier that takes block incrementals). */
    indexing: boolean;
    /** Take an incremental against this parent: each tar becomes an incremental of the parent's. */
    parent: IncrementalParent | null;
    /** Store an incremental's page index of a tar the parent has as a delta against the parent's (off: full indexes). */
    deltaIndex: boolean;
    /** Ask the server for the incremental (PostgreSQL 17+, summarize_wal), uploading the parent's backup_manifest. */
    serverIncremental: boolean;
    tablespaces: TablespaceRecord[];
    encoding: ArtifactEncoding;
    keyOf: (name: string) => string;
    backup: Pick<BackupManifest, 'tier' | 'id'>;
    storageClass: StorageClass;
    signal?: AbortSignal;
    onBytes: (bytes: number) => void;
  }): Promise<{ result: BasebackupResult; artifacts: ArtifactRecord[] }> {
    const { postgres, repository } = this.context;
    const { encoding } = options;
    const common = { encoding, backup: options.backup, storageClass: options.storageClass, signal: options.signal };
    const name = artifactFileName('base.tar', encoding);
    if (!options.serverCompresses && options.tablespaces.length === 0 && !options.indexing) {
      const basebackup = postgres.basebackup.start(options);
      // The driver's stream ends only once pg_basebackup exited 0, and errors otherwise: a failed
      // pg_basebackup aborts the store write instead of leaving a short artifact.
      const artifact = await writeArtifact(repository.store, options.keyOf(name), basebackup.stream, {
        ...common,
        name,
        kind: 'base-tar',
        onLogicalBytes: options.onBytes,
      });
      return { result: await basebackup.result, artifacts: [artifact] };
    }

    // The parent's page indexes are read before the server starts sending: it would wait meanwhile.
    const spills: SpillStore[] = [];
    const spill = () => {
      const store = new SpillStore({ memoryBytes: INDEX_SPILL_MEMORY_BYTES });
      spills.push(store);
      return store;
    };
    try {
      const parentIndexes = options.parent
        ? await loadParentIndexes(options.parent, { ...chainReadOptions(this.context, options.signal), spill: spill() })
        : null;
      return await this.takeOverProtocol(options, name, common, parentIndexes, spill);
    } finally {
      await Promise.all(spills.map((store) => store.close()));
    }
  }

  /**
   * The replication-protocol path of takeBaseBackup: every archive the server sends stored as a
   * tar (its page index beside it when indexing), or, against a parent's indexes, as an
   * incremental of the parent's same tar (a tablespace the parent lacks: against nothing).
   */
  private async takeOverProtocol(
    options: Parameters<PhysicalBackupService['takeBaseBackup']>[0],
    name: string,
    common: { encoding: ArtifactEncoding; backup: Pick<BackupManifest, 'tier' | 'id'>; storageClass: StorageClass; signal?: AbortSignal },
    parentIndexes: Map<TarKey, PageIndexLookup> | null,
    spill: () => SpillStore,
  ): Promise<{ result: BasebackupResult; artifacts: ArtifactRecord[] }> {
    const { postgres, repository } = this.context;
    const { encoding } = options;
    const compression = options.serverCompresses ? { codec: 'zstd' as const, level: encoding.compression.level } : undefined;
    const parentManifest = options.serverIncremental && options.parent ? options.parent.parent : null;
    const parentManifestArtifact = parentManifest?.artifacts.find((artifact) => artifact.kind === 'pg-manifest');
    const backup = postgres.basebackup.startServerCompressed({
      url: options.url,
      label: options.label,
      checkpoint: options.checkpoint,
      compression: compression && { ...compression, workers: encoding.workers || availableParallelism() },
      signal: options.signal,
      onProgress: options.onBytes,
      ...(parentManifest && parentManifestArtifact
        ? {
            incremental: {
              parentManifest: decodedArtifact(parentManifest, parentManifestArtifact, chainReadOptions(this.context, options.signal)),
              parentLabel: parentManifest.id,
            },
          }
        : {}),
    });
    // A page index is stored uncompressed (its page digests do not compress), encrypted like the
    // tar. PostgreSQL's backup_manifest (JSON, about 150 bytes per file: 140 KiB for a thousand
    // files) compresses about 3× and is compressed like any artifact: beside a small incremental
    // it is a good part of what the backup stores.
    const plain: ArtifactEncoding = { ...encoding, compression: { codec: 'none', level: 0 } };
    const manifestName = artifactFileName('backup_manifest', encoding);
    // Every write starts as its stream does: the manifest arrives while the tar's store write is
    // still being made durable. A failure of any stops the backup, which fails the others.
    // The protocol client's buffers come back to it once the store has written them (a store with
    // write-completion hooks; with another the slabs are left to the garbage collector). A chunk
    // reaches the store as the client gave it when no stage between them makes new buffers (a
    // server-compressed tar is only counted and hashed on its way); compressed here or encrypted,
    // the store sees other buffers, which the client does not know and ignores.
    // backup.reuseBuffers off: every slab is fresh memory (the plain path the reuse is proved against).
    // Indexed or compared against a parent, a chunk is still read after the store wrote it: no reuse.
    const onWritten = this.context.config.backup.reuseBuffers && !options.indexing ? backup.release : undefined;
    // The failure that explains the others decides, in the order they came: the tar's ENOSPC, not
    // the end of the manifest stream it caused.
    const failures: unknown[] = [];
    const noted = <T>(write: Promise<T>) => write.catch((error: unknown) => (failures.push(error), Promise.reject(error)));
    const write = (
      stream: Readable,
      extra: { name: string; kind: ArtifactRecord['kind'] },
      as: ArtifactEncoding,
      precompressed?: typeof compression,
    ) =>
      writeArtifact(repository.store, options.keyOf(extra.name), stream, { ...common, encoding: as, ...extra, precompressed, onWritten });
    const withTablespace = (record: ArtifactRecord, tablespace?: TablespaceRecord) => (tablespace ? { ...record, tablespace } : record);
    // One tar as the server sent it: the full tar, or an incremental against the parent's same tar;
    // with its page index when indexing. The tar's own record comes first.
    const storeTar = async (
      stream: Readable,
      tar: { key: TarKey; base: string; tablespace?: TablespaceRecord },
    ): Promise<ArtifactRecord[]> => {
      const kind = tar.tablespace ? 'tablespace' : 'base';
      const label = `${tar.base}.tar of backup ${options.backup.id}`;
      // Against a parent's index of the same tar, by default only what changed since it: the full
      // index is ~16 bytes per page and does not compress, more than the changed pages themselves.
      const storeIndex = async (index: PageIndexWriter, against?: { lookup: PageIndexLookup; parentId: string }) => {
        const indexName = artifactFileName(`${tar.base}.pgidx`, plain);
        const serialized = against
          ? index.serializeDelta(against.lookup, { backupId: options.backup.id, parentId: against.parentId })
          : index.serialize();
        const record = await write(serialized, { name: indexName, kind: 'page-index' }, plain);
        return withTablespace(against ? { ...record, pageIndex: { deltaOf: against.parentId } } : record, tar.tablespace);
      };
      if (parentIndexes && options.parent) {
        const parentIndex = parentIndexes.get(tar.key);
        const writing = writeIncremental({
          tar: stream,
          label,
          header: { backupId: options.backup.id, parentId: options.parent.parent.id },
          parent: parentIndex ?? PageIndexLookup.none(),
          index: new PageIndexWriter(spill()),
          serverIncremental: parentManifest !== null,
        });
        const incrementalName = artifactFileName(`${tar.base}.blkinc`, encoding);
        const record = await write(writing.artifact, { name: incrementalName, kind: `${kind}-incremental` }, encoding);
        const { index, counts } = await writing.result;
        const incremental = {
          pagesRead: counts.pagesRead,
          pagesStored: counts.pagesStored,
          wholeFiles: counts.wholeFiles,
          removed: counts.removed,
          // PostgreSQL 17+: the pages the server did not send (unchanged by its WAL summaries).
          ...(parentManifest ? { pagesSkipped: counts.pagesSkipped } : {}),
        };
        const against = parentIndex && options.deltaIndex ? { lookup: parentIndex, parentId: options.parent.parent.id } : undefined;
        return [withTablespace({ ...record, incremental }, tar.tablespace), await storeIndex(index, against)];
      }
      const tarName = artifactFileName(`${tar.base}.tar`, encoding);
      if (!options.indexing) {
        return [withTablespace(await write(stream, { name: tarName, kind: `${kind}-tar` }, encoding, compression), tar.tablespace)];
      }
      const indexing = indexWhileStoring(stream, { label, spill: spill(), compression });
      const record = await write(indexing.stored, { name: tarName, kind: `${kind}-tar` }, encoding, compression);
      return [withTablespace(record, tar.tablespace), await storeIndex(await indexing.index)];
    };
    // PostgreSQL sends the tablespaces' archives first, the data directory's last.
    const tablespaceWrites = noted(
      (async () => {
        const writes: Promise<ArtifactRecord[]>[] = [];
        try {
          for await (const archive of backup.tablespaces) {
            const tablespace = tablespaceOf(options.tablespaces, archive.oid, archive.location);
            const stored = storeTar(archive.stream, { key: `tablespace:${archive.oid}`, base: `tablespace-${archive.oid}`, tablespace });
            // Handled at once: a write that fails while the next archive is awaited (a full store)
            // is no unhandled rejection, which would end the process before the cleanup; noted()
            // records its failure, and Promise.all below rejects with it.
            noted(stored).catch(() => undefined);
            writes.push(stored);
          }
        } finally {
          // Every tablespace's write has settled before the backup fails: one still being
          // written when the cleanup removes the backup's objects would be left behind.
          await Promise.allSettled(writes);
        }
        return (await Promise.all(writes)).flat();
      })(),
    );
    const writes = await Promise.allSettled([
      noted(storeTar(backup.archive, { key: 'base', base: 'base' })),
      tablespaceWrites,
      noted(write(backup.manifest, { name: manifestName, kind: 'pg-manifest' }, encoding)),
    ]);
    if (failures.length > 0) throw rootCauseOf(failures);
    const [base, tablespaces, manifest] = writes.map(
      (write) => (write as PromiseFulfilledResult<ArtifactRecord | ArtifactRecord[]>).value,
    ) as [ArtifactRecord[], ArtifactRecord[], ArtifactRecord];
    const result = await backup.result;
    // Compressed by the server, a tar's size is the server's count (PostgreSQL 15+ always sends it).
    const sized = (record: ArtifactRecord) => {
      if (!compression || (record.kind !== 'base-tar' && record.kind !== 'tablespace-tar')) return record;
      const bytes = record.tablespace ? result.tablespaceBytes[record.tablespace.oid] : result.archiveBytes;
      return bytes === undefined ? record : { ...record, bytes };
    };
    const missing = options.tablespaces.filter((listed) => !tablespaces.some((record) => record.tablespace?.oid === listed.oid));
    if (missing.length > 0) {
      throw new InvariantError(
        `the base backup sent no archive for tablespace ${missing.map((entry) => `'${entry.name}' (${entry.oid})`).join(', ')}: it was dropped during the backup; take the backup again`,
      );
    }
    return { result, artifacts: [...base, ...tablespaces, manifest].map(sized) };
  }
}

/** The tablespace an archive is for, named as pg_tablespace named it before the backup started. */
function tablespaceOf(listed: TablespaceRecord[], oid: number, location: string): TablespaceRecord {
  // A tablespace created after the list was read has no name here: the OID stands in for it.
  return { oid, name: listed.find((entry) => entry.oid === oid)?.name ?? String(oid), location };
}

/**
 * The user tablespaces of the server, refused when one is inside the data directory (PostgreSQL
 * warns against it: its files would be both in the data directory's archive and in its own).
 * A cluster with tablespaces needs PostgreSQL 15+ (the replication protocol client takes them).
 */
export function checkTablespaces(
  target: string,
  server: Pick<ServerFacts, 'versionNum' | 'dataDirectory'>,
  tablespaces: TablespaceRecord[],
): TablespaceRecord[] {
  const data = server.dataDirectory?.replace(/\/+$/, '');
  for (const tablespace of tablespaces) {
    if (!tablespace.location.startsWith('/'))
      throw new SourceUnavailableError(
        `cannot back up ${target}: tablespace '${tablespace.name}' has no absolute location ('${tablespace.location}')`,
        {
          retryable: false,
        },
      );
    if (data && (tablespace.location === data || tablespace.location.startsWith(`${data}/`))) {
      throw new SourceUnavailableError(
        `cannot back up ${target}: tablespace '${tablespace.name}' (${tablespace.oid}) is inside the data directory (${tablespace.location})`,
        {
          retryable: false,
          hint: 'PostgreSQL warns against tablespaces inside the data directory; create one outside it and move the tables (ALTER TABLE … SET TABLESPACE), then drop this one',
        },
      );
    }
  }
  if (tablespaces.length > 0 && server.versionNum < 150_000) {
    throw new SourceUnavailableError(
      `cannot back up ${target}: it has ${tablespaces.length} user tablespace(s), which rookery backs up from PostgreSQL 15 on (server ${server.versionNum})`,
      {
        retryable: false,
        hint: 'pg_basebackup cannot write more than one tablespace to a pipe; upgrade the server, or move the tables into pg_default',
      },
    );
  }
  return tablespaces;
}

/** Refuses a server other than the one the tier's WAL archive records (another cluster, or one re-initialised). */
function requireArchivedSystem(tier: TierName, server: ServerFacts, recorded: WalSystemRecord | null): void {
  if (!recorded) return;
  const other =
    recorded.systemIdentifier !== server.systemIdentifier
      ? `database system ${server.systemIdentifier}, but tier '${tier}' archives system ${recorded.systemIdentifier}`
      : server.walSegmentSize !== undefined && server.walSegmentSize !== recorded.segmentSize
        ? `a server with WAL segments of ${server.walSegmentSize} bytes, but tier '${tier}' archives segments of ${recorded.segmentSize} bytes`
        : null;
  if (!other) return;
  throw new ConfigError(`tiers.${tier}.pgUrl points at ${other}; nothing was backed up`, [`tiers.${tier}.pgUrl`], {
    hint: `a tier's backups and WAL archive belong to one cluster: point pgUrl at it; if the tier's cluster was re-created (initdb, pg_upgrade), its old WAL cannot serve the new one: remove ${walLayout.systemKey(tier)} (or use a new repository) so that the next backup records the new system`,
  });
}
