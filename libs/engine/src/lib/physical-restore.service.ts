import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { chmod, chown, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  ArtifactRecord,
  BackupManifest,
  ConfigError,
  IncrementalChainError,
  IntegrityError,
  InvariantError,
  PHYSICAL_DATA_KINDS,
  RecoveryTarget,
  RestoreTargetError,
  RookeryError,
  TierName,
  ToolFailedError,
  WalFileName,
  describeRecoveryTarget,
  parseWalFileName,
  rootCauseOf,
  walSegmentFileName,
} from '@rookery/core';
import { ChainLink, PAGE_SIZE, PageIndexLookup, SpillStore, combineChain, patchChainInto, readChain, tarEnd } from './block-incremental';
import { resolveChain } from './logical-incremental.service';
import {
  ChainReadOptions,
  artifactReadOptions,
  chainReadOptions,
  dataArtifactOf,
  decodedArtifact,
  pageIndexOf,
  tarKeyOf,
} from './physical-incremental';
import { TablespaceMapping, linkTablespaces, planTablespaces } from './tablespace-restore';
import { PREFETCH_DIRECTORY, WalPrefetcher, WalPrefetcherSummary, WalService, clearPrefetchSpool, encryptionRequired } from '@rookery/wal';
import { ArtifactConsumer, keyMaterialFor, readArtifact, readArtifactInto } from './artifact.codec';
import { EngineContext } from './engine.context';
import { ExtractionSync } from './extraction-sync';
import { ProgressListener } from './engine.progress';
import { DeltaApplyCounts, checkDeltaTarget, startDeltaApply, withdrawControlFile } from './delta-restore';
import { TarExtraction } from './tar-extraction.factory';
import { RESTORED_SERVER_LOG } from './postgres.tools';
import { RecoveryOutcome, parseRecoveryLog, recoveryFailed, waitForPromotion } from './recovery-outcome';
import { RecoveryPlanService } from './recovery-plan.service';
import { RecoverySettingsRequest, guardedSettings, writeEnvironmentFile, writeRecoverySettings } from './recovery-settings';
import { GUARDED_LIBRARY_SETTINGS, SettingsGuardReport, neutraliseRestoredSettings } from './settings-guard';

