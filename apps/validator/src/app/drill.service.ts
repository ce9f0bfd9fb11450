import { ConflictException, HttpException, HttpStatus, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { EventLedger } from '@rookery/catalog';
import type { RookeryConfig } from '@rookery/config';
import { DEFAULT_DRILL_SCHEDULE, TIER_NAMES, TierName, isRookeryError } from '@rookery/core';
import { EventData } from '@rookery/events';
import { ROOKERY_CONFIG, ServiceEventsService, httpStatusForCode } from '@rookery/service-kit';
import { DrillOutcome, DrillReport, RestoreDrill, runRecordedDrill } from '@rookery/validation';
import { ledgerEntry } from './validator.service';

const DRILL_TYPES = ['dev.rookery.drill.completed', 'dev.rookery.drill.failed'] as const;

/** A drill as GET /drills lists it: drill.completed data, or drill.failed data with `error`. */
export type DrillRecord = EventData<(typeof DRILL_TYPES)[number]> & { eventId: string; ok: boolean };

/**
 * The answer to a drill that failed: 422 when it ran and its restore or data checks failed, else
 * the status of what stopped it (404 no backup to drill, 503 a store or server unreachable, 500
 * anything else), with the reason and the drill's record (as GET /drills lists it).
 */
export class FailedDrillException extends HttpException {
  constructor(outcome: Extract<DrillOutcome, { ok: false }>) {
    const { error } = outcome.event.data;
    const status = outcome.report ? HttpStatus.UNPROCESSABLE_ENTITY : httpStatusForCode(error.code);
    const hint = isRookeryError(outcome.error) ? outcome.error.hint : undefined;
    super(
      {
        code: error.code,
        message: error.message,
        ...(hint ? { hint } : {}),
        drill: { eventId: outcome.event.id, ok: false, ...outcome.event.data },
      },
      status,
    );
  }
}

/** The SchedulerRegistry name of a tier's drill job: 'oltp-restore-drill'. */
export function drillJobName(tier: TierName): string {
  return `${tier}-restore-drill`;
}

/**
 * Restore drills: one at a time per tier, on the tier policy's drillSchedule (monthly by default)
 * and on request. Each drill is published through the outbox and recorded in the ledger (GET
 * /drills): drill.completed with its figures, or drill.failed with the reason.
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
    this.logger.log(
      `restore drills scheduled: ${TIER_NAMES.map((tier) => `${tier} '${this.config.tiers[tier].policy.drillSchedule ?? DEFAULT_DRILL_SCHEDULE}'`).join(', ')} (UTC)`,
    );
  }

  /**
   * Runs a drill of the tier's latest backup and publishes and records it, whatever its end: a
   * drill that failed or could not run is a drill.failed with the reason. A failed drill then
   * throws FailedDrillException (its reason, its record); 409 while one runs.
   */
  async run(tier: TierName): Promise<DrillReport> {
    if (this.running.has(tier)) throw new ConflictException(`a restore drill of tier '${tier}' is already running`);
    this.running.add(tier);
    try {
      const outcome = await runRecordedDrill(this.drill, tier, {}, this.events.source);
      await this.events.publish(outcome.event);
      await this.ledger.append([ledgerEntry(outcome.event)]);
      if (!outcome.ok) {
        this.logger.warn(`drill of ${tier} failed: ${outcome.event.data.error.message}`);
        throw new FailedDrillException(outcome);
      }
      const report = outcome.report;
      this.logger.log(
        `drill of ${tier} (${report.backupId}): restore ${report.restoreMs} ms, ${report.withinRto ? 'within' : 'MISSED'} RTO ${report.rtoSeconds} s`,
      );
      return report;
    } finally {
      this.running.delete(tier);
    }
  }

  /** Drills recorded, newest first, failed ones with their reason (`error`). */
  async list(tier?: TierName): Promise<DrillRecord[]> {
    const entries = await this.ledger.list({ types: DRILL_TYPES, subject: tier });
    return entries
      .reverse()
      .map((entry) => ({ eventId: entry.eventId, ok: false, ...(entry.data as EventData<(typeof DRILL_TYPES)[number]>) }));
  }

  private scheduled(tier: TierName): Promise<void> {
    return this.run(tier).then(
      () => undefined,
      (error: unknown) => {
        // A failed drill is recorded and logged by run(); left is one that never started (one still running).
        if (!(error instanceof FailedDrillException)) this.logger.warn(`scheduled drill of tier '${tier}' not run: ${String(error)}`);
      },
    );
  }
}
