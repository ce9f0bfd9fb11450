import { Injectable } from '@nestjs/common';
import { TierName } from '@rookery/core';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The service's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * several services or test apps in one process never collide. Alert on
 * `time() - rookery_backup_last_success_timestamp_seconds > rpo`.
 */
@Injectable()
export class BackupMetricsService {
  readonly registry = new Registry();

  private readonly finished = new Counter({
    name: 'rookery_backups_total',
    help: 'Backup runs that finished, successfully or not',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly failed = new Counter({
    name: 'rookery_backups_failed_total',
    help: 'Backup runs that failed',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly refused = new Counter({
    name: 'rookery_backups_refused_total',
    help: 'Backup requests refused because a backup of the tier was already running',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly running = new Gauge({
    name: 'rookery_backup_running',
    help: 'Backups of the tier running in this service (0 or 1)',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly lastSuccess = new Gauge({
    name: 'rookery_backup_last_success_timestamp_seconds',
    help: 'Finish time of the newest completed backup of the tier (unix seconds)',
    labelNames: ['tier'] as const,
    registers: [this.registry],
  });

  private readonly lastSuccessSeconds = new Map<TierName, number>();

  private readonly duration = new Histogram({
    name: 'rookery_backup_duration_seconds',
    help: 'Duration of backup runs',
    labelNames: ['tier', 'status'] as const,
    buckets: [1, 10, 60, 300, 900, 1800, 3600, 7200, 14_400],
    registers: [this.registry],
  });

  constructor() {
    // prom-client's names already start with process_ or nodejs_: the prefix only adds rookery_.
    collectDefaultMetrics({ register: this.registry, prefix: 'rookery_' });
  }

  backupStarted(tier: TierName): void {
    this.running.inc({ tier });
  }

  backupCompleted(tier: TierName, seconds: number, finishedAt: Date): void {
    this.running.dec({ tier });
    this.finished.inc({ tier });
    this.duration.observe({ tier, status: 'completed' }, seconds);
    this.setLastSuccess(tier, finishedAt);
  }

  backupFailed(tier: TierName, seconds: number): void {
    this.running.dec({ tier });
    this.finished.inc({ tier });
    this.failed.inc({ tier });
    this.duration.observe({ tier, status: 'failed' }, seconds);
  }

  /**
   * A request that never became a run: the tier's lock was held, seen by this service before the
   * run started or by the engine after it (`afterStart`: the run was already counted as running).
   */
  backupRefused(tier: TierName, options: { afterStart?: boolean } = {}): void {
    if (options.afterStart) this.running.dec({ tier });
    this.refused.inc({ tier });
  }

  /**
   * The newest backup in the repository is the last success (after a restart, and for backups the
   * CLI or another service took); a newer one of this service is kept.
   */
  lastSuccessFromRepository(tier: TierName, finishedAt: Date): void {
    this.setLastSuccess(tier, finishedAt);
  }

  private setLastSuccess(tier: TierName, finishedAt: Date): void {
    const seconds = Math.max(this.lastSuccessSeconds.get(tier) ?? 0, finishedAt.getTime() / 1000);
    this.lastSuccessSeconds.set(tier, seconds);
    this.lastSuccess.set({ tier }, seconds);
  }

  /** Zero-valued series for the tier, so dashboards and `absent()` alerts see it from the start. */
  registerTier(tier: TierName): void {
    this.finished.inc({ tier }, 0);
    this.failed.inc({ tier }, 0);
    this.refused.inc({ tier }, 0);
    this.running.set({ tier }, 0);
  }
}
