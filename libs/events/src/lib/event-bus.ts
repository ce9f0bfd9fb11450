import { CloudEvent } from './cloud-event';
import { Topic } from './event-types';

export type EventHandler = (event: CloudEvent) => Promise<void>;

export interface SubscribeOptions {
  /** Consumer group: each group sees every event once (at least once); members share partitions. */
  group: string;
  topics: readonly Topic[];
  /** Start from the oldest retained event when the group has no committed position (default true). */
  fromBeginning?: boolean;
  /** Called for a message that is not a valid rookery event; it is skipped so it cannot block its partition. */
  onInvalid?: (error: Error, raw: Buffer | null) => void;
}

export interface Subscription {
  close(): Promise<void>;
}

/**
 * Where events go. publish() validates every event and refuses the batch if one is invalid; it
 * resolves only once the bus holds the events durably (Kafka: acked by every in-sync replica;
 * in-process: delivered to current subscribers), and rejects once the bus is closed. Each group
 * gets every event of its topics, one of its members handling it, a tier's events in order; a
 * closed subscription gets no more, and its close() waits for the handler in progress. Delivery
 * is at least once, so handlers must be idempotent by event id (see idempotentHandler). Where the
 * buses differ (the contract, event-bus.contract.ts, checks each): Kafka keeps events for groups
 * that subscribe later and redelivers an event whose handler failed; the in-process bus keeps
 * nothing and reports a handler failure instead of retrying it.
 */
export interface EventBus {
  readonly kind: 'in-process' | 'kafka';
  publish(events: CloudEvent | readonly CloudEvent[]): Promise<void>;
  subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription>;
  close(): Promise<void>;
}

/** Remembers which event ids a consumer has handled. */
export interface SeenEvents {
  has(id: string): Promise<boolean>;
  add(id: string): Promise<void>;
}

/** Ids kept in memory, the oldest forgotten past `capacity`: for consumers without a ledger. */
export class InMemorySeenEvents implements SeenEvents {
  private readonly ids = new Set<string>();

  constructor(private readonly capacity = 100_000) {}

  async has(id: string): Promise<boolean> {
    return this.ids.has(id);
  }

  async add(id: string): Promise<void> {
    this.ids.add(id);
    if (this.ids.size > this.capacity) this.ids.delete(this.ids.values().next().value as string);
  }
}

/**
 * Wraps a handler so a redelivered event (same id) is handled once. The id is recorded only after
 * the handler succeeded: a crash in between means one more delivery, never a lost event.
 */
export function idempotentHandler(handler: EventHandler, seen: SeenEvents): EventHandler {
  return async (event) => {
    if (await seen.has(event.id)) return;
    await handler(event);
    await seen.add(event.id);
  };
}
