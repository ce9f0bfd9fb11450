import { ConflictException, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { EventLedger } from '@rookery/catalog';
import type { RookeryConfig } from '@rookery/config';
import { DEFAULT_DRILL_SCHEDULE, TIER_NAMES, TierName } from '@rookery/core';
import { EventData, createEvent } from '@rookery/events';
import { ROOKERY_CONFIG, ServiceEventsService } from '@rookery/service-kit';
import { DrillReport, RestoreDrill } from '@rookery/validation';
import { ledgerEntry } from './validator.service';

/** The SchedulerRegistry name of a tier's drill job: 'oltp-restore-drill'. */
export function drillJobName(tier: TierName): string {
  return `${tier}-restore-drill`;
}

/**
 * Restore drills: one at a time per tier, on the tier policy's drillSchedule (monthly by default)
 * and on request. Each drill's figures are published as drill.completed through the outbox and
 * recorded in the ledger (GET /drills), failed drills included.
 */
@Injectable()
export class DrillService implements OnApplicationBootstrap {
  private readonly logger = new Logger(DrillService.name);
  private readonly running = new Set<TierName>();

  constructor(
    private readonly drill: RestoreDrill,
    private readonly events: ServiceEventsService,
    private readonly ledger: EventLedger,
    private readonly scheduler: SchedulerRegistry,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
  ) {}

  onApplicationBootstrap(): void {
    for (const tier of TIER_NAMES) {
      const schedule = this.config.tiers[tier].policy.drillSchedule ?? DEFAULT_DRILL_SCHEDULE;
      const job = CronJob.from({ cronTime: schedule, onTick: () => this.scheduled(tier), timeZone: 'UTC' });
      this.scheduler.addCronJob(drillJobName(tier), job);
      job.start();
    }
    this.logger.log(`restore drills scheduled: ${TIER_NAMES.map((tier) => `${tier} '${this.config.tiers[tier].policy.drillSchedule ?? DEFAULT_DRILL_SCHEDULE}'`).join(', ')} (UTC)`);
  }

  /** Runs a drill of the tier's latest backup and publishes its figures; 409 while one runs. */
  async run(tier: TierName): Promise<DrillReport> {
    if (this.running.has(tier)) throw new ConflictException(`a restore drill of tier '${tier}' is already running`);
    this.running.add(tier);
    try {
      const report = await this.drill.run(tier);
      const event = createEvent('dev.rookery.drill.completed', tier, drillData(report), { source: this.events.source });
      await this.events.publish(event);
      await this.ledger.append([ledgerEntry(event)]);
      const outcome = report.ok ? (report.withinRto ? 'within' : 'MISSED') : 'FAILED, RTO';
      this.logger.log(`drill of ${tier} (${report.backupId}): restore ${report.restoreMs} ms, ${outcome} RTO ${report.rtoSeconds} s`);
      return report;
    } finally {
      this.running.delete(tier);
    }
  }

  async list(tier?: TierName): Promise<(EventData<'dev.rookery.drill.completed'> & { eventId: string })[]> {
    const entries = await this.ledger.list({ types: ['dev.rookery.drill.completed'], subject: tier });
    return entries.reverse().map((entry) => ({ eventId: entry.eventId, ...(entry.data as EventData<'dev.rookery.drill.completed'>) }));
  }

  private scheduled(tier: TierName): Promise<void> {
    return this.run(tier).then(
      () => undefined,
      (error: unknown) => this.logger.warn(`scheduled drill of tier '${tier}' not run: ${String(error)}`),
    );
  }
}

export function drillData(report: DrillReport): EventData<'dev.rookery.drill.completed'> {
  return {
    backupId: report.backupId,
    tier: report.tier,
    ok: report.ok,
    restoreMs: report.restoreMs,
    rtoSeconds: report.rtoSeconds,
    withinRto: report.withinRto,
    checks: report.checks,
    finishedAt: report.finishedAt,
  };
}
