import {
  ArtifactRecord,
  BackupManifest,
  ConfigError,
  IntegrityError,
  LogicalBackupInfo,
  LogicalPolicy,
  TierName,
  signManifest,
} from '@rookery/core';
import { DumpSelection, PgSession, TocEntry } from '@rookery/postgres';
import { ArtifactEncoding, artifactFileName, writeArtifact } from './artifact.codec';
import { cleanUpFailedBackup } from './backup-cleanup';
import { allocateBackupId } from './backup-ids';
import type { NamedBackupRequest } from './backup-run';
import { EngineContext } from './engine.context';
import { LogicalBackupJob, LogicalReadOutcome, readArtifactBack } from './logical-backup.job';
import {
  TRACKING_TABLE_DATA,
  coverageWarnings,
  ensureChangeTracking,
  pruneChangeLog,
  readTrackingPoint,
  recordedPoint,
} from './logical-change-tracking';
import { LogicalIncrementalService } from './logical-incremental.service';
import { LogicalTools } from './logical-tools';

/** One pg_dump of a logical backup: the artifact it becomes and what it selects. */
interface PlannedDump {
  role: 'metadata' | 'objects' | 'full';
  selection: DumpSelection;
  /** A TOC entry the archive must list to be accepted (the split table's rows). */
  mustList?: { type: string; table: string };
}

const DEFAULT_LOGICAL_POLICY: LogicalPolicy = { splitTable: null, excludeTableData: [], format: 'custom', jobs: 1 };

/**
 * A logical backup of a tier, shaped by its policy: pg_dump streams (custom format, its own
 * compression off) through the pipeline (parallel zstd at the tier's level, optional encryption)
 * into the store. A split tier (content) gets two artifacts read from one exported snapshot, so
 * they agree row for row: everything but the big table's rows, and those rows alone. Each artifact
 * is read back from the store and listed by pg_restore before the manifest makes the backup exist.
 */
export class LogicalBackupService {
  constructor(
    private readonly context: EngineContext,
    private readonly tools: () => Promise<LogicalTools>,
  ) {}

