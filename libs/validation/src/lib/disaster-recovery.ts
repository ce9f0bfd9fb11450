import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BackupManifest, ObjectInfo, RegionUnreachableError, TierName, parseRecoveryTarget, redactUrl } from '@rookery/core';
import { RESTORED_SERVER_LOG, RecoveryOutcome, RookeryEngine, waitForPromotion } from '@rookery/engine';
import { ScratchCluster } from '@rookery/postgres';
import { WalArchive, repositoryLayout } from '@rookery/repository';
import { DrMode, DrReport, ResolvedRegion, TierOutcome, TierPlan, chooseBackup, errorRecord } from './disaster-recovery.plan';
import { ValidationTools } from './validation.tools';

export interface DrRequest {
  mode: DrMode;
  region: ResolvedRegion;
  tiers: readonly TierName[];
  /** Physical tiers recover to this time; logical tiers take their newest backup finished by then. */
  targetTime?: string;
  /** Physical tiers are restored under it, one data directory per tier (required unless a dry run). */
  workdir?: string;
  /** Logical tiers: a PostgreSQL base URL, one database per tier; without it a scratch cluster under workdir. */
  targetUrl?: string;
  recoveryTimeoutMs?: number;
  signal?: AbortSignal;
}

const DEFAULT_RECOVERY_TIMEOUT_MS = 2 * 60 * 60 * 1000;
const SCRATCH_DESTINATION = 'a cluster rookery dr starts under the workdir';

/**
 * `rookery dr` (the seed's runbook): the engine here reads only the chosen region's store (the
 * CLI builds it with that store as its only repository, so restore_command fetches WAL from the
 * region too). Steps: the store answers, the newest whole backup per tier, the plan, the restores
 * (physical tiers started and promoted in their own data directory and port, logical tiers into
 * a database per tier), the data read back table by table, and the report.
 */
export class DisasterRecovery {
  constructor(
    private readonly engine: RookeryEngine,
    private readonly tools: ValidationTools,
  ) {}

  private get store() {
    return this.engine.store;
  }

  /** Step 1: the region's store answers; else nothing is planned or written. */
  async checkReachable(region: ResolvedRegion): Promise<void> {
    try {
      await this.store.check();
    } catch (error) {
      throw new RegionUnreachableError(region.name, this.store.description, error);
    }
  }

  /** Step 2: per tier, the newest backup whose manifest checks and whose artifacts are all there with their sizes. */
  async plan(request: DrRequest): Promise<TierPlan[]> {
    const plans: TierPlan[] = [];
    const databases = new Map<string, number>();
    for (const tier of request.tiers) {
      const plan = await this.planTier(tier, request);
      plans.push(plan);
      if (plan.database) databases.set(plan.database, (databases.get(plan.database) ?? 0) + 1);
    }
    // Two logical tiers with the same database name each get their own database in the target.
    for (const plan of plans) if (plan.database && (databases.get(plan.database) ?? 0) > 1) plan.database = `${plan.database}_${plan.tier}`;
    for (const plan of plans) plan.destination = this.destinationFor(plan, request);
    return plans;
  }

  private async planTier(tier: TierName, request: DrRequest): Promise<TierPlan> {
    const policy = this.engine.config.tiers[tier].policy;
    const { backups, damaged } = await this.engine.list(tier);
    const stats = new Map<string, ObjectInfo>();
    for await (const object of this.store.list(repositoryLayout.backupsPrefix(tier))) stats.set(object.key, object);
    const choice = chooseBackup(backups, (manifest, artifact) => this.engine.artifactKey(manifest, artifact), stats, {
      notAfter: request.targetTime ? new Date(request.targetTime) : undefined,
      requireRegion: request.region.loneRepository ? request.region.tierRegions[tier] : undefined,
    });
    const skipped = [...damaged.map((entry) => ({ backupId: entry.key, reason: `damaged manifest: ${entry.problem}` })), ...choice.skipped];
    const backup = choice.backup;
    return {
      tier,
      method: policy.method,
      region: request.region.tierRegions[tier] ?? request.region.name,
      backupId: backup?.id ?? null,
      backupFinishedAt: backup?.finishedAt ?? null,
      chain: choice.chain.map((entry) => entry.id),
      target:
        policy.method === 'physical'
          ? (request.targetTime ?? 'latest (end of the archived WAL)')
          : backup
            ? `backup time ${backup.finishedAt}`
            : '–',
      database: policy.method === 'logical' ? (backup?.database ?? policy.database) : null,
      // Set by plan() once every tier's database is known.
      destination: '',
      walRange: backup && policy.method === 'physical' ? await this.walRange(backup) : null,
      rtoSeconds: policy.rtoSeconds,
      skipped,
      problem: backup
        ? null
        : `no whole backup of tier ${tier} in this region${request.targetTime ? ` finished by ${request.targetTime}` : ''}`,
    };
  }

