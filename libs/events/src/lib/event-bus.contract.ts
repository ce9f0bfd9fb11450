import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EventSchemaError, TierName } from '@rookery/core';
import { pollUntil } from '@rookery/testing';
import { CloudEvent, createEvent } from './cloud-event';
import { EventBus, EventHandler } from './event-bus';
import { TOPICS, Topic } from './event-types';

/**
 * The EventBus port's contract (event-bus.ts), run against every bus: the in-process bus in a unit
 * spec, Kafka against a real broker. Where the buses differ by design, the implementation's spec
 * states which way it goes in `BusGuarantees`, and the contract checks that promise instead of
 * skipping the case.
 */
export interface BusGuarantees {
  /**
   * A group subscribing after events were published still receives them (Kafka keeps them and a
   * new group starts from the oldest) — or it receives only what is published once it subscribed
   * (in-process: nothing is kept).
   */
  retainsEvents: boolean;
  /**
   * A handler that fails gets the same event again until it succeeds (Kafka: the offset is not
   * committed) — or the failure goes to the bus's error sink and delivery moves on (in-process: a
   * failing event retried in memory would hold the group forever and die with the process anyway).
   */
  redeliversAfterHandlerFailure: boolean;
  /**
   * Messages reach the bus from outside this process (a broker other producers write to), so a
   * consumer meets bytes the bus's own publish never validated; `publishRaw` puts such bytes there.
   */
  acceptsForeignMessages: boolean;
}

export interface ContractBus {
  bus: EventBus;
  /** Handler failures the bus reported instead of redelivering (buses that do not redeliver). */
  reportedFailures?: () => readonly { error: unknown; event: CloudEvent }[];
  /**
   * Puts bytes on a topic as a foreign producer would, bypassing the bus's own validation: only a
   * bus whose messages cross a wire can receive what it did not publish.
   */
  publishRaw?: (topic: Topic, key: string, value: string) => Promise<void>;
  close?: () => Promise<void>;
}