  async backup(request: NamedBackupRequest): Promise<BackupManifest> {
    const { config, repository, lock, postgres } = this.context;
    const tier = config.tiers[request.tier];
    const policy = { ...DEFAULT_LOGICAL_POLICY, ...tier.policy.logical };
    const type = request.type;
    const url = tier.pgUrl?.reveal();
    if (!url) {
      throw new ConfigError(`no database URL for tier '${request.tier}'`, [`tiers.${request.tier}.pgUrl`], {
        hint: `set tiers.${request.tier}.pgUrl in rookery.yaml or pass --pg-url`,
      });
    }
    const tools = await this.tools();
    const now = request.now;

    // Fail before taking the lock if the store or the database cannot be reached.
    await repository.store.check();
    const server = await postgres.control.serverInfo(url);

    const held = await lock.acquire(request.tier, { holder: `rookery backup (${this.context.actor})` });
    let cleaned = false;
    let named: { tier: TierName; id: string; startedAt: string } | undefined;
    try {
      const startedAt = now();
      // Named by its BackupRun before the lock; checked again now that no other run can take it.
      const id = await allocateBackupId(repository, request.tier, startedAt, request.id);
      named = { tier: request.tier, id, startedAt: startedAt.toISOString() };
      const encoding: ArtifactEncoding = { ...this.context.encoding, compression: policy.compression ?? this.context.encoding.compression };

      const job: LogicalBackupJob = { request, id, startedAt, url, policy, encoding };
      const { artifacts, info, parent } =
        type === 'incremental' ? await new LogicalIncrementalService(this.context, this.tools).read(job, server) : await this.readFull(job);
      const finishedAt = now();
      const retentionDays =
        type === 'snapshot' ? (tier.policy.snapshotRetentionDays ?? tier.policy.retentionDays) : tier.policy.retentionDays;

      const manifest = signManifest({
        formatVersion: 1,
        id,
        tier: request.tier,
        database: tier.policy.database,
        type,
        method: 'logical',
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        postgres: { version: server.version, versionNum: server.versionNum, systemIdentifier: server.systemIdentifier },
        timeline: null,
        startLsn: null,
        stopLsn: null,
        walRange: null,
        parent,
        retentionUntil: new Date(finishedAt.getTime() + retentionDays * 86_400_000).toISOString(),
        storageClass: tier.policy.storageClass,
        regions: [this.context.primaryRegion],
        bytes: artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
        storedBytes: artifacts.reduce((sum, artifact) => sum + artifact.storedBytes, 0),
        artifacts,
        tool: { name: 'rookery', version: this.context.version },
        logical: info,
      });
      // The manifest is written last: until it exists, this backup does not.
      const committed = await repository.commit(manifest);
      // Only now are the log entries this backup saw unneeded: the next incremental chains to it.
      if (info.changeTracking) await pruneChangeLog(tools.sql, url, id, info.changeTracking).catch(() => undefined);
      return committed;
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
   * A full (or snapshot): one snapshot for every dump. The session that exported it stays open in
   * a repeatable-read transaction until the last pg_dump has started reading (it holds the
   * snapshot alive). A tier with incrementals first installs or completes its change tracking,
   * committed before that snapshot, and records where the snapshot stands in it.
   */
  private async readFull(job: LogicalBackupJob): Promise<LogicalReadOutcome> {
    const tools = await this.tools();
    if (job.policy.incremental) await ensureChangeTracking(tools.sql, job.url);
    const policy = job.policy.incremental
      ? { ...job.policy, excludeTableData: [...job.policy.excludeTableData, ...TRACKING_TABLE_DATA] }
      : job.policy;
    return tools.sql.withSession(job.url, async (session) => {
      await session.query('begin transaction isolation level repeatable read, read only');
      const [{ snapshot }] = await session.query<{ snapshot: string }>('select pg_export_snapshot() as snapshot');
      const point = job.policy.incremental
        ? await readTrackingPoint(session, () => tools.dump.schemaScript({ url: job.url, snapshot, signal: job.request.signal }))
        : undefined;
      for (const warning of point ? coverageWarnings(point) : []) job.request.onWarning?.(warning);
      const materializedViews = await listMaterializedViews(session);
      const split = await splitTableIn(session, policy.splitTable);
      if (policy.splitTable && !split) {
        job.request.onWarning?.(
          `the tier's splitTable '${policy.splitTable}' names no table of this database: one artifact holds the whole dump (set policy.logical.splitTable to a table of yours, or null)`,
        );
      }
      const dumps = planDumps({ ...policy, splitTable: split }, materializedViews);
      const written: ArtifactRecord[] = [];
      for (const dump of dumps) {
        written.push(await this.dumpOne(job.request, { ...job, policy, dump: { ...dump, selection: { ...dump.selection, snapshot } } }));
      }
      await session.query('commit');
      const info: LogicalBackupInfo = {
        format: policy.format,
        steps: restoreSteps(dumps, written),
        excludedTableData: [...policy.excludeTableData],
        materializedViews,
        snapshot,
        ...(point ? { changeTracking: recordedPoint(point) } : {}),
      };
      return { artifacts: written, info, parent: null };
    });
  }

  /** Streams one pg_dump into the store, then proves the stored artifact lists as an archive. */
  private async dumpOne(
    request: NamedBackupRequest,
    job: { id: string; startedAt: Date; url: string; policy: LogicalPolicy; encoding: ArtifactEncoding; dump: PlannedDump },
  ): Promise<ArtifactRecord> {
    const { repository } = this.context;
    const tools = await this.tools();
    const base = job.policy.format === 'custom' ? `${job.dump.role}.dump` : `${job.dump.role}.dir.tar`;
    const name = artifactFileName(base, job.encoding);
    const key = repository.artifactKey({ tier: request.tier, id: job.id, startedAt: job.startedAt.toISOString() }, name);
    const running = tools.dump.start({
      url: job.url,
      format: job.policy.format,
      // pg_dump's zlib is single-threaded and slow; the pipeline compresses on every core.
      compressLevel: 0,
      jobs: job.policy.format === 'directory' ? job.policy.jobs : undefined,
      workDirectory: tools.workDirectory,
      signal: request.signal,
      ...job.dump.selection,
    });
    const artifact = await writeArtifact(repository.store, key, running.stream, {
      name,
      kind: 'dump',
      backup: { tier: request.tier, id: job.id },
      encoding: job.encoding,
      storageClass: this.context.config.tiers[request.tier].policy.storageClass,
      signal: request.signal,
      onLogicalBytes: (bytes) => request.onProgress?.({ phase: 'backup', artifact: name, bytes }),
    });
    await running.result;
    await this.validate(request, job, artifact, key);
    return artifact;
  }

  /**
   * Reads the artifact back from the store (every checksum checked on the way) into
   * `pg_restore --list`: a backup is committed only if each of its dumps is a readable archive.
   */
  private async validate(
    request: NamedBackupRequest,
    job: { id: string; startedAt: Date; policy: LogicalPolicy; dump: PlannedDump },
    artifact: ArtifactRecord,
    key: string,
  ): Promise<void> {
    const tools = await this.tools();
    const entries = await readArtifactBack(this.context, request, job, artifact, key, (signal) =>
      job.policy.format === 'custom'
        ? tools.restore.listStream({ signal })
        : tools.restore.listTarStream({ signal, workDirectory: tools.workDirectory }),
    );
    checkListing(artifact.name, entries, job.dump);
  }
}

/**
 * The dumps of a policy. Materialized views' rows are left out (pg_dump would only record a
 * REFRESH for them anyway): the restore refreshes each one itself, after all data is in, and
 * reports which.
 */
export function planDumps(policy: LogicalPolicy, materializedViews: readonly string[]): PlannedDump[] {
  const excluded = [...policy.excludeTableData, ...materializedViews.map(quotePattern)];
  if (!policy.splitTable) return [{ role: 'full', selection: { excludeTableData: excluded } }];
  return [
    { role: 'metadata', selection: { excludeTableData: [policy.splitTable, ...excluded] } },
    {
      role: 'objects',
      selection: { dataOnly: true, tables: [policy.splitTable] },
      mustList: { type: 'TABLE DATA', table: policy.splitTable.split('.').pop() as string },
    },
  ];
}

/**
 * Order of application. A split dump restores the metadata's definitions and small tables first,
 * then the big table's rows, then the metadata's constraints and indexes: foreign keys that point
 * at the big table can only be created once its rows are in.
 */
export function restoreSteps(dumps: readonly PlannedDump[], artifacts: readonly ArtifactRecord[]): LogicalBackupInfo['steps'] {
  const nameOf = (role: PlannedDump['role']) => artifacts[dumps.findIndex((dump) => dump.role === role)].name;
  if (dumps.length === 1) return [{ artifact: nameOf('full'), sections: ['pre-data', 'data', 'post-data'] }];
  return [
    { artifact: nameOf('metadata'), sections: ['pre-data', 'data'] },
    { artifact: nameOf('objects'), sections: ['data'] },
    { artifact: nameOf('metadata'), sections: ['post-data'] },
  ];
}

function checkListing(name: string, entries: TocEntry[], dump: PlannedDump): void {
  if (entries.length === 0) {
    throw new IntegrityError(`artifact '${name}' is not a usable dump: pg_restore --list shows no entries`);
  }
  const expected = dump.mustList;
  if (expected && !entries.some((entry) => entry.type === expected.type && entry.name === expected.table)) {
    throw new IntegrityError(`artifact '${name}' has no ${expected.type} entry for table '${expected.table}'`, {
      hint: 'check the tier policy splitTable pattern: it must name an existing table',
    });
  }
}

/**
 * The policy's split table if this database has it. The split only places the biggest table's
 * rows in an artifact of their own (for parallel restore and cheaper partial reads); a database
 * without that table (a tier policy written for another schema) is dumped whole in one artifact
 * rather than refused: the backup is complete either way. A pattern with wildcards is kept as it is
 * (pg_dump resolves it; checkListing refuses a split that matched nothing).
 */
async function splitTableIn(session: PgSession, splitTable: string | null): Promise<string | null> {
  if (!splitTable || /[*?]/.test(splitTable)) return splitTable;
  const [{ found }] = await session.query<{ found: boolean }>('select to_regclass($1) is not null as found', [splitTable]);
  return found ? splitTable : null;
}

/** Every materialized view, schema-qualified, as the dump and the restore name them. */
async function listMaterializedViews(session: PgSession): Promise<string[]> {
  const rows = await session.query<{ name: string }>(`select schemaname || '.' || matviewname as name from pg_matviews order by 1`);
  return rows.map((row) => row.name);
}

/** A schema.name as an exact pg_dump pattern (quoted parts match literally). */
function quotePattern(qualified: string): string {
  const [schema, ...rest] = qualified.split('.');
  return `"${schema.replace(/"/g, '""')}"."${rest.join('.').replace(/"/g, '""')}"`;
}