export interface PhysicalRestoreRequest {
  tier: TierName;
  /** A backup id or 'latest'. */
  backup: string;
  /** The data directory to create; must be absent or empty (unless delta). */
  to: string;
  /**
   * `to` is an existing data directory of the backup's database system, stopped: only what
   * differs from the backup is written, what the backup lacks is removed (delta-restore.ts). Its
   * tablespace directories are rewritten likewise (or filled when absent or empty).
   */
  delta?: boolean;
  start?: boolean;
  port?: number;
  /**
   * Where recovery stops; default latest (the end of the archived WAL). Any target needs the
   * engine's selfCommand, which the restore_command runs.
   */
  target?: RecoveryTarget;
  /** 'keep' (default): the restored server archives like the backed-up one, on its new timeline. */
  archiveMode?: 'keep' | 'off';
  /**
   * The base backup exactly as taken: no recovery settings are written, whatever the engine's
   * selfCommand (the validator's integrity check runs pg_verifybackup against the result, which
   * compares every file with the backup_manifest). Not with a target or archiveMode.
   */
  bare?: boolean;
  /**
   * Leave the backup's command and library settings as they are (archive_command,
   * recovery_end_command, shared_preload_libraries, …). Dangerous: a tampered backup then runs
   * its commands on this host. By default they are commented out and reported (settings-guard).
   */
  keepSettings?: boolean;
  /** How long --start waits for recovery to finish and the server to be promoted. */
  recoveryTimeoutMs?: number;
  /**
   * Where the backup's user tablespaces go; by default each to its original location. `map`:
   * tablespace (its original location, name or OID) → directory; `all`: every tablespace not in
   * `map` under all/<oid> (drills and validations put them in their scratch directory).
   */
  tablespaces?: TablespaceMapping;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

export interface PhysicalRestoreResult {
  manifest: BackupManifest;
  dataDirectory: string;
  /** Where each user tablespace was restored (pg_tblspc/<oid> points there). */
  tablespaces: { oid: number; name: string; location: string; restoredTo: string }[];
  bytes: number;
  /** Of `bytes`, how many went to disk with O_DIRECT (big files) rather than through the page cache. */
  directBytes: number;
  /** Set when the server was started: the port it accepts connections on. */
  startedOnPort?: number;
  /** With delta: what was kept, rewritten and removed, over the data directory and its tablespaces. */
  delta?: DeltaApplyCounts;
  /** What rookery neutralised in the restored configuration; null with keepSettings or bare. */
  settings: SettingsGuardReport | null;
  /** Set when recovery settings were written: the target, and with --start what recovery reached. */
  recovery?: { target: RecoveryTarget; description: string; outcome?: RecoveryOutcome };
  /**
   * With --start and the prefetcher run by the restore itself (restore.prefetchInProcess): the
   * segments it fetched ahead while the server recovered, and why it last stopped fetching ahead.
   */
  prefetch?: { fetched: number; stoppedAt: string | null };
  /**
   * Where the time went, in milliseconds: planning (choosing the backup, checking the target and
   * the directory), fetching + verifying + extracting, making it durable, and with --start the
   * server's start, recovery and promotion.
   */
  timings: { planMs: number; extractMs: number; syncMs: number; startMs?: number };
}

/**
 * The restore_command's and archive_command's environment (store credentials, encryption key),
 * 0600 and the server's account's, in pg_wal: never in a base backup taken of the restored server.
 */
export const RESTORE_ENV_FILE = join('pg_wal', 'rookery-restore.env');

const DEFAULT_RECOVERY_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/** Held back under another name until every check passed: without it, PostgreSQL refuses to start. */
const CONTROL_FILE = 'global/pg_control';
const PENDING_SUFFIX = '.rookery-pending';
/**
 * The changed pages of a chain kept in memory before they go to the spill file: small, since the
 * file is read back in blocks that mostly come from the page cache (which is not this process's
 * RSS), and the restore's memory is what the operator sized the host for.
 */
const CHAIN_SPILL_MEMORY_BYTES = 16 * 1024 * 1024;

/**
 * Restores a physical backup into an empty data directory. The bytes are verified while they
 * stream (stored sha256, GCM tags, logical sha256), but the tar is extracted as it arrives, so the
 * directory is untrusted until the end: global/pg_control is held back under a temporary name and
 * only renamed into place once every check passed and every file is synced. On any failure the
 * directory is emptied, so nothing half-written can be mistaken for a usable cluster.
 */
export class PhysicalRestoreService {
  private readonly planner: RecoveryPlanService;

  constructor(
    private readonly context: EngineContext,
    private readonly wal: WalService = new WalService(context),
  ) {
    this.planner = new RecoveryPlanService(context, wal);
  }