export function describeEventBusContract(name: string, guarantees: BusGuarantees, makeBus: () => Promise<ContractBus>): void {
  describe(`EventBus contract: ${name}`, () => {
    let subject: ContractBus;
    let bus: EventBus;

    beforeAll(async () => {
      subject = await makeBus();
      bus = subject.bus;
    }, 180_000);

    afterAll(async () => {
      await bus?.close();
      await subject?.close?.();
    });

    it('delivers a published event to a subscribed group, equal to what was published and validated', async () => {
      const sink = new Sink();
      const subscription = await bus.subscribe({ group: group('round-trip'), topics: [TOPICS.backup] }, sink.handler);
      const event = started('oltp');
      await bus.publish(event);
      await sink.received([event]);
      await subscription.close();
      expect(sink.events(event.id)).toEqual([event]);
      expect(sink.events(event.id)[0]).not.toBe(event);
    });

    it('delivers only the topics a group subscribed to', async () => {
      const backup = new Sink();
      const validation = new Sink();
      const subscriptions = [
        await bus.subscribe({ group: group('topics-backup'), topics: [TOPICS.backup] }, backup.handler),
        await bus.subscribe({ group: group('topics-validation'), topics: [TOPICS.validation] }, validation.handler),
      ];
      const events = [started('oltp'), passed('oltp')];
      await bus.publish(events);
      await Promise.all([backup.received([events[0]]), validation.received([events[1]])]);
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      expect(backup.ids(events)).toEqual([events[0].id]);
      expect(validation.ids(events)).toEqual([events[1].id]);
    });

    it('keeps the events of one tier (the key) in publish order, across publish calls', async () => {
      const sink = new Sink();
      const subscription = await bus.subscribe({ group: group('order'), topics: [TOPICS.backup] }, sink.handler);
      const tiers: TierName[] = ['oltp', 'queue', 'oltp', 'content', 'queue', 'oltp', 'olap', 'oltp', 'content', 'queue'];
      const events = tiers.map((tier) => started(tier));
      await bus.publish(events.slice(0, 5));
      for (const event of events.slice(5)) await bus.publish(event);
      await sink.received(events);
      await subscription.close();
      for (const tier of new Set(tiers)) {
        const ofTier = events.filter((event) => event.subject === tier).map((event) => event.id);
        expect(sink.ids(events).filter((id) => ofTier.includes(id))).toEqual(ofTier);
      }
    });

    it('gives every group each event, and shares a group between its members instead of copying to each', async () => {
      const audit = new Sink();
      const members = [new Sink(), new Sink()];
      const validatorGroup = group('validator');
      const subscriptions = [
        await bus.subscribe({ group: group('audit'), topics: [TOPICS.backup] }, audit.handler),
        ...(await Promise.all(members.map((member) => bus.subscribe({ group: validatorGroup, topics: [TOPICS.backup] }, member.handler)))),
      ];
      const events = (['oltp', 'queue', 'content', 'olap'] as const).flatMap((tier) => [started(tier), started(tier)]);
      await bus.publish(events);
      await audit.received(events);
      // The group as a whole handles every event (at least once: a rebalance may redeliver one).
      await pollUntil(
        async () => new Set([...members[0].ids(events), ...members[1].ids(events)]).size,
        (size) => size === events.length,
        { what: `the ${events.length} events handled by the group's members together` },
      );
      await Promise.all(subscriptions.map((subscription) => subscription.close()));
      expect(audit.ids(events)).toHaveLength(events.length);
      expect(members[0].ids(events).length + members[1].ids(events).length).toBeLessThan(2 * events.length);
    });

    it(
      guarantees.retainsEvents
        ? 'delivers events published before a new group subscribed (they are retained)'
        : 'delivers to a new group only what is published after it subscribed (nothing is retained)',
      async () => {
        const before = started('oltp');
        await bus.publish(before);
        const sink = new Sink();
        const subscription = await bus.subscribe({ group: group('late'), topics: [TOPICS.backup] }, sink.handler);
        const after = started('oltp');
        await bus.publish(after);
        await sink.received([after]);
        await subscription.close();
        expect(sink.ids([before, after])).toEqual(guarantees.retainsEvents ? [before.id, after.id] : [after.id]);
      },
    );

    it(
      guarantees.redeliversAfterHandlerFailure
        ? 'delivers again an event whose handler failed, and the events behind it after that'
        : 'reports an event whose handler failed and delivers the events behind it',
      async () => {
        const events = [started('queue'), started('queue'), started('queue')];
        const attempts: string[] = [];
        const handled = new Sink();
        const failing = events[1].id;
        const subscription = await bus.subscribe({ group: group('failure'), topics: [TOPICS.backup] }, async (event) => {
          attempts.push(event.id);
          if (event.id === failing && attempts.filter((id) => id === failing).length === 1) throw new Error('handler broke once');
          await handled.handler(event);
        });
        await bus.publish(events);
        await handled.received(guarantees.redeliversAfterHandlerFailure ? events : [events[0], events[2]]);
        await subscription.close();
        const ours = attempts.filter((id) => events.some((event) => event.id === id));
        if (guarantees.redeliversAfterHandlerFailure) {
          // At least once: the failed event again (the ones before it may come again with it), in order.
          expect(handled.ids(events)).toEqual(events.map((event) => event.id));
          expect(ours.filter((id) => id === failing).length).toBeGreaterThanOrEqual(2);
        } else {
          expect(ours).toEqual(events.map((event) => event.id));
          expect(handled.ids(events)).toEqual([events[0].id, events[2].id]);
          expect(subject.reportedFailures?.().filter(({ event }) => event.id === failing)).toEqual([
            { error: new Error('handler broke once'), event: events[1] },
          ]);
        }
      },
    );

    it('refuses to publish an event that is not valid and delivers nothing of the batch', async () => {
      const sink = new Sink();
      const subscription = await bus.subscribe({ group: group('invalid'), topics: [TOPICS.backup] }, sink.handler);
      const good = started('oltp');
      const unknownType = { ...started('oltp'), type: 'dev.rookery.backup.nope' } as unknown as CloudEvent;
      const extraField = { ...started('oltp'), data: { ...started('oltp').data, password: 'hunter2' } } as CloudEvent;
      const oldSchema = { ...started('oltp'), dataschema: 'urn:rookery:schema:dev.rookery.backup.started:v0' } as CloudEvent;
      for (const bad of [unknownType, extraField, oldSchema]) {
        await expect(bus.publish([good, bad])).rejects.toBeInstanceOf(EventSchemaError);
      }
      const marker = started('oltp');
      await bus.publish(marker);
      await sink.received([marker]);
      await subscription.close();
      expect(sink.ids([good, unknownType, extraField, oldSchema, marker])).toEqual([marker.id]);
    });

    // On a bus nothing reaches but what its own publish validated, the refusal above is the whole guarantee.
    if (guarantees.acceptsForeignMessages) {
      it('refuses a message from a foreign producer that is not a valid rookery event, reports it and keeps going', async () => {
        if (!subject.publishRaw) throw new Error(`${name} accepts foreign messages: its contract spec must give publishRaw`);
        const invalid: string[] = [];
        const sink = new Sink();
        const subscription = await bus.subscribe(
          { group: group('foreign'), topics: [TOPICS.backup], onInvalid: (error) => invalid.push(error.message) },
          sink.handler,
        );
        const forged = { ...started('oltp'), data: { ...started('oltp').data, password: 'hunter2' } };
        await subject.publishRaw(TOPICS.backup, 'oltp', 'not json');
        await subject.publishRaw(TOPICS.backup, 'oltp', JSON.stringify(forged));
        const after = started('oltp');
        await bus.publish(after);
        await sink.received([after]);
        await pollUntil(
          async () => invalid.length,
          (count) => count >= 2,
          { what: 'both foreign messages reported' },
        );
        await subscription.close();
        expect(sink.ids([forged, after])).toEqual([after.id]);
        expect(invalid).toEqual(
          expect.arrayContaining(['event is not valid JSON', expect.stringMatching(`^event ${forged.id} of type .* has invalid data`)]),
        );
      });
    }

    it('stops delivering to a closed subscription, and its close waits for the handler in progress', async () => {
      const gate = new Gate();
      let finished = 0;
      const closed = new Sink();
      const open = new Sink();
      const first = started('oltp');
      const subscriptions = {
        closed: await bus.subscribe({ group: group('closing'), topics: [TOPICS.backup] }, async (event) => {
          await closed.handler(event);
          if (event.id !== first.id) return;
          await gate.opened;
          finished++;
        }),
        open: await bus.subscribe({ group: group('staying'), topics: [TOPICS.backup] }, open.handler),
      };
      const publishing = bus.publish(first);
      await closed.received([first]);
      const closing = subscriptions.closed.close();
      let closeResolved = false;
      void closing.then(() => (closeResolved = true));
      await turns(20);
      expect(closeResolved).toBe(false);
      gate.open();
      await closing;
      expect(finished).toBe(1);
      await publishing;

      const later = started('oltp');
      await bus.publish(later);
      await open.received([first, later]);
      await subscriptions.open.close();
      expect(closed.ids([first, later])).toEqual([first.id]);
    });

    it('closes its subscriptions on close, and refuses to publish afterwards', async () => {
      const own = await makeBus();
      const sink = new Sink();
      await own.bus.subscribe({ group: group('bus-close'), topics: [TOPICS.backup] }, sink.handler);
      const first = started('content');
      await own.bus.publish(first);
      await sink.received([first]);
      await own.bus.close();
      await own.close?.();
      await expect(own.bus.publish(started('content'))).rejects.toThrow(/closed|disconnected/);
      // Where the transport outlives the bus (a broker), the group is not served any more.
      const witness = new Sink();
      const subscription = await bus.subscribe({ group: group('bus-close-witness'), topics: [TOPICS.backup] }, witness.handler);
      const later = started('content');
      await bus.publish(later);
      await witness.received([later]);
      await subscription.close();
      expect(sink.ids([first, later])).toEqual([first.id]);
    });
  });
}

