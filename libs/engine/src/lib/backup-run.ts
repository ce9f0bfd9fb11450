import { BackupManifest, BackupMethod, BackupType, InvariantError, TierName, TierPolicy } from '@rookery/core';
import { BackupRunFacts, CloudEvent, backupCompletedEvent, backupFailedEvent, backupStartedEvent } from '@rookery/events';
import { requestedBackupType } from './backup-types';
import { ProgressListener, WarningListener } from './engine.progress';

/**
 * Where a backup run reports its lifecycle. The run decides when and with what facts; the sink only
 * stores: the CLI publishes the events once the command is done, a service stores each one with
 * its catalog record (outbox).
 */
export interface BackupLifecycleSink {
  /** The events' source: 'rookery/cli', 'rookery/oltp-backup'. */
  readonly source: string;
  started(event: CloudEvent<'dev.rookery.backup.started'>, run: BackupRunFacts): Promise<void>;
  completed(event: CloudEvent<'dev.rookery.backup.completed'>, manifest: BackupManifest, run: BackupRunFacts): Promise<void>;
  failed(event: CloudEvent<'dev.rookery.backup.failed'>, error: unknown, run: BackupRunFacts): Promise<void>;
}

export interface BackupRunRequest {
  tier: TierName;
  /** As asked (`--type`, a POST /backups body): checked against the tier's policy; absent means full. */
  type?: unknown;
  /** Who asked, recorded in the events: 'cli', 'api', 'schedule'. */
  actor: string;
  /** The backup's id when the caller chooses it; it must be free in the repository. */
  id?: string;
  /** Overrides the clock for ids and timestamps (tests). */
  now?: () => Date;
}

/** How a started run is followed while it streams. */
export interface BackupRunOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Told of problems that do not change the outcome (a failed backup's cleanup that failed). */
  onWarning?: WarningListener;
}

/** What the physical or logical backup of a named run receives. */
export interface NamedBackupRequest extends BackupRunOptions {
  tier: TierName;
  type: BackupType;
  id: string;
  /** Its first reading is the run's start, the time its id names. */
  now: () => Date;
}

/** What a run needs of the engine. */
export interface BackupRunPorts {
  policy(tier: TierName): TierPolicy;
  /** The primary store, as the completed event names it. */
  readonly repository: string;
  /** Names a new backup (allocateBackupId): `requested` when free, else after `startedAt`. */
  name(tier: TierName, startedAt: Date, requested?: string): Promise<string>;
  /** Takes the backup by the tier's method. */
  take(request: NamedBackupRequest): Promise<BackupManifest>;
}

/**
 * One backup from request to outcome, the same whoever asks (CLI, API, schedule): the type is
 * checked against the tier when the run is created (nothing is reported for a type the tier does
 * not take), start() names the backup and reports it started, finish() takes it and reports it
 * completed or failed. Each run reports started once and one outcome: abandon() (a service that
 * stops) reports the failure now and the later outcome is not reported.
 */
export class BackupRun {
  readonly tier: TierName;
  readonly type: BackupType;
  readonly method: BackupMethod;
  readonly actor: string;
  readonly startedAt: Date;
  private readonly clock: () => Date;
  private readonly requestedId?: string;
  private named?: BackupRunFacts;
  private ended = false;
  private abandonedRun = false;

  constructor(
    private readonly ports: BackupRunPorts,
    request: BackupRunRequest,
    private readonly sink?: BackupLifecycleSink,
  ) {
    const policy = ports.policy(request.tier);
    this.tier = request.tier;
    this.type = requestedBackupType(request.tier, policy, request.type);
    this.method = policy.method;
    this.actor = request.actor;
    this.requestedId = request.id;
    this.clock = request.now ?? (() => new Date());
    this.startedAt = this.clock();
  }

  /** The backup's id, once start() has named it. */
  get id(): string | undefined {
    return this.named?.backupId;
  }

  /** Whether abandon() reported this run failed before it ended. */
  get abandoned(): boolean {
    return this.abandonedRun;
  }

  /** The run as its events describe it; only after start(). */
  get facts(): BackupRunFacts {
    if (!this.named) throw new InvariantError(`the ${this.type} backup of tier '${this.tier}' has not been started`);
    return this.named;
  }

  /** Names the backup and reports it started; if that report fails, nothing else is. */
  async start(): Promise<BackupRunFacts> {
    if (this.named) throw new InvariantError(`backup '${this.named.backupId}' of tier '${this.tier}' was already started`);
    const id = await this.ports.name(this.tier, this.startedAt, this.requestedId);
    const facts: BackupRunFacts = {
      backupId: id,
      tier: this.tier,
      type: this.type,
      method: this.method,
      startedAt: this.startedAt.toISOString(),
      actor: this.actor,
    };
    this.named = facts;
    if (this.sink) await this.sink.started(backupStartedEvent(facts, this.sink.source), facts);
    return facts;
  }

  /** Takes the backup and reports how it ended (unless abandoned meanwhile); settles as the backup did. */
  async finish(options: BackupRunOptions = {}): Promise<BackupManifest> {
    const facts = this.facts;
    let manifest: BackupManifest;
    try {
      // The engine reads the clock once the tier is locked: that reading is the start the id names.
      manifest = await this.ports.take({
        ...options,
        tier: this.tier,
        type: this.type,
        id: facts.backupId,
        now: plannedClock(this.startedAt, this.clock),
      });
    } catch (error) {
      // A run its caller aborted (a cancel, a service stopping) failed because of that, whatever
      // error the interrupted step raised on the way out.
      const reason: unknown = options.signal?.aborted ? options.signal.reason : undefined;
      const failure = reason instanceof Error ? reason : error;
      await this.reportOutcome((sink) => sink.failed(backupFailedEvent(facts, failure, sink.source), failure, facts));
      throw failure;
    }
    const repository = this.ports.repository;
    await this.reportOutcome((sink) =>
      sink.completed(backupCompletedEvent(manifest, { actor: this.actor, repository, source: sink.source }), manifest, facts),
    );
    return manifest;
  }

  /** Reports the run failed now, with `error`, when it has not ended: its later outcome is not reported. */
  async abandon(error: unknown): Promise<void> {
    if (this.ended || !this.named) return;
    this.abandonedRun = true;
    const facts = this.named;
    await this.reportOutcome((sink) => sink.failed(backupFailedEvent(facts, error, sink.source), error, facts));
  }

  private async reportOutcome(report: (sink: BackupLifecycleSink) => Promise<void>): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.sink) await report(this.sink);
  }
}

/** The planned start on the first reading, the clock after. */
function plannedClock(planned: Date, clock: () => Date): () => Date {
  let first = true;
  return () => {
    if (!first) return clock();
    first = false;
    return new Date(planned);
  };
}
