import { appendFile, chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupManifest, TierName, isRookeryError } from '@rookery/core';
import { RESTORED_SERVER_LOG, RookeryEngine, waitForPromotion } from '@rookery/engine';
import { ScratchCluster } from '@rookery/postgres';
import { CHECK, ValidationCheck, allOk } from './validation-check';
import { ValidationTools } from './validation.tools';

export interface DrillReport {
  backupId: string;
  tier: TierName;
  method: 'physical' | 'logical';
  /** Restore checks and data checks all passed. */
  ok: boolean;
  /** From the first byte fetched to a server that accepts writes (physical) or a restored database (logical). */
  restoreMs: number;
  /** The whole drill: scratch cluster, restore, checks, cleanup. */
  totalMs: number;
  rtoSeconds: number;
  /** ok and restoreMs within the tier's RTO. */
  withinRto: boolean;
  /** How far the restore went: the archived WAL replayed to its end, the base backup's own end, or a dump. */
  recovery: 'archived-wal' | 'backup-end' | 'dump';
  checks: ValidationCheck[];
  startedAt: string;
  finishedAt: string;
}

export interface DrillOptions {
  /** A backup id; default the tier's latest. */
  backup?: string;
  /** The role the data checks connect as (the restored cluster's superuser). */
  user?: string;
  /** How long a physical drill waits for WAL replay. */
  recoveryTimeoutMs?: number;
  signal?: AbortSignal;
}

interface RestoredTarget {
  urlFor(database: string): string;
  databases: string[];
  recovery: DrillReport['recovery'];
}

