import { BackupManifest, PolicyFacts, TIER_NAMES, TierName, TierPolicy } from '@rookery/core';
import { EventLedger, LedgerQuery } from '@rookery/catalog';
import { ALL_TOPICS, CloudEvent, EventBus, Subscription, backupCompletedEvent } from '@rookery/events';
import { TierCompliance, computeTierCompliance } from './tier-compliance';

/** The source of ledger entries recorded from the repository rather than received as events. */
export const BACKFILL_SOURCE = 'rookery/backfill';

/** The consumer group compliance-reporting reads every topic in. */
export const COMPLIANCE_GROUP = 'rookery-compliance-reporting';

/**
 * The compliance-reporting core: consumes every topic into the ledger (once per event id, so a
 * redelivery or a consumer restart never counts an event twice) and derives each tier's view
 * from the ledger on request.
 */
export class ComplianceLedgerService {
  constructor(
    private readonly ledger: EventLedger,
    private readonly policies: Readonly<Record<TierName, TierPolicy>>,
    private readonly facts: Partial<Record<TierName, PolicyFacts>> = {},
  ) {}

  /** Records one event; false when the ledger already had it. */
  async ingest(event: CloudEvent): Promise<boolean> {
    const added = await this.ledger.append([
      {
        eventId: event.id,
        type: event.type,
        subject: event.subject,
        source: event.source,
        time: event.time,
        data: event.data as Record<string, unknown>,
      },
    ]);
    return added === 1;
  }

  /**
   * Backfills the ledger from the repository: each backup whose manifest the repository holds and
   * the ledger has no backup.completed for (taken before events were configured, or by the CLI
   * without a bus) is recorded from its manifest under the id `backfill:<backup id>`. A second run
   * records nothing; an event arriving later for the same backup is kept but counted once
   * (computeTierCompliance counts a backup once per outcome). The repository holds no validation
   * or drill records (they exist only as events), so those stay "not recorded" until they run.
   */
  async backfill(
    manifests: readonly BackupManifest[],
    options: { repository: string },
  ): Promise<{ recorded: number; alreadyRecorded: number }> {
    const known = new Set(
      (await this.ledger.list({ types: ['dev.rookery.backup.completed'] })).map((entry) => String(entry.data['backupId'])),
    );
    const entries = manifests
      .filter((manifest) => !known.has(manifest.id))
      .map((manifest) => {
        const event = backupCompletedEvent(manifest, { actor: 'backfill', repository: options.repository, source: BACKFILL_SOURCE });
        return {
          eventId: `backfill:${manifest.id}`,
          type: event.type,
          subject: event.subject,
          source: event.source,
          time: manifest.finishedAt,
          data: event.data,
        };
      });
    const recorded = await this.ledger.append(entries);
    return { recorded, alreadyRecorded: manifests.length - recorded };
  }

  subscribe(bus: EventBus, group = COMPLIANCE_GROUP): Promise<Subscription> {
    return bus.subscribe({ group, topics: ALL_TOPICS, fromBeginning: true }, async (event) => {
      await this.ingest(event);
    });
  }

  async tier(tier: TierName, options: { now?: Date; query?: LedgerQuery } = {}): Promise<TierCompliance> {
    const events = await this.ledger.list({ ...options.query, subject: tier });
    return computeTierCompliance(this.policies[tier], events, { now: options.now, facts: this.facts[tier] });
  }

  async tiers(options: { now?: Date; query?: LedgerQuery; tiers?: readonly TierName[] } = {}): Promise<TierCompliance[]> {
    return Promise.all((options.tiers ?? TIER_NAMES).map((tier) => this.tier(tier, options)));
  }
}