  async restore(request: PhysicalRestoreRequest): Promise<PhysicalRestoreResult> {
    const { repository, postgres } = this.context;
    const clock = new PhaseClock();
    // The target is checked against the recoverable window and the backup chosen before anything
    // is written: a refused target leaves the directory as it was (or absent).
    const recovery = this.recoverySettings(request);
    const manifest = recovery
      ? (await this.planner.plan(request.tier, recovery.target, request.backup)).backup
      : await repository.find(request.tier, request.backup);
    if (manifest.method !== 'physical') {
      throw new RestoreTargetError(`backup '${manifest.id}' is ${manifest.method}; --to restores physical backups`, {
        hint: 'restore logical backups with --target-url',
      });
    }
    const keyMaterial = keyMaterialFor(manifest, this.context.encoding);
    // An incremental restores as its chain, per tar, newest page wins (the full extracted and the
    // newer pages written over it, or combined in one pass: restore.chainInPlace): every link must
    // be in the repository, intact, before anything is written.
    const chain = manifest.type === 'incremental' ? resolveChain((await repository.list(request.tier)).backups, manifest) : [manifest];
    const dataDirectory = resolve(request.to);
    const secrets = this.context.restoreCommandEnvironment ?? {};
    if (recovery && Object.keys(secrets).length > 0) recovery.envFile = join(dataDirectory, RESTORE_ENV_FILE);
    // Refuse before fetching anything: never write into a directory that holds something, and
    // know where every tablespace goes (the mapping names only tablespaces of this backup).
    const tablespaces = planTablespaces(manifest, dataDirectory, request.tablespaces ?? {});
    if (request.delta) {
      // A delta rewrites a stopped copy of the same system; from the moment pg_control is
      // withdrawn the directory cannot be started until a restore into it completes.
      await checkDeltaTarget(dataDirectory, manifest, tablespaces);
      await withdrawControlFile(dataDirectory, CONTROL_FILE);
    } else {
      for (const tablespace of tablespaces) await checkEmptyDirectory(tablespace.restoredTo, `tablespace '${tablespace.name}'`);
      await prepareEmptyDirectory(dataDirectory);
    }
    const owner = await postgres.osUser();

    // A data directory is 0700 and, when we are root, owned by the postgres account, which also
    // runs the extraction; a tablespace's directory likewise.
    for (const directory of [dataDirectory, ...tablespaces.map((tablespace) => tablespace.restoredTo)]) {
      // Directories created on the way are traversable (0711): the server's account must reach it.
      await mkdir(dirname(directory), { recursive: true, mode: 0o711 });
      await mkdir(directory, { recursive: true, mode: 0o700 });
      await chmod(directory, 0o700);
      if (owner) await chown(directory, owner.uid, owner.gid);
    }

    let abortExtraction: () => Promise<void> = async () => undefined;
    let seeding: Promise<void> = Promise.resolve();
    const planMs = clock.lap();
    let extractMs = 0;
    let directBytes = 0;
    let settings: SettingsGuardReport | null = null;
    let deltaCounts: DeltaApplyCounts | undefined;
    try {
      let restoredBytes = 0;
      for (const artifact of manifest.artifacts) {
        if (artifact.kind === 'pg-manifest') {
          // PostgreSQL's backup_manifest, stored beside a server-compressed tar: it goes where
          // pg_basebackup -Fp puts it, so pg_verifybackup can check the restored directory.
          const path = join(dataDirectory, 'backup_manifest');
          await readArtifact(
            repository.store,
            manifest,
            artifact,
            repository.artifactKey(manifest, artifact.name),
            createWriteStream(path, { mode: 0o600 }),
            {
              keyMaterial,
              requireEncryption: encryptionRequired(this.context.encoding),
              signal: request.signal,
              target: dataDirectory,
            },
          );
          if (owner) await chown(path, owner.uid, owner.gid);
          continue;
        }
        // The next incremental's reference, not needed to restore.
        if (artifact.kind === 'page-index') continue;
        if (!PHYSICAL_DATA_KINDS.includes(artifact.kind)) {
          throw new InvariantError(`physical backup '${manifest.id}' has an artifact of kind '${artifact.kind}'`);
        }
        // A tablespace's tar goes into its directory (its members are PG_<version>_<catversion>/…).
        const into = artifact.tablespace
          ? (tablespaces.find((tablespace) => tablespace.oid === artifact.tablespace?.oid)?.restoredTo ?? dataDirectory)
          : dataDirectory;
        if (artifact.tablespace === undefined && artifact.kind.startsWith('tablespace-')) {
          throw new InvariantError(`tablespace artifact '${artifact.name}' of backup '${manifest.id}' names no tablespace`);
        }
        const {
          extractor,
          settle,
          deltaCounts: counted,
        } = this.startConsumer(into, { request, manifest, label: `${artifact.name} of backup '${manifest.id}'`, owner });
        abortExtraction = async () => {
          extractor.abort();
          await extractor.done.catch(() => undefined);
          await settle();
        };
        // tar's own failure (ENOSPC) beats the broken pipe it leaves the read with.
        const consumer = { sink: extractor.sink, result: extractor.done, abort: () => extractor.abort() };
        if (artifact.kind === 'base-tar' || artifact.kind === 'tablespace-tar') {
          await readArtifactInto(repository.store, manifest, artifact, repository.artifactKey(manifest, artifact.name), consumer, {
            keyMaterial,
            requireEncryption: encryptionRequired(this.context.encoding),
            signal: request.signal,
            target: into,
            onStoredBytes: (bytes) =>
              request.onProgress?.({ phase: 'download', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
          });
          restoredBytes += artifact.bytes;
        } else {
          restoredBytes += await this.combineChainInto(chain, artifact, consumer, request, { into, owner });
        }
        await settle();
        directBytes += extractor.stats().directBytes;
        if (counted) deltaCounts = addCounts(deltaCounts, counted());
      }

      extractMs = clock.lap();
      // What the server asks for first is looked up while the files are synced.
      if (recovery?.prefetchSegments && request.start) seeding = this.seedPrefetch(dataDirectory, manifest, recovery.tier, owner);
      // Everything verified: make the files durable, then let the control file in. Recovery
      // settings go in first, so the directory is never startable without them.
      request.onProgress?.({ phase: 'sync', bytes: restoredBytes, totalBytes: restoredBytes });
      const pending = join(dataDirectory, `${CONTROL_FILE}${PENDING_SUFFIX}`);
      await stat(pending).catch(() => {
        throw new RestoreTargetError(`backup '${manifest.id}' has no ${CONTROL_FILE}: not a base backup`);
      });
      // pg_tblspc/<oid> → where each tablespace went, from the signed manifest and the mapping.
      await linkTablespaces(dataDirectory, manifest, tablespaces, owner);
      const libraries = manifest.librarySettings ?? {};
      settings = request.bare || request.keepSettings ? null : await neutraliseRestoredSettings(dataDirectory, owner, libraries);
      if (recovery?.envFile) await writeEnvironmentFile(recovery.envFile, secrets, owner);
      await writeRecoverySettings(
        dataDirectory,
        recovery,
        owner,
        settings && guardedSettings(recovery, neutralisedLibraries(settings), libraries),
      );
      await postgres.syncFileSystem(dataDirectory);
      // Another file system's tablespace directory is made durable on its own.
      for (const tablespace of tablespaces) await postgres.syncFileSystem(tablespace.restoredTo);
      await rename(pending, join(dataDirectory, CONTROL_FILE));
      await postgres.syncFileSystem(dataDirectory);
      await seeding;
    } catch (error) {
      // Stop tar (and let the WAL lookup finish) before emptying the directory, or files would reappear behind us.
      await abortExtraction();
      await seeding;
      // A delta's directory was a copy worth keeping: it is left as it is (without pg_control).
      if (request.delta) throw notStartable(error, dataDirectory);
      await emptyDirectory(dataDirectory);
      for (const tablespace of tablespaces) await emptyDirectory(tablespace.restoredTo);
      throw error;
    }

    const result: PhysicalRestoreResult = {
      manifest,
      dataDirectory,
      tablespaces,
      bytes: manifest.bytes,
      directBytes,
      settings,
      ...(deltaCounts ? { delta: deltaCounts } : {}),
      timings: { planMs, extractMs, syncMs: clock.lap() },
    };
    if (recovery) result.recovery = { target: recovery.target, description: describeRecoveryTarget(recovery.target) };
    if (request.start) {
      // From here the directory holds a verified base backup: a failed start or recovery leaves
      // it, with the server's log, for the operator to inspect or start again.
      request.onProgress?.({ phase: 'start', bytes: manifest.bytes });
      const timeoutMs = request.recoveryTimeoutMs ?? DEFAULT_RECOVERY_TIMEOUT_MS;
      const logFile = join(dataDirectory, RESTORED_SERVER_LOG);
      const prefetcher =
        recovery?.prefetchSegments && this.context.config.restore.prefetchInProcess
          ? await this.startPrefetcher(dataDirectory, manifest, recovery.tier, { depth: recovery.prefetchSegments, owner })
          : null;
      try {
        try {
          result.startedOnPort = await postgres.startRestored(dataDirectory, { port: request.port, timeoutMs });
        } catch (error) {
          if (recovery && error instanceof ToolFailedError) {
            throw recoveryFailed(parseRecoveryLog(error.stderrTail).failure ?? error.message, logFile);
          }
          throw error;
        }
        if (recovery && result.recovery) {
          result.recovery.outcome = await waitForPromotion({
            logFile,
            isRunning: () => postgres.isRunning(dataDirectory),
            timeoutMs,
            signal: request.signal,
          });
        }
      } finally {
        // Promoted (or failed): the server asks for no more WAL. The prefetcher stops and removes its spool.
        const summary = await prefetcher?.stop();
        if (summary) result.prefetch = { fetched: summary.fetched, stoppedAt: summary.stoppedAt };
      }
      if (recovery && result.recovery) {
        // Without its spool a prefetcher wal-get started exits now.
        await clearPrefetchSpool(join(dataDirectory, 'pg_wal', PREFETCH_DIRECTORY)).catch(() => undefined);
        // Nothing asks for the store's credentials any more unless the server archives.
        if (recovery.envFile && recovery.archiveMode === 'off') await rm(recovery.envFile, { force: true });
      }
      result.timings.startMs = clock.lap();
    }
    return result;
  }

  /**
   * What a tar of the backup is written into `into` by, global/pg_control landing under its
   * pending name: GNU tar into an empty directory, or with delta the delta apply into an existing
   * one. `settle` waits for what the consumer left running once its stream is done.
   */
  private startConsumer(
    into: string,
    options: { request: PhysicalRestoreRequest; manifest: BackupManifest; label: string; owner: { uid: number; gid: number } | null },
  ): { extractor: TarExtraction; settle: () => Promise<void>; deltaCounts?: () => DeltaApplyCounts } {
    const rename = { from: CONTROL_FILE, to: `${CONTROL_FILE}${PENDING_SUFFIX}` };
    if (options.request.delta) {
      // backup_manifest of a server-compressed backup is written beside the tar, not by it.
      const keep = options.manifest.artifacts.some((artifact) => artifact.kind === 'pg-manifest') ? ['backup_manifest'] : [];
      const readAhead = this.context.config.restore.deltaReadAhead;
      const extractor = startDeltaApply(into, { rename, owner: options.owner, keep, label: options.label, readAhead });
      return { extractor, settle: async () => undefined, deltaCounts: () => extractor.counts() };
    }
    // GNU tar extracts in its own process (on another core) while this one fetches, verifies,
    // decrypts and decompresses; global/pg_control lands under its pending name. The big
    // files go to disk with O_DIRECT from here, the ones tar wrote are flushed as it goes, so
    // the sync below finds little left to write.
    const writeback = ExtractionSync.inDirectory(into);
    const extractor = this.context.postgres.extractTar(into, rename, {
      onMember: (member) => writeback.memberStarted(member),
      label: options.label,
      owner: options.owner,
    });
    return { extractor, settle: () => writeback.stop() };
  }

  /**
   * One tar of an incremental's newest state: the incrementals of this tar back to the full tar
   * it started from (or to a backup without it: a tablespace created since, from nothing), every
   * check of theirs made before their result is written. Two ways, no intermediate copy on disk
   * either way (the changed pages wait in a spill store: memory, then a temporary file):
   * - in place (restore.chainInPlace, the default; not for --delta, and only with the full's page
   *   index): the full's tar goes into `consumer` by the same path as a full restore's while the
   *   incrementals are read beside it, then the newest version of each changed page is written
   *   over it (block-incremental/chain-patch);
   * - combined (the plain path): the full's tar streamed through the chain combiner with the
   *   newest version of each page, into `consumer` (block-incremental/chain-combiner).
   * Resolves with the bytes restored.
   */
  private async combineChainInto(
    chain: BackupManifest[],
    artifact: ArtifactRecord,
    consumer: ArtifactConsumer<void>,
    request: PhysicalRestoreRequest,
    target: { into: string; owner: { uid: number; gid: number } | null },
  ): Promise<number> {
    const key = tarKeyOf(artifact);
    const links: { manifest: BackupManifest; artifact: ArtifactRecord }[] = [];
    let base: { manifest: BackupManifest; artifact: ArtifactRecord | null } | null = null;
    for (let position = chain.length - 1; position >= 0 && !base; position--) {
      const found = dataArtifactOf(chain[position], key);
      if (!found || found.kind === 'base-tar' || found.kind === 'tablespace-tar')
        base = { manifest: chain[position], artifact: found ?? null };
      else links.unshift({ manifest: chain[position], artifact: found });
    }
    if (!base || links.length === 0 || links.at(-1)?.artifact !== artifact) {
      throw new IncrementalChainError(`the chain of backup ${chain.at(-1)?.id} has no full backup holding '${artifact.name}'`);
    }
    const reading: ChainReadOptions = {
      ...chainReadOptions(this.context, request.signal),
      onStoredBytes: (read, bytes) => request.onProgress?.({ phase: 'download', artifact: read.name, bytes, totalBytes: read.storedBytes }),
    };
    const settings = this.context.config.restore;
    const baseArtifact = base.artifact;
    const indexArtifact = baseArtifact ? pageIndexOf(base.manifest, key) : undefined;
    const inPlace = settings.chainInPlace && !request.delta && (!baseArtifact || indexArtifact !== undefined);
    const spill = new SpillStore({ directory: tmpdir(), memoryBytes: CHAIN_SPILL_MEMORY_BYTES });
    try {
      // The full's page index of this tar: its members and page digests for the chain's checks,
      // instead of hashing every base page of a changed file (restore.chainDigestsFromIndex).
      let index: PageIndexLookup | undefined;
      if (indexArtifact && (inPlace || settings.chainDigestsFromIndex)) {
        const label = `page index '${indexArtifact.name}' of backup ${base.manifest.id}`;
        index = await PageIndexLookup.load(decodedArtifact(base.manifest, indexArtifact, reading), label, spill);
      }
      // An incremental's decoded bytes are checked against its own trailer SHA-256 as they are
      // read (readIncremental), not hashed a second time against the manifest's.
      const incrementals = links.map((link) => ({
        backupId: link.manifest.id,
        artifact: decodedArtifact(link.manifest, link.artifact, { ...reading, decodedCheckedByCaller: true }),
      }));
      if (inPlace) {
        return await this.patchChainInPlace({
          base,
          index,
          incrementals,
          consumer,
          reading,
          spill,
          target,
        });
      }
      const combined = combineChain({
        base: {
          backupId: base.manifest.id,
          tar: baseArtifact ? decodedArtifact(base.manifest, baseArtifact, reading) : emptyTar(),
          ...(index && settings.chainDigestsFromIndex ? { index } : {}),
        },
        incrementals,
        spill,
      });
      return await feedCombined(combined, consumer, request.signal);
    } finally {
      await spill.close();
    }
  }

  /**
   * The in-place way of combineChainInto: the full's tar extracted as a full restore extracts it
   * (O_DIRECT splitter and GNU tar) while the incrementals are read, then patched.
   */
  private async patchChainInPlace(options: {
    base: { manifest: BackupManifest; artifact: ArtifactRecord | null };
    index: PageIndexLookup | undefined;
    incrementals: ChainLink[];
    consumer: ArtifactConsumer<void>;
    reading: ChainReadOptions;
    spill: SpillStore;
    target: { into: string; owner: { uid: number; gid: number } | null };
  }): Promise<number> {
    const { base, consumer, reading, target } = options;
    const baseArtifact = base.artifact;
    const extracted = baseArtifact
      ? readArtifactInto(
          reading.repository.store,
          base.manifest,
          baseArtifact,
          reading.repository.artifactKey(base.manifest, baseArtifact.name),
          consumer,
          { ...artifactReadOptions(base.manifest, baseArtifact, reading), target: target.into },
        )
      : feedCombined(emptyTar(), consumer, reading.signal);
    // A damaged link stops the extraction at once: nothing of it would be kept.
    const chainRead = readChain(base.manifest.id, options.incrementals, options.spill).catch((error: unknown) => {
      consumer.abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    });
    const [extraction, chainOutcome] = await Promise.allSettled([extracted, chainRead]);
    if (chainOutcome.status === 'rejected') throw chainOutcome.reason;
    if (extraction.status === 'rejected') throw extraction.reason;
    const counts = await patchChainInto({
      directory: target.into,
      chain: chainOutcome.value,
      baseIndex: options.index ?? null,
      spill: options.spill,
      rename: { from: CONTROL_FILE, to: `${CONTROL_FILE}${PENDING_SUFFIX}` },
      owner: target.owner,
      label: `the chain of backup ${options.incrementals.at(-1)?.backupId}`,
    });
    return (baseArtifact?.bytes ?? 0) + counts.pages * PAGE_SIZE;
  }

  /**
   * The prefetcher's first round, done here before the server starts (WalPrefetcher.seed): the
   * server's first restore_command calls (the next timeline's history, the backup's first
   * segments, the one after the archive's end) then find their answers in the spool and are
   * answered by bin/rookery-wal-get instead of a node process each (a node start apiece). Done in
   * this process, not by launching the prefetcher early: no second node to start on the way and
   * none alongside the extraction's memory. Best effort: anything not answered goes to node.
   */
  private async seedPrefetch(
    dataDirectory: string,
    manifest: BackupManifest,
    tier: TierName,
    owner: { uid: number; gid: number } | null,
  ): Promise<void> {
    const first = manifest.walRange ? parseWalFileName(manifest.walRange.start) : null;
    if (first?.kind !== 'segment' || (first.segmentNumber as bigint) === 0n) return;
    const spool = join(dataDirectory, 'pg_wal', PREFETCH_DIRECTORY);
    try {
      await mkdir(spool, { mode: 0o700 });
      const after = parseWalFileName(walSegmentFileName(first.timeline, (first.segmentNumber as bigint) - 1n)) as WalFileName;
      await new WalPrefetcher(this.wal).seed({
        tier,
        spoolDirectory: spool,
        after,
        segments: Math.min(this.context.config.wal.processMax, this.context.config.wal.prefetchSegments),
      });
      // The server's account owns the spool: bin/rookery-wal-get answers only from its own files.
      if (owner)
        for (const path of [spool, ...(await readdir(spool)).map((entry) => join(spool, entry))]) await chown(path, owner.uid, owner.gid);
    } catch {
      await clearPrefetchSpool(spool).catch(() => undefined);
    }
  }

  /**
   * The WAL prefetcher of the server's restore_command (WalPrefetcher.run), run in this process
   * while it waits for recovery (restore.prefetchInProcess): the server's misses find it holding
   * the spool and start no prefetcher process of their own, so recovery runs beside one node
   * process fewer (this one waits anyway). It starts where the seed stopped (the cursor: the
   * segment before the backup's first) and, when this process is root and the server another
   * account, gives every file to that account before the script may read it. Null when there is no
   * spool (the seed failed: the server's first miss starts a prefetcher process as before) or
   * another prefetcher holds it. `stop` ends it and waits for it: its spool is removed.
   */
  private async startPrefetcher(
    dataDirectory: string,
    manifest: BackupManifest,
    tier: TierName,
    options: { depth: number; owner: { uid: number; gid: number } | null },
  ): Promise<{ stop: () => Promise<WalPrefetcherSummary> } | null> {
    const first = manifest.walRange ? parseWalFileName(manifest.walRange.start) : null;
    if (first?.kind !== 'segment' || (first.segmentNumber as bigint) === 0n) return null;
    const controller = new AbortController();
    let locked: (held: boolean) => void = () => undefined;
    const holding = new Promise<boolean>((resolve) => (locked = resolve));
    const running = new WalPrefetcher(this.wal)
      .run({
        tier,
        spoolDirectory: join(dataDirectory, 'pg_wal', PREFETCH_DIRECTORY),
        // Where the seed stopped: the segment before the backup's first.
        startAfter: walSegmentFileName(first.timeline, (first.segmentNumber as bigint) - 1n),
        onLocked: () => locked(true),
        depth: options.depth,
        processMax: this.context.config.wal.processMax,
        idleMs: this.context.config.wal.archiverIdleSeconds * 1000,
        signal: controller.signal,
        owner: options.owner,
      })
      .catch(
        // What a prefetch failure costs is the prefetch: the server's misses fetch in the foreground.
        (error: unknown): WalPrefetcherSummary => ({
          ran: false,
          fetched: 0,
          stoppedAt: error instanceof Error ? error.message : String(error),
        }),
      )
      .finally(() => locked(false));
    // The lock is held before the server starts, so its first miss finds the prefetcher alive.
    // No spool (the seed failed and cleared it) or another prefetcher holding it: none here.
    if (!(await holding)) {
      await running;
      return null;
    }
    return {
      stop: async () => {
        controller.abort(new Error('recovery ended'));
        return running;
      },
    };
  }

  /**
   * The recovery settings to write, or null for a bare restore (no self command: crash recovery
   * to the backup's end, as before PITR existed).
   */
  private recoverySettings(request: PhysicalRestoreRequest): RecoverySettingsRequest | null {
    if (request.bare) {
      if (request.target || request.archiveMode)
        throw new InvariantError('a bare restore writes no recovery settings: no target or archive mode');
      return null;
    }
    const target = request.target ?? { kind: 'latest' };
    const selfCommand = this.context.selfCommand;
    if (!selfCommand) {
      if (target.kind === 'latest' && request.archiveMode === undefined) return null;
      throw new ConfigError('point-in-time recovery needs the command that runs rookery for restore_command', ['selfCommand'], {
        hint: 'create the engine with EngineOptions.selfCommand (the CLI does)',
      });
    }
    return {
      selfCommand,
      tier: request.tier,
      target,
      archiveMode: request.archiveMode ?? 'keep',
      prefetchSegments: this.context.config.wal.prefetchSegments,
    };
  }
}

function neutralisedLibraries(report: SettingsGuardReport): string[] {
  return report.neutralised.map((entry) => entry.setting).filter((name) => (GUARDED_LIBRARY_SETTINGS as readonly string[]).includes(name));
}

/** Milliseconds since the previous lap (or since it was made), rounded. */
class PhaseClock {
  private last = performance.now();

  lap(): number {
    const now = performance.now();
    const elapsed = Math.round(now - this.last);
    this.last = now;
    return elapsed;
  }
}

function addCounts(sum: DeltaApplyCounts | undefined, counts: DeltaApplyCounts): DeltaApplyCounts {
  const keys = Object.keys(counts) as (keyof DeltaApplyCounts)[];
  return Object.fromEntries(keys.map((key) => [key, (sum?.[key] ?? 0) + counts[key]])) as unknown as DeltaApplyCounts;
}

/** A failed delta restore's error, saying that the directory cannot be started as it is. */
function notStartable(error: unknown, directory: string): unknown {
  const note = `${directory} cannot be started until a restore into it completes (its pg_control was withdrawn): run the restore --delta again`;
  if (error instanceof RookeryError) {
    Object.defineProperty(error, 'hint', { value: error.hint ? `${error.hint}; ${note}` : note });
    return error;
  }
  return new RestoreTargetError(`delta restore into '${directory}' failed: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
    hint: note,
  });
}

async function prepareEmptyDirectory(path: string): Promise<void> {
  await checkEmptyDirectory(path, 'restore directory');
  await mkdir(path, { recursive: true, mode: 0o700 });
}

/** Refuses a directory that holds anything (absent is fine: it is created). */
async function checkEmptyDirectory(path: string, what: string): Promise<void> {
  const entries = await readdir(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw new RestoreTargetError(`cannot use ${what} '${path}': ${error.message}`, { cause: error });
  });
  if (entries && entries.length > 0) {
    throw new RestoreTargetError(`${what} '${path}' is not empty`, {
      hint:
        what === 'restore directory'
          ? 'restore into a new or empty directory; rookery never overwrites a data directory'
          : 'restore it elsewhere with --tablespace-map OLD=NEW or --tablespace-map-all DIR; rookery never overwrites a tablespace',
    });
  }
}

async function emptyDirectory(path: string): Promise<void> {
  const entries = await readdir(path).catch(() => [] as string[]);
  await Promise.all(entries.map((entry) => rm(join(path, entry), { recursive: true, force: true })));
}

/**
 * A tar stream into `consumer`, both sides waited for. Resolves with the bytes fed. What the
 * chain's checks found explains tar's failure on what it was fed, not the reverse.
 */
async function feedCombined(source: AsyncIterable<Buffer>, consumer: ArtifactConsumer<void>, signal?: AbortSignal): Promise<number> {
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of source) {
      bytes += chunk.length;
      yield chunk;
    }
  }
  const failures: unknown[] = [];
  const fed = pipeline(counted(), consumer.sink, { signal }).catch((error: unknown) => {
    failures.push(error);
    consumer.abort(error instanceof Error ? error : new Error(String(error)));
  });
  const consumed = consumer.result.catch((error: unknown) => void failures.push(error));
  await Promise.all([fed, consumed]);
  if (failures.length > 0) {
    throw (
      failures.find((failure) => failure instanceof IntegrityError || failure instanceof IncrementalChainError) ?? rootCauseOf(failures)
    );
  }
  return bytes;
}

/** The tar of a directory with nothing in it: the base of a tablespace created during a chain. */
async function* emptyTar(): AsyncGenerator<Buffer> {
  yield tarEnd();
}
