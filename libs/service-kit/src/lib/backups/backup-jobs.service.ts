import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { BackupCatalog, BackupRecord } from '@rookery/catalog';
import type { RookeryConfig } from '@rookery/config';
import {
  BackupManifest,
  BackupNotFoundError,
  BackupType,
  InvariantError,
  LockHeldError,
  TierName,
  isBackupId,
  isRookeryError,
  makeBackupId,
} from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { BackupRunFacts, backupCompletedEvent, backupFailedEvent, backupStartedEvent } from '@rookery/events';
import { ServiceEventsService } from '../events/service-events.service';
import { BackupMetricsService } from '../metrics/backup-metrics.service';
import { ROOKERY_CONFIG, ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';
import { requestedBackupType } from './backup-types';

export interface BackupStartOptions {
  /** Who asked: 'api', 'schedule', later the authenticated actor. */
  requestedBy: string;
  /** full (default), or the tier's scheduled type: incremental (content) or snapshot (olap). */
  type?: BackupType;
}

interface RunningBackup {
  id: string;
  requestedBy: string;
  startedAt: string;
  abort: AbortController;
  done: Promise<void>;
  facts: BackupRunFacts;
  /** Recorded failed while its engine call was still pending (shutdown): its outcome is not recorded again. */
  abandoned: boolean;
}

/**
 * Backups as a service runs them: one at a time per tier, in the background, each run recorded in
 * the catalog from start to finish. The API and the schedule both call start(); the engine does
 * the work and the repository lock keeps other processes (CLI, another instance) out.
 */
@Injectable()
export class BackupJobService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(BackupJobService.name);
  private readonly running = new Map<TierName, RunningBackup>();
  /** How many ids were minted in the current second, per tier (ids carry the second). */
  private readonly mintedThisSecond = new Map<TierName, { base: string; count: number }>();

  constructor(
    private readonly engine: RookeryEngine,
    private readonly catalog: BackupCatalog,
    private readonly metrics: BackupMetricsService,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
    @Inject(SERVICE_KIT_OPTIONS) private readonly options: ResolvedServiceKitOptions,
    private readonly events: ServiceEventsService,
  ) {}

  /**
   * Starts a backup of the tier (full unless `options.type` names the tier's scheduled type) and
   * resolves with its running record once the backup holds the repository lock and streams (or
   * after `startWaitMs`). Rejects with LockHeldError when a backup of the tier is already running,
   * here or in another process, and with ConfigError, recording nothing, when the tier does not
   * take the requested type.
   */
  async start(tier: TierName, options: BackupStartOptions): Promise<BackupRecord> {
    const type = requestedBackupType(tier, this.config.tiers[tier].policy, options.type);
    // Checked and claimed synchronously: two requests in the same tick cannot both pass.
    const current = this.running.get(tier);
    if (current) {
      this.metrics.backupRefused(tier);
      throw new LockHeldError(tier, `backup '${current.id}' requested by ${current.requestedBy} at ${current.startedAt} in this service`);
    }
    const startedAt = new Date();
    // Ids name the second a backup started; another backup of the same second gets a suffix, so
    // two runs never share a catalog record (nor, in the engine, a repository folder).
    const base = makeBackupId(tier, startedAt);
    const minted = this.mintedThisSecond.get(tier);
    const taken = minted?.base === base ? minted.count : 0;
    const id = taken === 0 ? base : makeBackupId(tier, startedAt, String(taken + 1));
    this.mintedThisSecond.set(tier, { base, count: taken + 1 });
    const abort = new AbortController();
    let settle!: () => void;
    const facts: BackupRunFacts = {
      backupId: id,
      tier,
      type,
      method: this.config.tiers[tier].policy.method,
      startedAt: startedAt.toISOString(),
      actor: options.requestedBy,
    };
    const run: RunningBackup = {
      id,
      requestedBy: options.requestedBy,
      startedAt: facts.startedAt,
      abort,
      done: new Promise<void>((resolve) => (settle = resolve)),
      facts,
      abandoned: false,
    };
    this.running.set(tier, run);

    let record: BackupRecord;
    try {
      // The record and its backup.started event are stored together (outbox), then relayed.
      record = await this.catalog.recordStarted(
        { id, tier, type, method: facts.method, startedAt: run.startedAt, requestedBy: options.requestedBy },
        this.events.outboxItems(backupStartedEvent(facts, this.events.source)),
      );
      this.events.nudge();
    } catch (error) {
      this.running.delete(tier);
      settle();
      throw error;
    }
    this.metrics.backupStarted(tier);
    this.logger.log(`${type} backup '${id}' of tier '${tier}' requested by ${options.requestedBy}`);

    let streaming!: () => void;
    const started = new Promise<void>((resolve) => (streaming = resolve));
    const backup = this.engine.backup({
      tier,
      type,
      signal: abort.signal,
      // The engine names the backup after its first clock reading; handing it the time this record
      // was created under keeps the catalog id and the manifest id the same.
      now: plannedClock(startedAt),
      id,
      onProgress: () => streaming(),
      onWarning: (message) => this.logger.warn(message),
    });
    const finished = this.finish(run, startedAt, backup).finally(() => {
      if (this.running.get(tier) === run) this.running.delete(tier);
      settle();
    });

    // Answer once the run is past the lock (data flows), or failed early, or the wait is over.
    const early = await Promise.race([
      started.then(() => null),
      backup.then(
        () => null,
        (error: unknown) => error,
      ),
      delay(this.options.startWaitMs).then(() => null),
    ]);
    if (early) {
      await finished;
      throw early;
    }
    return (await this.catalog.get(id)) ?? record;
  }

  /** Backups of the tier, newest last, from the catalog. */
  list(tier: TierName): Promise<BackupRecord[]> {
    return this.catalog.list(tier);
  }

  /**
   * One backup of the tier. The catalog is only an index: a backup id it does not know is looked
   * up in the repository (the truth) and indexed when found there.
   */
  async get(tier: TierName, id: string): Promise<BackupRecord> {
    const record = await this.catalog.get(id);
    if (record?.tier === tier) return record;
    if (!isBackupId(id)) throw new BackupNotFoundError(tier, id);
    const manifest = await this.engine.find(tier, id);
    return this.catalog.recordCompleted(manifest);
  }

  /**
   * Rebuilds the tier's catalog records from the repository's manifests, and fails runs a previous
   * process left `running` (they died with it; their lock is broken by the next backup).
   */
  async reindex(tier: TierName): Promise<{ indexed: number; removed: number; damaged: number }> {
    const { backups, damaged } = await this.engine.list(tier);
    const interrupted = this.running.has(tier)
      ? 0
      : await this.catalog.markInterrupted(tier, 'interrupted: the service stopped during the backup');
    const result = await this.catalog.reindex(backups, { tier });
    this.metrics.registerTier(tier);
    const newest = backups.at(-1);
    if (newest) this.metrics.lastSuccessFromRepository(tier, new Date(newest.finishedAt));
    for (const manifest of damaged) this.logger.warn(`damaged manifest '${manifest.key}': ${manifest.problem}`);
    this.logger.log(
      `catalog of tier '${tier}' reindexed from the repository: ${result.indexed} backups, ${result.removed} removed, ${interrupted} interrupted runs, ${damaged.length} damaged manifests`,
    );
    return { ...result, damaged: damaged.length };
  }

  /**
   * A running backup is aborted when the service stops and its record says so. The wait is bounded:
   * a run that ignores the abort must not keep the process alive (its lock goes stale with it), nor
   * stay 'running' in the catalog as if it could still succeed: it is recorded failed.
   */
  async beforeApplicationShutdown(): Promise<void> {
    const runs = [...this.running.values()];
    for (const run of runs) run.abort.abort(new Error('the service is shutting down'));
    const waitMs = this.options.shutdownWaitMs;
    const settled = Promise.all(runs.map((run) => run.done)).then(() => true);
    if (await Promise.race([settled, delay(waitMs).then(() => false)])) return;
    const stuck = runs.filter((run) => this.running.get(run.facts.tier) === run);
    for (const run of stuck) {
      run.abandoned = true;
      this.running.delete(run.facts.tier);
      const error = new InvariantError(
        `backup '${run.id}' of tier '${run.facts.tier}' stopped before it finished: it was still running ${waitMs} ms after the service asked it to stop ` +
          '(this is a bug; its repository lock is broken by the next backup once this process has exited)',
      );
      await this.recordFailure(run.facts, new Date(run.startedAt), error);
    }
    this.events.nudge();
  }

  private async finish(run: RunningBackup, startedAt: Date, backup: Promise<BackupManifest>): Promise<void> {
    const { facts } = run;
    const { tier, backupId: id } = facts;
    let manifest: BackupManifest;
    try {
      manifest = await backup;
    } catch (error) {
      if (run.abandoned)
        return this.logger.warn(`backup '${id}' of tier '${tier}', recorded failed at shutdown, ended: ${describe(error)}`);
      await this.recordFailure(facts, startedAt, error);
      this.events.nudge();
      return;
    }
    if (run.abandoned) {
      // Its manifest is committed: the next reindex lists it, whatever the catalog said at shutdown.
      return this.logger.warn(`backup '${id}' of tier '${tier}', recorded failed at shutdown, completed after all`);
    }
    this.metrics.backupCompleted(tier, seconds(startedAt), new Date(manifest.finishedAt));
    this.logger.log(`backup '${manifest.id}' of tier '${tier}' completed: ${manifest.bytes} bytes, ${manifest.storedBytes} stored`);
    const completed = backupCompletedEvent(manifest, {
      actor: facts.actor,
      repository: this.engine.context.repository.store.description,
      source: this.events.source,
    });
    await this.catalog.recordCompleted(manifest, { runningId: id, events: this.events.outboxItems(completed) }).catch((error: unknown) => {
      // The backup exists (its manifest is committed); the next reindex puts it in the catalog.
      this.logger.error(`cannot record backup '${manifest.id}' in the catalog: ${describe(error)}`);
    });
    this.events.nudge();
  }

  private async recordFailure(facts: BackupRunFacts, startedAt: Date, error: unknown): Promise<void> {
    const { tier, backupId: id } = facts;
    const failed = backupFailedEvent(facts, error, this.events.source);
    if (isRookeryError(error) && error.code === 'LOCK_HELD') {
      // Refused, never started: another process holds the tier's lock. Nothing to keep.
      this.metrics.backupRefused(tier, { afterStart: true });
      await this.catalog.remove(id).catch(() => undefined);
      // Its backup.started event is already out: say how the run ended.
      await this.events
        .publish(failed)
        .catch((publishError: unknown) => this.logger.error(`cannot store the backup.failed event of '${id}': ${describe(publishError)}`));
      this.logger.warn(`backup '${id}' of tier '${tier}' refused: ${describe(error)}`);
      return;
    }
    this.metrics.backupFailed(tier, seconds(startedAt));
    this.logger.error(`backup '${id}' of tier '${tier}' failed: ${describe(error)}`);
    await this.catalog.recordFailed(id, error, new Date(), this.events.outboxItems(failed)).catch((catalogError: unknown) => {
      this.logger.error(`cannot record the failure of backup '${id}' in the catalog: ${describe(catalogError)}`);
    });
  }
}

function describe(error: unknown): string {
  if (isRookeryError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** The planned start on the first reading, the real time after. */
function plannedClock(planned: Date): () => Date {
  let first = true;
  return () => {
    if (!first) return new Date();
    first = false;
    return new Date(planned);
  };
}

function seconds(since: Date): number {
  return (Date.now() - since.getTime()) / 1000;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
