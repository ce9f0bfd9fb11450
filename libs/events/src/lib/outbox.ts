import { CloudEvent, parseEvent, serializeEvent } from './cloud-event';
import { EventBus } from './event-bus';

/**
 * The transactional outbox (DESIGN §7): a service stores each event in its catalog in the same
 * transaction as the state change it reports, and a relay publishes stored events to the bus
 * and marks them relayed. A bus outage delays events; it never loses them. Implemented over the
 * catalog database by libs/catalog; wired by service-kit.
 */
export interface OutboxEntry {
  eventId: string;
  /** The serialized CloudEvent. */
  payload: string;
  createdAt: Date;
  attempts: number;
}

export interface OutboxStore {
  /** Entries not yet relayed, oldest first. */
  pending(limit: number): Promise<OutboxEntry[]>;
  markRelayed(eventIds: readonly string[], at: Date): Promise<void>;
  markFailed(eventIds: readonly string[], error: string): Promise<void>;
  /** Entries that can never be published (not a valid event for this rookery): set aside, never offered again. */
  markInvalid(eventIds: readonly string[], error: string): Promise<void>;
}

export function outboxPayload(event: CloudEvent): string {
  return serializeEvent(event).toString('utf8');
}

export interface OutboxRelayOptions {
  batchSize?: number;
  /** Pause between polls when the outbox is empty or the bus failed (ms). */
  intervalMs?: number;
  onError?: (error: unknown) => void;
}

export class OutboxRelay {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(
    private readonly store: OutboxStore,
    private readonly bus: EventBus,
    private readonly options: OutboxRelayOptions = {},
  ) {}

  /** Publishes every pending entry (in batches, oldest first); returns how many were relayed. */
  async relayOnce(): Promise<number> {
    if (this.running) return this.running;
    this.running = this.drain().finally(() => (this.running = null));
    return this.running;
  }

  start(): void {
    if (this.timer) return;
    const tick = async () => {
      try {
        await this.relayOnce();
      } catch (error) {
        this.options.onError?.(error);
      }
      if (this.timer) this.timer = setTimeout(tick, this.options.intervalMs ?? 1_000);
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running?.catch(() => undefined);
  }

  private async drain(): Promise<number> {
    let relayed = 0;
    for (;;) {
      const batch = await this.store.pending(this.options.batchSize ?? 100);
      if (batch.length === 0) return relayed;
      const events: CloudEvent[] = [];
      for (const entry of batch) {
        try {
          events.push(parseEvent(entry.payload));
        } catch (error) {
          // One bad entry must not hold back every event behind it.
          await this.store.markInvalid([entry.eventId], error instanceof Error ? error.message : String(error));
        }
      }
      const ids = events.map((event) => event.id);
      if (ids.length === 0) continue;
      try {
        await this.bus.publish(events);
      } catch (error) {
        await this.store.markFailed(ids, error instanceof Error ? error.message : String(error));
        throw error;
      }
      await this.store.markRelayed(ids, new Date());
      relayed += ids.length;
    }
  }
}
