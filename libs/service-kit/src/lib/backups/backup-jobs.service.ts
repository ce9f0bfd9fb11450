import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { BackupCatalog, BackupRecord } from '@rookery/catalog';
import {
  BackupNotFoundError,
  BackupType,
  InvariantError,
  LockHeldError,
  NotRunningError,
  TierName,
  isBackupId,
  isRookeryError,
} from '@rookery/core';
import { BackupLifecycleSink, BackupRun, RookeryEngine } from '@rookery/engine';
import { BackupRunFacts } from '@rookery/events';
import { ServiceEventsService } from '../events/service-events.service';
import { JobChanges, JobProgress, jobProgressOf, watchUpdates } from '../jobs/job-progress';
import { BackupMetricsService } from '../metrics/backup-metrics.service';
import { ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';
import { describeError, unrefDelay } from '../jobs/job-helpers';

export interface BackupStartOptions {
  /** Who asked: the caller's principal (REST, gRPC) or 'schedule'. */
  requestedBy: string;
  /** full (default), or a type the tier takes: incremental (content: changed rows; oltp: changed pages) or snapshot (olap). */
  type?: BackupType;
}

/** A backup as the service serves it: the catalog record, with where it is while it runs here. */
export type ServedBackupRecord = BackupRecord & {
  /** Phase and bytes of a backup running in this service; null otherwise. */
  progress: JobProgress | null;
};

/** One update of BackupJobService.watch. */
export interface BackupProgressUpdate {
  backup: BackupRecord;
  progress: JobProgress | null;
}

interface RunningBackup {
  run: BackupRun;
  requestedBy: string;
  abort: AbortController;
  done: Promise<void>;
  /** Set once the run is named (its catalog record exists). */
  id?: string;
  progress: JobProgress | null;
}

/**
 * Backups as a service runs them: one at a time per tier, in the background, each run recorded in
 * the catalog from start to finish. The API and the schedule both call start(); the engine's
 * BackupRun names, checks and takes the backup and reports its lifecycle to this service's sink
 * (the catalog record and its events, stored together); the repository lock keeps other
 * processes (CLI, another instance) out.
 */
@Injectable()
export class BackupJobService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(BackupJobService.name);
  private readonly running = new Map<TierName, RunningBackup>();
  private readonly changes = new JobChanges();

  constructor(
    private readonly engine: RookeryEngine,
    private readonly catalog: BackupCatalog,
    private readonly metrics: BackupMetricsService,
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
    const recorded: { record?: BackupRecord } = {};
    const run = this.engine.backupRun({ tier, type: options.type, actor: options.requestedBy }, this.lifecycle(recorded));
    // Checked and claimed synchronously: two requests in the same tick cannot both pass.
    const current = this.running.get(tier);
    if (current) {
      this.metrics.backupRefused(tier);
      const what = current.run.id ? `backup '${current.run.id}'` : 'a backup';
      throw new LockHeldError(
        tier,
        `${what} requested by ${current.requestedBy} at ${current.run.startedAt.toISOString()} in this service`,
      );
    }
    let settle!: () => void;
    const job: RunningBackup = {
      run,
      requestedBy: options.requestedBy,
      abort: new AbortController(),
      done: new Promise<void>((resolve) => (settle = resolve)),
      progress: null,
    };
    this.running.set(tier, job);

    let facts: BackupRunFacts;
    try {
      // Named, then recorded with its backup.started event (outbox) before the engine starts.
      facts = await run.start();
    } catch (error) {
      this.running.delete(tier);
      settle();
      throw error;
    }
    const id = facts.backupId;
    job.id = id;
    this.metrics.backupStarted(tier);
    this.logger.log(`${run.type} backup '${id}' of tier '${tier}' requested by ${options.requestedBy}`);

    let streaming!: () => void;
    const started = new Promise<void>((resolve) => (streaming = resolve));
    const backup = run.finish({
      signal: job.abort.signal,
      onProgress: (event) => {
        streaming();
        job.progress = jobProgressOf(event);
        this.changes.changed(id);
      },
      onWarning: (message) => this.logger.warn(message),
    });
    const finished = backup
      .then(
        () => run.abandoned && this.logger.warn(`backup '${id}' of tier '${tier}', recorded failed at shutdown, completed after all`),
        (error: unknown) =>
          run.abandoned &&
          this.logger.warn(`backup '${id}' of tier '${tier}', recorded failed at shutdown, ended: ${describeError(error)}`),
      )
      .finally(() => {
        if (this.running.get(tier) === job) this.running.delete(tier);
        settle();
        this.changes.changed(id);
      });

    // Answer once the run is past the lock (data flows), or failed early, or the wait is over.
    const early = await Promise.race([
      started.then(() => null),
      backup.then(
        () => null,
        (error: unknown) => error,
      ),
      unrefDelay(this.options.startWaitMs).then(() => null),
    ]);
    if (early) {
      await finished;
      throw early;
    }
    return (await this.catalog.get(id)) ?? (recorded.record as BackupRecord);
  }

  /** Backups of the tier, newest last, from the catalog; a backup running here with its progress. */
  async list(tier: TierName): Promise<ServedBackupRecord[]> {
    return (await this.catalog.list(tier)).map((record) => this.served(tier, record));
  }

  /**
   * One backup of the tier, with its progress while it runs here. The catalog is only an index: a
   * backup id it does not know is looked up in the repository (the truth) and indexed when found
   * there.
   */
  async get(tier: TierName, id: string): Promise<ServedBackupRecord> {
    return this.served(tier, await this.record(tier, id));
  }

  /** The record as the service serves it: with its progress while it runs here, else progress null. */
  private served(tier: TierName, record: BackupRecord): ServedBackupRecord {
    return { ...record, progress: record.status === 'running' ? (this.runningHere(tier, record.id)?.progress ?? null) : null };
  }

  /**
   * Aborts a backup running in this service, waits for it to end, and returns its record: failed,
   * its error naming who cancelled it (or completed, when it was committing as the cancel came).
   * NotRunningError when it is not running here (finished, or run by another process).
   */
  async cancel(tier: TierName, id: string, cancelledBy: string): Promise<BackupRecord> {
    const record = await this.record(tier, id);
    const job = this.runningHere(tier, id);
    if (!job) throw new NotRunningError('backup', `backup '${id}' of tier '${tier}'`, record.status);
    this.logger.warn(`backup '${id}' of tier '${tier}' cancelled by ${cancelledBy}`);
    job.abort.abort(new Error(`cancelled by ${cancelledBy}`));
    await job.done;
    return this.record(tier, id);
  }

  /**
   * The backup's record and progress now, after each progress change (at most 4 a second), and a
   * last time once it is no longer running; then the stream ends. A finished backup yields once.
   * BackupNotFoundError for an id the tier does not have (thrown by the first read).
   */
  watch(tier: TierName, id: string): AsyncIterable<BackupProgressUpdate> {
    return watchUpdates<BackupProgressUpdate>({
      current: async () => {
        const { progress, ...backup } = await this.get(tier, id);
        return { backup, progress };
      },
      isFinal: (update) => update.backup.status !== 'running',
      subscribe: (wake) => this.changes.subscribe(id, wake),
    });
  }

  private async record(tier: TierName, id: string): Promise<BackupRecord> {
    const record = await this.catalog.get(id);
    if (record?.tier === tier) return record;
    if (!isBackupId(id)) throw new BackupNotFoundError(tier, id);
    const manifest = await this.engine.find(tier, id);
    return this.catalog.recordCompleted(manifest);
  }

  private runningHere(tier: TierName, id: string): RunningBackup | undefined {
    const job = this.running.get(tier);
    return job?.id === id ? job : undefined;
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
    const jobs = [...this.running.values()];
    for (const job of jobs) job.abort.abort(new Error('the service is shutting down'));
    const waitMs = this.options.shutdownWaitMs;
    const settled = Promise.all(jobs.map((job) => job.done)).then(() => true);
    if (await Promise.race([settled, unrefDelay(waitMs).then(() => false)])) return;
    const stuck = jobs.filter((job) => this.running.get(job.run.tier) === job);
    for (const { run } of stuck) {
      this.running.delete(run.tier);
      const error = new InvariantError(
        `backup '${run.id}' of tier '${run.tier}' stopped before it finished: it was still running ${waitMs} ms after the service asked it to stop ` +
          '(this is a bug; its repository lock is broken by the next backup once this process has exited)',
      );
      await run.abandon(error);
    }
    this.events.nudge();
  }

  /**
   * Where a run's lifecycle goes: its catalog record, each event stored with it (outbox) and
   * relayed, the metrics and the log.
   */
  private lifecycle(recorded: { record?: BackupRecord }): BackupLifecycleSink {
    return {
      source: this.events.source,
      started: async (event, run) => {
        const { backupId: id, tier, type, method, startedAt, actor: requestedBy } = run;
        recorded.record = await this.catalog.recordStarted(
          { id, tier, type, method, startedAt, requestedBy },
          this.events.outboxItems(event),
        );
        this.events.nudge();
      },
      completed: async (event, manifest, run) => {
        const { tier, backupId: id } = run;
        this.metrics.backupCompleted(tier, seconds(run), new Date(manifest.finishedAt));
        this.logger.log(`backup '${manifest.id}' of tier '${tier}' completed: ${manifest.bytes} bytes, ${manifest.storedBytes} stored`);
        await this.catalog.recordCompleted(manifest, { runningId: id, events: this.events.outboxItems(event) }).catch((error: unknown) => {
          // The backup exists (its manifest is committed); the next reindex puts it in the catalog.
          this.logger.error(`cannot record backup '${manifest.id}' in the catalog: ${describeError(error)}`);
        });
        this.events.nudge();
      },
      failed: async (event, error, run) => {
        await this.recordFailure(event, error, run);
        this.events.nudge();
      },
    };
  }

  private async recordFailure(failed: Parameters<BackupLifecycleSink['failed']>[0], error: unknown, run: BackupRunFacts): Promise<void> {
    const { tier, backupId: id } = run;
    if (isRookeryError(error) && error.code === 'LOCK_HELD') {
      // Refused, never started: another process holds the tier's lock. Nothing to keep.
      this.metrics.backupRefused(tier, { afterStart: true });
      await this.catalog.remove(id).catch(() => undefined);
      // Its backup.started event is already out: say how the run ended.
      await this.events
        .publish(failed)
        .catch((publishError: unknown) =>
          this.logger.error(`cannot store the backup.failed event of '${id}': ${describeError(publishError)}`),
        );
      this.logger.warn(`backup '${id}' of tier '${tier}' refused: ${describeError(error)}`);
      return;
    }
    this.metrics.backupFailed(tier, seconds(run));
    this.logger.error(`backup '${id}' of tier '${tier}' failed: ${describeError(error)}`);
    await this.catalog.recordFailed(id, error, new Date(), this.events.outboxItems(failed)).catch((catalogError: unknown) => {
      this.logger.error(`cannot record the failure of backup '${id}' in the catalog: ${describeError(catalogError)}`);
    });
  }
}

function seconds(run: BackupRunFacts): number {
  return (Date.now() - Date.parse(run.startedAt)) / 1000;
}