  private destinationFor(plan: TierPlan, request: DrRequest): string {
    if (plan.method === 'physical') return request.workdir ? join(request.workdir, plan.tier) : '(--workdir DIR needed)';
    if (request.targetUrl) return redactUrl(databaseUrl(request.targetUrl, plan.database ?? ''));
    return `database ${plan.database} in ${SCRATCH_DESTINATION}`;
  }

  /** From the backup's first segment to the newest archived segment of its timeline or a later one. */
  private async walRange(backup: BackupManifest): Promise<TierPlan['walRange']> {
    const start = backup.walRange?.start;
    if (!start) return null;
    const archived = await new WalArchive(this.store).list(backup.tier);
    const segments = archived.filter((file) => file.file.kind === 'segment' && file.file.name >= start);
    return { start, end: segments.at(-1)?.file.name ?? null };
  }

  /** Steps 4 and 5: restore each planned tier, read its data back, time it against its RTO. */
  async run(request: DrRequest, plans: readonly TierPlan[], startedAt = new Date()): Promise<DrReport> {
    const outcomes: TierOutcome[] = [];
    let scratch: ScratchCluster | null = null;
    const scratchCluster = async () => {
      scratch ??= await this.tools.scratchCluster({ name: 'dr-logical', parentDir: await this.workdir(request), fsync: true });
      return scratch;
    };
    for (const plan of plans) {
      const outcome: TierOutcome = {
        ...plan,
        ok: false,
        restoreMs: null,
        withinRto: false,
        restoredTo: null,
        url: null,
        tables: [],
        error: null,
      };
      outcomes.push(outcome);
      if (plan.problem || !plan.backupId) {
        outcome.error = { code: 'NO_BACKUP', message: plan.problem ?? 'no backup' };
        continue;
      }
      const started = Date.now();
      try {
        const restored =
          plan.method === 'physical' ? await this.restorePhysical(plan, request) : await this.restoreLogical(plan, request, scratchCluster);
        outcome.restoreMs = Date.now() - started;
        outcome.restoredTo = restored.restoredTo;
        outcome.url = redactUrl(restored.urlFor(restored.databases[0] ?? 'postgres'));
        outcome.tables = await this.readTables(restored);
        outcome.ok = true;
        outcome.withinRto = outcome.restoreMs <= plan.rtoSeconds * 1000;
      } catch (error) {
        outcome.restoreMs ??= Date.now() - started;
        outcome.error = errorRecord(error);
      }
    }
    return {
      mode: request.mode,
      region: request.region.name,
      store: this.store.description,
      dryRun: false,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      ok: outcomes.every((outcome) => outcome.ok),
      tiers: outcomes,
    };
  }

  private async workdir(request: DrRequest): Promise<string> {
    if (!request.workdir) throw new Error('unreachable: the workdir is checked before a run');
    await mkdir(request.workdir, { recursive: true });
    // Restored servers run as the postgres account: it must traverse the workdir.
    await chmod(request.workdir, 0o711);
    return request.workdir;
  }

