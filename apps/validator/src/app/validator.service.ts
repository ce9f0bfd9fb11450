import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { BackupCatalog, EventLedger, LedgerEntry } from '@rookery/catalog';
import { TierName } from '@rookery/core';
import { CloudEvent, EventBus, EventData, Subscription, TOPICS, createEvent } from '@rookery/events';
import { ServiceEventsService } from '@rookery/service-kit';
import { BackupValidator, ValidationReport, ValidationRequestWindow, eventFailure, failureSummary } from '@rookery/validation';

export const VALIDATOR_BUS = Symbol('VALIDATOR_BUS');
export const VALIDATOR_GROUP = 'rookery-validator';

const VALIDATION_TYPES = ['dev.rookery.validation.passed', 'dev.rookery.validation.failed'] as const;

/**
 * The id of the validation event answering one backup.completed event: derived, not random, so a
 * redelivered backup.completed that is validated again (the validator died after publishing and
 * before recording) produces the same event, which every consumer drops as a duplicate.
 */
export function validationEventId(completedEventId: string): string {
  const hex = createHash('sha256').update(`rookery-validator:${completedEventId}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Consumes backup.completed (group rookery-validator), validates the backup and publishes
 * validation.passed or .failed through the service's outbox, then records the result in the
 * ledger (GET /validations). A validation that could not run to the end is a validation.failed
 * with the reason (`error`), not a silence. Idempotent by event id across restarts: an event whose validation
 * is already recorded is skipped; one validated but not recorded is validated again and its
 * event, having the same id, is stored once. At most one validation of a backup per
 * validator.requestWindowSeconds, whatever number of backup.completed events name it.
 */
@Injectable()
export class ValidatorService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ValidatorService.name);
  private subscription: Subscription | null = null;

  constructor(
    private readonly validator: BackupValidator,
    private readonly events: ServiceEventsService,
    private readonly catalog: BackupCatalog,
    private readonly ledger: EventLedger,
    @Inject(VALIDATOR_BUS) private readonly bus: EventBus,
    private readonly requests: ValidationRequestWindow,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.bus.subscribe({ group: VALIDATOR_GROUP, topics: [TOPICS.backup], fromBeginning: true }, (event) =>
      this.handle(event),
    );
    this.logger.log(`validating every backup.completed on ${TOPICS.backup} (${this.bus.kind} bus, group ${VALIDATOR_GROUP})`);
  }

  async onApplicationShutdown(): Promise<void> {
    // The consumer finishes the message in hand and commits it before it leaves.
    await this.subscription?.close();
    await this.bus.close();
    await this.ledger.close();
  }

  async handle(event: CloudEvent): Promise<void> {
    if (event.type !== 'dev.rookery.backup.completed') return;
    const completed = event as CloudEvent<'dev.rookery.backup.completed'>;
    const id = validationEventId(event.id);
    if (await this.ledger.has(id)) return;
    // A validation reads the whole backup: another request for a backup validated (or being
    // validated) within the window is answered by that validation, not by reading it again.
    const { tier, backupId } = completed.data;
    if (!this.requests.admit(`${tier}/${backupId}`, event.id)) {
      const again = this.requests.openAgainAt(`${tier}/${backupId}`)?.toISOString();
      this.logger.warn(
        `backup ${backupId} of tier ${tier}: validation requested again by event ${event.id} from ${event.source}; not validated again before ${again}`,
      );
      return;
    }
    const result = await this.validate(completed, id);
    await this.publishOnce(result);
    await this.ledger.append([ledgerEntry(result)]);
  }

  /** The validation's event: passed or failed with every check, or failed with the reason when it could not run to the end. */
  private async validate(completed: CloudEvent<'dev.rookery.backup.completed'>, id: string): Promise<CloudEvent> {
    const { tier, backupId, manifestChecksum } = completed.data;
    const options = { source: this.events.source, id };
    try {
      const report = await this.validator.validate(tier, backupId, { manifestChecksum });
      if (report.ok)
        this.logger.log(`backup ${backupId} of tier ${tier} passed validation (${report.checks.length} checks, ${report.durationMs} ms)`);
      else this.logger.warn(`backup ${backupId} of tier ${tier} failed validation: ${failureSummary(report.checks)}`);
      return createEvent(
        report.ok ? 'dev.rookery.validation.passed' : 'dev.rookery.validation.failed',
        tier,
        validationData(report),
        options,
      );
    } catch (error) {
      const failure = eventFailure(error);
      this.logger.warn(`validation of backup ${backupId} of tier ${tier} could not run to the end: ${failure.message}`);
      return createEvent(
        'dev.rookery.validation.failed',
        tier,
        { backupId, tier, checks: [], validatedAt: new Date().toISOString(), error: failure },
        options,
      );
    }
  }

  /** Validations recorded, newest first; optionally one tier's or one backup's. */
  async list(
    filter: { tier?: TierName; backupId?: string } = {},
  ): Promise<(EventData<'dev.rookery.validation.passed'> & { ok: boolean; eventId: string })[]> {
    const entries = await this.ledger.list({ types: VALIDATION_TYPES, subject: filter.tier });
    return entries
      .filter((entry) => !filter.backupId || entry.data['backupId'] === filter.backupId)
      .reverse()
      .map((entry) => ({
        eventId: entry.eventId,
        ok: entry.type === 'dev.rookery.validation.passed',
        ...(entry.data as EventData<'dev.rookery.validation.passed'>),
      }));
  }

  /** Stores the event in the outbox once: a second attempt with the same id finds it there. */
  private async publishOnce(event: CloudEvent): Promise<void> {
    if (await this.catalog.outbox.has(event.id)) return;
    await this.events.publish(event);
  }
}

export function validationData(report: ValidationReport): EventData<'dev.rookery.validation.passed'> {
  return { backupId: report.backupId, tier: report.tier, checks: report.checks, validatedAt: report.validatedAt };
}

export function ledgerEntry(event: CloudEvent): Omit<LedgerEntry, 'receivedAt'> {
  return {
    eventId: event.id,
    type: event.type,
    subject: event.subject,
    source: event.source,
    time: event.time,
    data: event.data as Record<string, unknown>,
  };
}
