import { InvariantError } from '@rookery/core';
import { CloudEvent, topicOf, validateEvent } from './cloud-event';
import { EventBus, EventHandler, SubscribeOptions, Subscription } from './event-bus';

interface Member {
  options: SubscribeOptions;
  handler: EventHandler;
}

interface Group {
  members: Member[];
  /** Events are handled one at a time per group, in publish order, as a Kafka partition would. */
  tail: Promise<void>;
}

/**
 * The embedded default (DESIGN §7): events delivered within this process, validated on publish
 * and again on delivery, in order per subscriber group. Subscriptions with the same group name
 * are members of one group and share its events, as Kafka's consumer group members do: each
 * event goes to one member, chosen by its key (the tier), so a tier's events stay with one member.
 * Nothing is kept: a subscriber that joins later does not see earlier events, and a handler
 * failure is reported, not retried (a failing event retried in memory would hold its group
 * forever). A closed bus refuses to publish rather than accept events nobody will receive.
 */
export class InProcessEventBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly groups = new Map<string, Group>();
  private closed = false;

  constructor(private readonly onHandlerError: (error: unknown, event: CloudEvent) => void = () => undefined) {}

  async publish(events: CloudEvent | readonly CloudEvent[]): Promise<void> {
    this.refuseWhenClosed();
    const list = (Array.isArray(events) ? events : [events]) as readonly CloudEvent[];
    const validated = list.map((event) => validateEvent(event));
    const deliveries: Promise<void>[] = [];
    for (const event of validated) {
      for (const group of this.groups.values()) {
        if (!group.members.some((member) => member.options.topics.includes(topicOf(event)))) continue;
        group.tail = group.tail.then(() => this.deliver(group, event));
        deliveries.push(group.tail);
      }
    }
    await Promise.all(deliveries);
  }

  async subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
    this.refuseWhenClosed();
    const member: Member = { options, handler };
    const group = this.groups.get(options.group) ?? { members: [], tail: Promise.resolve() };
    group.members.push(member);
    this.groups.set(options.group, group);
    return {
      close: async () => {
        group.members = group.members.filter((other) => other !== member);
        if (group.members.length === 0 && this.groups.get(options.group) === group) this.groups.delete(options.group);
        await group.tail;
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const group of groups) group.members = [];
    await Promise.all(groups.map((group) => group.tail));
  }

  /** To the member the event's key picks among those (still) subscribed to its topic; none left, nobody. */
  private async deliver(group: Group, event: CloudEvent): Promise<void> {
    const members = group.members.filter((member) => member.options.topics.includes(topicOf(event)));
    if (members.length === 0) return;
    const member = members[keyHash(event.subject) % members.length];
    try {
      // A copy, validated again: a handler never sees another handler's mutations.
      await member.handler(validateEvent(JSON.parse(JSON.stringify(event))));
    } catch (error) {
      this.onHandlerError(error, event);
    }
  }

  private refuseWhenClosed(): void {
    if (this.closed) throw new InvariantError('the in-process event bus is closed: nothing would receive these events');
  }
}

function keyHash(key: string): number {
  let hash = 0;
  for (let index = 0; index < key.length; index++) hash = (Math.imul(hash, 31) + key.charCodeAt(index)) >>> 0;
  return hash;
}
