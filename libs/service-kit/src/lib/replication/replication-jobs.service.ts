import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import type { TierName } from '@rookery/core';
import { ReplicationRun, ReplicationStatus, RookeryEngine } from '@rookery/engine';
import { replicationEvents } from '@rookery/events';
import { ServiceEventsService } from '../events/service-events.service';
import { SERVICE_TIER } from '../service-kit.constants';

/** How often a service copies what its replica regions lack (a new backup, new WAL, a failed copy). */
export const REPLICATION_INTERVAL_MS = 15 * 60 * 1000;
/** Every this many runs, a run re-reads every copy (finds damaged ones): daily at the default interval. */
export const REPLICATION_VERIFY_EVERY = 96;

/**
 * Replication as a service runs it: the engine's replicate on a loop for the service's tier (a
 * failed or lagging copy is retried on the next turn), each run's events through the outbox, and
 * the status behind GET /replication. Runs never overlap; a failure is logged, never thrown.
 */
@Injectable()
export class ReplicationJobService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReplicationJobService.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<ReplicationRun> | null = null;
  private runs = 0;
  private last: ReplicationRun | null = null;
  private tier: TierName | null = null;

  constructor(
    private readonly engine: RookeryEngine,
    private readonly events: ServiceEventsService,
    private readonly modules: ModuleRef,
  ) {}

  onApplicationBootstrap(): void {
    // The tier is the app's (its module provides SERVICE_TIER); a service without one has no loop.
    this.tier = this.serviceTier();
    if (!this.tier || this.engine.config.repositories.length < 2) return;
    this.timer = setInterval(() => void this.scheduled(), REPLICATION_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** One run now (or the one already running): copies what is missing, with verify everything is re-read. */
  replicate(tier: TierName, options: { verify?: boolean } = {}): Promise<ReplicationRun> {
    this.running ??= this.run(tier, options).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async status(tier: TierName): Promise<ReplicationStatus & { lastRun: ReplicationRun | null }> {
    return { ...(await this.engine.replicationStatus(tier)), lastRun: this.last?.tier === tier ? this.last : null };
  }

  private serviceTier(): TierName | null {
    try {
      return this.modules.get<TierName>(SERVICE_TIER, { strict: false });
    } catch {
      return null;
    }
  }

  private async scheduled(): Promise<void> {
    if (!this.tier) return;
    this.runs += 1;
    await this.replicate(this.tier, { verify: this.runs % REPLICATION_VERIFY_EVERY === 0 }).catch((error: unknown) => {
      this.logger.error(`replication of tier '${this.tier}' failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  private async run(tier: TierName, options: { verify?: boolean }): Promise<ReplicationRun> {
    const run = await this.engine.replicate(tier, options);
    this.last = run;
    for (const region of run.regions) {
      const copied = region.backups.filter((backup) => backup.outcome === 'copied').length;
      const failed = region.backups.filter((backup) => backup.outcome === 'failed').length;
      const line = `replication of tier '${tier}' to ${region.region}: ${copied} backups copied, ${failed} failed, ${region.wal?.copied.length ?? 0} WAL files copied`;
      if (failed || region.error || region.wal?.failed.length)
        this.logger.warn(`${line}${region.error ? ` (${region.error.message})` : ''}`);
      else this.logger.log(line);
    }
    const events = replicationEvents(run, this.events.source);
    if (events.length) await this.events.publish(...events);
    return run;
  }
}
