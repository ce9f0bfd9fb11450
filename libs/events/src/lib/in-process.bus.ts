import { CloudEvent, topicOf, validateEvent } from './cloud-event';
import { EventBus, EventHandler, SubscribeOptions, Subscription } from './event-bus';

interface Group {
  options: SubscribeOptions;
  handler: EventHandler;
  /** Events are handled one at a time per group, in publish order, as a Kafka partition would. */
  tail: Promise<void>;
}

/**
 * The embedded default (DESIGN §7): events delivered within this process, validated on publish
 * and again on delivery, in order per subscriber group. Nothing is kept: a subscriber that joins
 * later does not see earlier events, and a handler failure is reported, not retried forever.
 */
export class InProcessEventBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly groups = new Set<Group>();

  constructor(private readonly onHandlerError: (error: unknown, event: CloudEvent) => void = () => undefined) {}

  async publish(events: CloudEvent | readonly CloudEvent[]): Promise<void> {
    const list = (Array.isArray(events) ? events : [events]) as readonly CloudEvent[];
    const validated = list.map((event) => validateEvent(event));
    const deliveries: Promise<void>[] = [];
    for (const event of validated) {
      for (const group of this.groups) {
        if (!group.options.topics.includes(topicOf(event))) continue;
        group.tail = group.tail.then(() => this.deliver(group, event));
        deliveries.push(group.tail);
      }
    }
    await Promise.all(deliveries);
  }

  async subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
    const group: Group = { options, handler, tail: Promise.resolve() };
    this.groups.add(group);
    return {
      close: async () => {
        this.groups.delete(group);
        await group.tail;
      },
    };
  }

  async close(): Promise<void> {
    const groups = [...this.groups];
    this.groups.clear();
    await Promise.all(groups.map((group) => group.tail));
  }

  private async deliver(group: Group, event: CloudEvent): Promise<void> {
    try {
      // A copy, validated again: a handler never sees another handler's mutations.
      await group.handler(validateEvent(JSON.parse(JSON.stringify(event))));
    } catch (error) {
      this.onHandlerError(error, event);
    }
  }
}