/** A group name of its own per case: a broker keeps a group's position between runs. */
function group(purpose: string): string {
  return `contract-${purpose}-${randomUUID().slice(0, 8)}`;
}

function started(tier: TierName): CloudEvent<'dev.rookery.backup.started'> {
  return createEvent(
    'dev.rookery.backup.started',
    tier,
    {
      backupId: `contract-${randomUUID()}`,
      tier,
      type: 'full',
      method: 'physical',
      startedAt: '2026-11-26T02:00:00.000Z',
      actor: 'contract',
    },
    { source: 'rookery/contract' },
  );
}

function passed(tier: TierName): CloudEvent<'dev.rookery.validation.passed'> {
  return createEvent(
    'dev.rookery.validation.passed',
    tier,
    { backupId: `contract-${randomUUID()}`, tier, checks: [{ name: 'sha256', ok: true }], validatedAt: '2026-11-26T02:05:00.000Z' },
    { source: 'rookery/contract' },
  );
}

/**
 * What a handler received, in order. Topics are shared by every case (and on a broker kept
 * between runs), so a case looks only at the events it published.
 */
class Sink {
  private readonly all: CloudEvent[] = [];
  readonly handler: EventHandler = async (event) => {
    this.all.push(event);
  };

  events(id: string): CloudEvent[] {
    return this.all.filter((event) => event.id === id);
  }

  ids(of: readonly { id: string }[]): string[] {
    const wanted = new Set(of.map((event) => event.id));
    return this.all.map((event) => event.id).filter((id) => wanted.has(id));
  }

  async received(events: readonly CloudEvent[]): Promise<void> {
    await pollUntil(
      async () => new Set(this.ids(events)).size,
      (count) => count === events.length,
      { what: `${events.length} event(s) delivered`, intervalMs: 20 },
    );
  }
}

class Gate {
  open: () => void = () => undefined;
  readonly opened = new Promise<void>((resolve) => (this.open = resolve));
}

/** Lets pending I/O callbacks and promise jobs run `count` times over, without a clock. */
async function turns(count: number): Promise<void> {
  for (let index = 0; index < count; index++) await new Promise((resolve) => setImmediate(resolve));
}