  /**
   * Restored with archive_mode off (the copy must not push a new timeline into the region it was
   * restored from before the operator decides where it archives), started on a free port, and
   * waited for until promoted. It listens only on its socket in the 0700 data directory, with
   * rookery's own pg_hba (postgres, local, trust), whatever the source's configuration said.
   */
  private async restorePhysical(plan: TierPlan, request: DrRequest): Promise<RestoredTier> {
    const writesRecoverySettings = this.engine.writesRecoverySettings;
    const dataDirectory = join(await this.workdir(request), plan.tier);
    const target = request.targetTime ? parseRecoveryTarget({ targetTime: request.targetTime }) : undefined;
    const result = await this.engine.restore({
      tier: plan.tier,
      backup: plan.backupId as string,
      to: dataDirectory,
      // The tablespaces beside it in the workdir: a DR rehearsal never writes the source's directories.
      tablespaces: { all: `${dataDirectory}.tablespaces` },
      target,
      ...(writesRecoverySettings ? { archiveMode: 'off' as const } : {}),
      signal: request.signal,
    });
    const port = await this.tools.freePort();
    const timeoutMs = request.recoveryTimeoutMs ?? DEFAULT_RECOVERY_TIMEOUT_MS;
    await this.engine.startRestored(dataDirectory, { port, timeoutMs, isolated: { user: 'postgres' } });
    const outcome = result.recovery
      ? await waitForPromotion({
          logFile: join(dataDirectory, RESTORED_SERVER_LOG),
          isRunning: () => this.engine.isRestoredRunning(dataDirectory),
          timeoutMs,
          signal: request.signal,
        })
      : null;
    const urlFor = (database: string) =>
      `postgres://postgres@localhost:${port}/${encodeURIComponent(database)}?host=${encodeURIComponent(dataDirectory)}`;
    const rows = await this.tools.sql.query<{ datname: string }>(
      urlFor('postgres'),
      'select datname from pg_database where datallowconn and not datistemplate order by datname',
    );
    return { urlFor, databases: rows.map((row) => row.datname), restoredTo: describeOutcome(outcome, result.manifest) };
  }

  private async restoreLogical(plan: TierPlan, request: DrRequest, scratchCluster: () => Promise<ScratchCluster>): Promise<RestoredTier> {
    const manifest = await this.engine.find(plan.tier, plan.backupId as string);
    const database = plan.database as string;
    const base = request.targetUrl ?? (await scratchCluster()).url;
    const urlFor = (name: string) => databaseUrl(base, name);
    const jobs = this.engine.config.tiers[plan.tier].policy.logical?.jobs;
    await this.engine.restore({ tier: plan.tier, backup: manifest.id, targetUrl: urlFor(database), jobs, signal: request.signal });
    return { urlFor, databases: [database], restoredTo: `backup ${manifest.id} taken at ${manifest.finishedAt}` };
  }

  /** Step 5: every user table (and materialized view) of every restored database counted. */
  private async readTables(restored: RestoredTier): Promise<TierOutcome['tables']> {
    const tables: TierOutcome['tables'] = [];
    for (const database of restored.databases) {
      const url = restored.urlFor(database);
      const names = await this.tools.sql.query<{ name: string }>(
        url,
        `select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p', 'm') and n.nspname not in ('pg_catalog', 'information_schema')
            and n.nspname not like 'pg\\_toast%' and n.nspname not like 'pg\\_temp%' order by 1`,
      );
      for (const { name } of names) {
        const [count] = await this.tools.sql.query<{ n: string }>(url, `select count(*)::text as n from ${name}`);
        tables.push({ database, table: name, rows: Number(count?.n ?? 0) });
      }
    }
    return tables;
  }
}

interface RestoredTier {
  urlFor(database: string): string;
  databases: string[];
  restoredTo: string;
}

/** The base URL with its database replaced (query, user and host kept). */
export function databaseUrl(base: string, database: string): string {
  const url = new URL(base);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

function describeOutcome(outcome: RecoveryOutcome | null, manifest: BackupManifest): string {
  if (!outcome) return `end of backup ${manifest.id} (${manifest.stopLsn ?? '?'}): no WAL replayed`;
  if (outcome.stoppedAt) return outcome.stoppedAt;
  return `end of the archived WAL: timeline ${outcome.timeline ?? '?'}, LSN ${outcome.endLsn ?? '?'}${outcome.lastTransactionTime ? `, last transaction ${outcome.lastTransactionTime}` : ''}`;
}
