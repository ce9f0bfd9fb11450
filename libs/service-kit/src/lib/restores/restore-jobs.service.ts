import { randomBytes } from 'node:crypto';
import { BeforeApplicationShutdown, Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigError, NotRunningError, RestoreNotFoundError, RestoreRunningError, TierName, makeBackupId } from '@rookery/core';
import { LogicalRestoreResult, PhysicalRestoreResult, ProgressListener, RookeryEngine } from '@rookery/engine';
import { createEvent } from '@rookery/events';
import { ServiceEventsService } from '../events/service-events.service';
import { JobChanges, JobProgress, jobProgressOf, watchUpdates } from '../jobs/job-progress';
import { ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';
import { EngineRestoreRequest, RestoreRequest, engineRestoreRequest, restoreLimits } from './restore-request';
import { describeError, unrefDelay } from '../jobs/job-helpers';

export type RestoreStatus = 'running' | 'completed' | 'failed';

/** A restore a service runs, as it serves it (kept in memory: the newest RESTORES_KEPT). */
export interface RestoreRecord {
  id: string;
  tier: TierName;
  kind: 'logical' | 'physical';
  /** As requested: a backup id or 'latest'. */
  backup: string;
  /** The backup restored; null until the restore knows it ('latest' resolved at its end). */
  backupId: string | null;
  status: RestoreStatus;
  startedAt: string;
  finishedAt: string | null;
  /** host:port/database of a logical restore (never a password); the directory of a physical one. */
  target: string;
  /** Logical bytes restored; null until the restore ends. */
  bytes: number | null;
  error: string | null;
  requestedBy: string;
  /** The backups applied, in order: a full, then each incremental up to the one restored. */
  backupsApplied: string[];
}

/** One update of RestoreJobService.watch. */
export interface RestoreProgressUpdate {
  restore: RestoreRecord;
  progress: JobProgress | null;
}

/** Restores remembered per service, finished ones dropped oldest first. */
export const RESTORES_KEPT = 100;

interface RunningRestore {
  record: RestoreRecord;
  abort: AbortController;
  progress: JobProgress | null;
  done: Promise<void>;
}

/**
 * Restores as a service runs them for its callers: in the background, one at a time per tier,
 * through the same engine restore as `rookery restore`. A logical restore goes into a database
 * the caller names (without a password: the service uses its own credentials); a physical one
 * into a new directory under restores.directoryRoot, left for the operator to start. Each start
 * and end is logged and audited with who asked.
 */
@Injectable()
export class RestoreJobService implements BeforeApplicationShutdown {
  private readonly logger = new Logger(RestoreJobService.name);
  private readonly records = new Map<string, RestoreRecord>();
  private readonly running = new Map<TierName, RunningRestore>();
  private readonly changes = new JobChanges();

  constructor(
    private readonly engine: RookeryEngine,
    private readonly events: ServiceEventsService,
    @Inject(SERVICE_KIT_OPTIONS) private readonly options: ResolvedServiceKitOptions,
  ) {}

  /**
   * Checks the request (ConfigError naming what is refused, nothing started), starts the restore
   * in the background and resolves with its running record once data flows (or after
   * startWaitMs). A restore that fails before that (unknown backup, a target that is not empty)
   * rejects with its error, and stays listed as failed.
   */
  async start(tier: TierName, request: RestoreRequest, requestedBy: string): Promise<RestoreRecord> {
    const { config } = this.engine;
    const planned = engineRestoreRequest(tier, config.tiers[tier].policy, request, restoreLimits(config, tier));
    if (planned.kind === 'physical' && planned.request.target && !this.engine.writesRecoverySettings) {
      throw new ConfigError('a recovery target needs recovery settings, which this service does not write', ['target.recoveryTarget'], {
        hint: 'start the service through its main (it passes the rookery command for restore_command), or restore with the CLI on the host',
      });
    }
    const current = this.running.get(tier);
    if (current) throw new RestoreRunningError(tier, `restore '${current.record.id}' requested by ${current.record.requestedBy}`);

    const startedAt = new Date();
    const record: RestoreRecord = {
      id: `restore-${makeBackupId(tier, startedAt, randomBytes(2).toString('hex'))}`,
      tier,
      kind: planned.kind,
      backup: request.backup,
      backupId: request.backup === 'latest' ? null : request.backup,
      status: 'running',
      startedAt: startedAt.toISOString(),
      finishedAt: null,
      target: planned.target,
      bytes: null,
      error: null,
      requestedBy,
      backupsApplied: [],
    };
    let settle!: () => void;
    let streaming!: () => void;
    const started = new Promise<void>((resolve) => (streaming = resolve));
    const job: RunningRestore = {
      record,
      abort: new AbortController(),
      progress: null,
      done: new Promise((resolve) => (settle = resolve)),
    };
    this.running.set(tier, job);
    this.remember(record);
    this.logger.log(
      `${record.kind} restore '${record.id}' of backup '${record.backup}' of tier '${tier}' into ${record.target} requested by ${requestedBy}`,
    );
    this.audit(record, 'restore.start', 'succeeded');

    const onProgress: ProgressListener = (event) => {
      streaming();
      job.progress = jobProgressOf(event);
      this.changes.changed(record.id);
    };
    const restore = this.run(planned, job.abort.signal, onProgress).then(
      (result) => this.finish(job, result),
      (error: unknown) => this.fail(job, error),
    );
    void restore.finally(() => {
      if (this.running.get(tier) === job) this.running.delete(tier);
      settle();
      this.changes.changed(record.id);
    });

    await Promise.race([started, job.done, unrefDelay(this.options.startWaitMs)]);
    if (job.record.status === 'failed') {
      await job.done;
      throw (await restore) ?? new Error(job.record.error ?? 'the restore failed');
    }
    return { ...job.record };
  }

  /** The restores of the tier this service remembers, newest last. */
  list(tier: TierName): RestoreRecord[] {
    return [...this.records.values()].filter((record) => record.tier === tier).map((record) => ({ ...record }));
  }

  /** One restore; RestoreNotFoundError when this service does not remember it. */
  get(id: string): RestoreRecord {
    const record = this.records.get(id);
    if (!record) throw new RestoreNotFoundError(id);
    return { ...record };
  }

  /** One restore of the tier with its progress while it runs (GET /restores/:id). */
  served(tier: TierName, id: string): RestoreRecord & { progress: JobProgress | null } {
    const record = this.get(id);
    if (record.tier !== tier) throw new RestoreNotFoundError(id);
    return { ...record, progress: this.progressOf(record) };
  }

  /**
   * Aborts a restore running in this service, waits for it to end, and returns its record: failed,
   * its error naming who cancelled it. NotRunningError when it has ended already. What the restore
   * had written stays (a partial directory or database): the operator removes it.
   */
  async cancel(id: string, cancelledBy: string): Promise<RestoreRecord> {
    const record = this.get(id);
    const job = this.running.get(record.tier);
    if (job?.record.id !== id) throw new NotRunningError('restore', `restore '${id}'`, record.status);
    this.logger.warn(`restore '${id}' of tier '${record.tier}' cancelled by ${cancelledBy}`);
    job.abort.abort(new Error(`cancelled by ${cancelledBy}`));
    await job.done;
    return this.get(id);
  }

  /**
   * The restore's record and progress now, after each progress change (at most 4 a second), and
   * a last time once it has ended; then the stream ends. RestoreNotFoundError for an unknown id.
   */
  watch(id: string): AsyncIterable<RestoreProgressUpdate> {
    return watchUpdates<RestoreProgressUpdate>({
      current: async () => {
        const restore = this.get(id);
        return { restore, progress: this.progressOf(restore) };
      },
      isFinal: (update) => update.restore.status !== 'running',
      subscribe: (wake) => this.changes.subscribe(id, wake),
    });
  }

  /** Running restores are aborted when the service stops (bounded wait), and recorded failed. */
  async beforeApplicationShutdown(): Promise<void> {
    const jobs = [...this.running.values()];
    for (const job of jobs) job.abort.abort(new Error('the service is shutting down'));
    await Promise.race([Promise.all(jobs.map((job) => job.done)), unrefDelay(this.options.shutdownWaitMs)]);
  }

  private progressOf(record: RestoreRecord): JobProgress | null {
    const job = this.running.get(record.tier);
    return record.status === 'running' && job?.record.id === record.id ? job.progress : null;
  }

  private run(
    planned: EngineRestoreRequest,
    signal: AbortSignal,
    onProgress: ProgressListener,
  ): Promise<LogicalRestoreResult | PhysicalRestoreResult> {
    if (planned.kind === 'logical') return this.engine.restore({ ...planned.request, signal, onProgress });
    return this.engine.restore({ ...planned.request, signal, onProgress });
  }

  private finish(job: RunningRestore, result: LogicalRestoreResult | PhysicalRestoreResult): undefined {
    const { record } = job;
    Object.assign(record, {
      status: 'completed',
      finishedAt: new Date().toISOString(),
      backupId: result.manifest.id,
      bytes: result.bytes,
      backupsApplied: 'chain' in result ? result.chain : [result.manifest.id],
      ...('target' in result ? { target: result.target } : {}),
    } satisfies Partial<RestoreRecord>);
    this.logger.log(
      `restore '${record.id}' of tier '${record.tier}' completed: backup '${record.backupId}', ${record.bytes} bytes into ${record.target}`,
    );
    this.audit(record, 'restore.finish', 'succeeded');
    return undefined;
  }

  /** Records the failure (the abort's reason when it was cancelled) and hands the error back. */
  private fail(job: RunningRestore, error: unknown): unknown {
    const { record } = job;
    const reason: unknown = job.abort.signal.aborted ? job.abort.signal.reason : undefined;
    const failure = reason instanceof Error ? reason : error;
    Object.assign(record, {
      status: 'failed',
      finishedAt: new Date().toISOString(),
      error: describeError(failure),
    } satisfies Partial<RestoreRecord>);
    this.logger.error(`restore '${record.id}' of tier '${record.tier}' failed: ${record.error}`);
    this.audit(record, 'restore.finish', 'failed');
    return failure;
  }

  /** Keeps the newest RESTORES_KEPT records; a running one is never dropped. */
  private remember(record: RestoreRecord): void {
    this.records.set(record.id, record);
    for (const [id, kept] of this.records) {
      if (this.records.size <= RESTORES_KEPT) break;
      if (kept.status !== 'running') this.records.delete(id);
    }
  }

  private audit(record: RestoreRecord, action: string, outcome: 'succeeded' | 'failed'): void {
    const event = createEvent(
      'dev.rookery.audit',
      record.tier,
      {
        actor: record.requestedBy,
        action,
        resource: `tier:${record.tier}`,
        outcome,
        at: new Date().toISOString(),
        detail: {
          restore: record.id,
          kind: record.kind,
          backup: record.backupId ?? record.backup,
          target: record.target,
          ...(record.error ? { error: record.error } : {}),
        },
      },
      { source: this.events.source },
    );
    this.events
      .publish(event)
      .catch((error: unknown) => this.logger.error(`cannot store the audit event of restore '${record.id}': ${describeError(error)}`));
  }
}
