import { PolicyFacts, TIER_NAMES, TierName, TierPolicy } from '@rookery/core';
import { EventLedger, LedgerQuery } from '@rookery/catalog';
import { ALL_TOPICS, CloudEvent, EventBus, Subscription } from '@rookery/events';
import { TierCompliance, computeTierCompliance } from './tier-compliance';

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
      { eventId: event.id, type: event.type, subject: event.subject, source: event.source, time: event.time, data: event.data as Record<string, unknown> },
    ]);
    return added === 1;
  }

  subscribe(bus: EventBus, group = 'rookery-compliance-reporting'): Promise<Subscription> {
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