const DEFAULT_RECOVERY_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * A restore drill (DESIGN §8): restores a tier's backup (the latest by default) the way an
 * operator would during an incident, times it against the tier's RTO, checks the data, and
 * removes everything it made. A drill never touches the tier's database or its WAL archive:
 * - physical: the base backup is restored into a scratch data directory and started on a free
 *   port with archive_mode off (a drill copy must never push WAL into the tier's archive, where
 *   its segments would conflict with the primary's); with the engine's selfCommand it replays the
 *   archived WAL to its end and is promoted, else it recovers to the backup's own end;
 * - logical: the dumps are restored into a fresh database of a scratch cluster.
 * The data checks: the server is out of recovery, every user table (and materialized view) of
 * every database reads (count(*)), and there is data at all.
 * A restore that fails is a failed drill, reported with the reason; only "there is no backup to
 * drill" is thrown.
 */
export class RestoreDrill {
  constructor(
    private readonly engine: RookeryEngine,
    private readonly tools: ValidationTools,
  ) {}

  async run(tier: TierName, options: DrillOptions = {}): Promise<DrillReport> {
    const started = new Date();
    const manifest = await this.engine.find(tier, options.backup ?? 'latest');
    const rtoSeconds = this.rtoSeconds(tier);
    const checks: ValidationCheck[] = [];
    const cleanups: (() => Promise<void>)[] = [];
    let restoreMs = 0;
    let recovery: DrillReport['recovery'] = manifest.method === 'physical' ? 'backup-end' : 'dump';
    try {
      const restoreStarted = Date.now();
      let target: RestoredTarget | null = null;
      try {
        target =
          manifest.method === 'physical'
            ? await this.restorePhysical(manifest, options, cleanups)
            : await this.restoreLogical(manifest, options, cleanups);
        recovery = target.recovery;
        restoreMs = Date.now() - restoreStarted;
        checks.push({ name: CHECK.restore, ok: true, detail: `${manifest.id} restored in ${restoreMs} ms (${recovery})` });
      } catch (error) {
        if (!isRookeryError(error)) throw error;
        restoreMs = Date.now() - restoreStarted;
        checks.push({ name: CHECK.restore, ok: false, detail: error.message });
      }
      if (target) checks.push(...(await this.dataChecks(target)));
    } finally {
      // Newest first: the server stops before its directory goes. The drill is over only when
      // everything it made is gone: its report (and a REST answer) comes after the cleanup, and a
      // cleanup that failed is a failed check, not a silent leftover.
      const leftovers: string[] = [];
      for (const cleanup of cleanups.reverse()) {
        await cleanup().catch((error: unknown) => leftovers.push(error instanceof Error ? error.message : String(error)));
      }
      if (leftovers.length > 0) checks.push({ name: CHECK.cleanup, ok: false, detail: leftovers.join('; ') });
    }
    const ok = allOk(checks);
    return {
      backupId: manifest.id,
      tier,
      method: manifest.method,
      ok,
      restoreMs,
      totalMs: Date.now() - started.getTime(),
      rtoSeconds,
      withinRto: ok && restoreMs <= rtoSeconds * 1000,
      recovery,
      checks,
      startedAt: started.toISOString(),
      finishedAt: new Date().toISOString(),
    };
  }

  /** The tier's recovery time objective, which a drill's restore time is held against. */
  rtoSeconds(tier: TierName): number {
    return this.engine.config.tiers[tier].policy.rtoSeconds;
  }

  private async restorePhysical(
    manifest: BackupManifest,
    options: DrillOptions,
    cleanups: (() => Promise<void>)[],
  ): Promise<RestoredTarget> {
    const writesRecoverySettings = this.engine.writesRecoverySettings;
    const work = await mkdtemp(join(this.tools.workDirectory, `rookery-drill-${manifest.tier}-`));
    cleanups.push(() => rm(work, { recursive: true, force: true, maxRetries: 5 }));
    // The server's account must reach the data directory inside our 0700 temp directory.
    await chmod(work, 0o711);
    const dataDirectory = join(work, 'data');
    // With a self command the engine writes recovery settings (restore_command, archive_mode off).
    const result = await this.engine.restore({
      tier: manifest.tier,
      backup: manifest.id,
      to: dataDirectory,
      // Never production's tablespace directories: every tablespace goes into the scratch directory.
      tablespaces: { all: join(work, 'tablespaces') },
      ...(writesRecoverySettings ? { archiveMode: 'off' as const } : {}),
      signal: options.signal,
    });
    const owner = await this.engine.postgresAccount();
    if (!writesRecoverySettings)
      await appendOwned(
        join(dataDirectory, 'postgresql.auto.conf'),
        "\n# rookery drill: never archive from a drill copy\narchive_mode = 'off'\n",
        owner,
      );

    const port = await this.tools.freePort();
    const timeoutMs = options.recoveryTimeoutMs ?? DEFAULT_RECOVERY_TIMEOUT_MS;
    // The server, then the WAL prefetcher its restore_command started (it would write into the
    // directory behind its removal); both gone before the directory goes.
    cleanups.push(() => this.engine.stopRestored(dataDirectory));
    // No TCP listener and rookery's own pg_hba: the checks connect through the socket in the 0700
    // data directory, whatever the backed-up server's listen_addresses and pg_hba.conf said.
    const user = options.user ?? 'postgres';
    await this.engine.startRestored(dataDirectory, { port, timeoutMs, isolated: { user } });
    if (result.recovery) {
      await waitForPromotion({
        logFile: join(dataDirectory, RESTORED_SERVER_LOG),
        isRunning: () => this.engine.isRestoredRunning(dataDirectory),
        timeoutMs,
        signal: options.signal,
      });
    }
    const urlFor = (database: string) =>
      `postgres://${encodeURIComponent(user)}@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(dataDirectory)}`;
    const rows = await this.tools.sql.query<{ datname: string }>(
      urlFor('postgres'),
      'select datname from pg_database where datallowconn and not datistemplate order by datname',
    );
    return { urlFor, databases: rows.map((row) => row.datname), recovery: result.recovery ? 'archived-wal' : 'backup-end' };
  }

  private async restoreLogical(
    manifest: BackupManifest,
    options: DrillOptions,
    cleanups: (() => Promise<void>)[],
  ): Promise<RestoredTarget> {
    let cluster: ScratchCluster | null = null;
    cleanups.push(async () => cluster?.destroy());
    cluster = await this.tools.scratchCluster({
      name: `drill-${manifest.tier}`,
      parentDir: this.tools.workDirectory,
      removeWhenOrphaned: true,
    });
    const scratch = cluster;
    const jobs = this.engine.config.tiers[manifest.tier].policy.logical?.jobs;
    await this.engine.restore({
      tier: manifest.tier,
      backup: manifest.id,
      targetUrl: scratch.urlFor(manifest.database),
      jobs,
      signal: options.signal,
    });
    return { urlFor: (database) => scratch.urlFor(database), databases: [manifest.database], recovery: 'dump' };
  }

  /** Out of recovery, every user table readable, and data present. */
  private async dataChecks(target: RestoredTarget): Promise<ValidationCheck[]> {
    const checks: ValidationCheck[] = [];
    const [state] = await this.tools.sql.query<{ recovering: boolean }>(
      target.urlFor(target.databases[0] ?? 'postgres'),
      'select pg_is_in_recovery() as recovering',
    );
    checks.push({
      name: CHECK.notInRecovery,
      ok: state?.recovering === false,
      detail: state?.recovering ? 'the restored server is still in recovery' : 'accepts writes',
    });

    let tables = 0;
    let rows = 0;
    const unreadable: string[] = [];
    for (const database of target.databases) {
      const url = target.urlFor(database);
      for (const table of await this.userTables(url)) {
        tables++;
        try {
          const [count] = await this.tools.sql.query<{ n: string }>(
            url,
            `select count(*)::text as n from ${quoteIdent(table.schema)}.${quoteIdent(table.name)}`,
          );
          rows += Number(count?.n ?? 0);
        } catch (error) {
          unreadable.push(`${database}.${table.schema}.${table.name}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
    const where = target.databases.join(', ');
    checks.push(
      unreadable.length
        ? {
            name: CHECK.tablesReadable,
            ok: false,
            detail: `${unreadable.length} of ${tables} tables unreadable: ${unreadable.slice(0, 3).join('; ')}`,
          }
        : { name: CHECK.tablesReadable, ok: true, detail: `${tables} tables in ${where}` },
    );
    checks.push(
      rows > 0
        ? { name: CHECK.dataPresent, ok: true, detail: `${rows} rows` }
        : {
            name: CHECK.dataPresent,
            ok: false,
            detail: tables ? `${tables} tables in ${where}, every one empty` : `no user tables in ${where}`,
          },
    );
    return checks;
  }

  private userTables(url: string): Promise<{ schema: string; name: string }[]> {
    return this.tools.sql.query<{ schema: string; name: string }>(
      url,
      `select n.nspname as schema, c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
          and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%'
        order by 1, 2`,
    );
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function appendOwned(path: string, text: string, owner: { uid: number; gid: number } | null): Promise<void> {
  await appendFile(path, text, { mode: 0o600 });
  if (owner) await chown(path, owner.uid, owner.gid);
}
