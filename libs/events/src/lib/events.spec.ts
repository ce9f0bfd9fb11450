import { EventSchemaError } from '@rookery/core';
import { CloudEvent, createEvent, dataSchemaUri, parseEvent, serializeEvent, topicOf, validateEvent } from './cloud-event';
import { makeManifest } from '@rookery/testing';
import { backupCompletedEvent } from './backup-events';
import { InMemorySeenEvents, idempotentHandler } from './event-bus';
import { TOPICS } from './event-types';
import { InProcessEventBus } from './in-process.bus';
import { OutboxEntry, OutboxRelay, OutboxStore, outboxPayload } from './outbox';
import { WalArchivedBatcher, walArchivedEvents } from './wal-events';

const source = 'rookery/test';

function started(tier: 'oltp' | 'queue', backupId: string) {
  return createEvent(
    'dev.rookery.backup.started',
    tier,
    { backupId, tier, type: 'full', method: 'physical', startedAt: '2026-11-26T02:00:00.000Z', actor: 'test' },
    { source },
  );
}

describe('cloud events', () => {
  it('builds a CloudEvents 1.0 envelope with the tier as subject and the versioned schema', () => {
    const event = started('oltp', '20261126T020000Z-oltp');
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'dev.rookery.backup.started',
      subject: 'oltp',
      source,
      datacontenttype: 'application/json',
      dataschema: 'urn:rookery:schema:dev.rookery.backup.started:v1',
    });
    expect(event.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(topicOf(event)).toBe(TOPICS.backup);
    expect(parseEvent(serializeEvent(event))).toEqual(event);
  });

  it('refuses data that does not match the schema, naming the field', () => {
    expect(() =>
      createEvent(
        'dev.rookery.backup.started',
        'oltp',
        { backupId: 'x', tier: 'nope', type: 'full', method: 'physical', startedAt: 'now', actor: 'a' } as never,
        {
          source,
        },
      ),
    ).toThrow(/tier: .*startedAt: /s);
    expect(() =>
      createEvent(
        'dev.rookery.audit',
        'oltp',
        { actor: 'a', action: 'restore', resource: 'r', outcome: 'allowed', at: '2026-11-26T02:00:00Z', password: 'x' } as never,
        { source },
      ),
    ).toThrow(EventSchemaError);
  });

  it("names a tablespace archive's tablespace in backup.completed, and only there", () => {
    const manifest = makeManifest();
    const base = manifest.artifacts[0];
    const tablespace = { oid: 16384, name: 'fast', location: '/srv/pg/fast' };
    const withTablespace = {
      ...manifest,
      artifacts: [base, { ...base, name: 'tablespace-16384.tar.zst', kind: 'tablespace-tar' as const, tablespace }],
    };
    const event = backupCompletedEvent(withTablespace, { actor: 'cli', repository: 'file:///repo', source });
    expect((parseEvent(serializeEvent(event)) as typeof event).data.artifacts).toEqual([
      expect.not.objectContaining({ tablespace: expect.anything() }),
      expect.objectContaining({ kind: 'tablespace-tar', tablespace }),
    ]);
  });

  it('refuses unknown types, other schema versions and broken envelopes on consume', () => {
    const event = started('oltp', 'b1');
    expect(() => validateEvent({ ...event, type: 'dev.rookery.unknown' })).toThrow("unknown event type 'dev.rookery.unknown'");
    expect(() => validateEvent({ ...event, dataschema: dataSchemaUri(event.type, 2) })).toThrow(
      /has schema '.*:v2', this rookery reads .*:v1/,
    );
    expect(() => validateEvent({ ...event, specversion: '0.3' })).toThrow('invalid event envelope');
    expect(() => parseEvent('{not json')).toThrow('event is not valid JSON');
  });
});

describe('in-process bus', () => {
  it('delivers in publish order to each group subscribed to the topic, and only those', async () => {
    const bus = new InProcessEventBus();
    const backupSeen: string[] = [];
    const auditSeen: string[] = [];
    await bus.subscribe({ group: 'a', topics: [TOPICS.backup] }, async (event) => {
      backupSeen.push((event as CloudEvent<'dev.rookery.backup.started'>).data.backupId);
    });
    await bus.subscribe({ group: 'b', topics: [TOPICS.audit] }, async (event) => {
      auditSeen.push(event.id);
    });
    await bus.publish([started('oltp', 'b1'), started('queue', 'b2')]);
    await bus.publish(started('oltp', 'b3'));
    expect(backupSeen).toEqual(['b1', 'b2', 'b3']);
    expect(auditSeen).toEqual([]);
    await bus.close();
  });

  it('handles a redelivered event once when the handler is idempotent', async () => {
    const bus = new InProcessEventBus();
    let handled = 0;
    await bus.subscribe(
      { group: 'a', topics: [TOPICS.backup] },
      idempotentHandler(async () => void handled++, new InMemorySeenEvents()),
    );
    const event = started('oltp', 'b1');
    await bus.publish([event, event]);
    await bus.publish(event);
    expect(handled).toBe(1);
  });

  it('reports a failing handler and keeps delivering', async () => {
    const errors: unknown[] = [];
    const bus = new InProcessEventBus((error) => errors.push(error));
    const seen: string[] = [];
    await bus.subscribe({ group: 'a', topics: [TOPICS.backup] }, async (event) => {
      if (seen.push(event.id) === 1) throw new Error('handler broke');
    });
    await bus.publish([started('oltp', 'b1'), started('oltp', 'b2')]);
    expect(seen).toHaveLength(2);
    expect(errors).toEqual([new Error('handler broke')]);
  });
});

/** The outbox port in memory: the relay's logic is what is under test here. */
class MemoryOutbox implements OutboxStore {
  entries = new Map<string, OutboxEntry & { relayedAt?: Date; error?: string; invalid?: boolean }>();

  add(payload: string, eventId: string): void {
    this.entries.set(eventId, { eventId, payload, createdAt: new Date(), attempts: 0 });
  }
  async pending(limit: number): Promise<OutboxEntry[]> {
    return [...this.entries.values()].filter((entry) => !entry.relayedAt && !entry.invalid).slice(0, limit);
  }
  async markRelayed(ids: readonly string[], at: Date): Promise<void> {
    for (const id of ids) Object.assign(this.entries.get(id) as object, { relayedAt: at });
  }
  async markFailed(ids: readonly string[], error: string): Promise<void> {
    for (const id of ids) {
      const entry = this.entries.get(id) as OutboxEntry & { error?: string };
      entry.attempts++;
      entry.error = error;
    }
  }
  async markInvalid(ids: readonly string[], error: string): Promise<void> {
    for (const id of ids) Object.assign(this.entries.get(id) as object, { invalid: true, error });
  }
}

describe('outbox relay', () => {
  it('publishes pending events in order in batches and marks them relayed', async () => {
    const outbox = new MemoryOutbox();
    const events = Array.from({ length: 5 }, (_, index) => started('oltp', `b${index}`));
    for (const event of events) outbox.add(outboxPayload(event), event.id);
    const bus = new InProcessEventBus();
    const received: string[] = [];
    await bus.subscribe({ group: 'a', topics: [TOPICS.backup] }, async (event) => void received.push(event.id));
    expect(await new OutboxRelay(outbox, bus, { batchSize: 2 }).relayOnce()).toBe(5);
    expect(received).toEqual(events.map((event) => event.id));
    expect(await outbox.pending(10)).toEqual([]);
  });

  it('keeps every event pending while the bus is down, and relays them once it is back', async () => {
    const outbox = new MemoryOutbox();
    const event = started('oltp', 'b1');
    outbox.add(outboxPayload(event), event.id);
    const bus = new InProcessEventBus();
    const publish = jest.spyOn(bus, 'publish').mockRejectedValueOnce(new Error('broker down'));
    const relay = new OutboxRelay(outbox, bus);
    await expect(relay.relayOnce()).rejects.toThrow('broker down');
    expect((await outbox.pending(10)).map((entry) => [entry.eventId, entry.attempts])).toEqual([[event.id, 1]]);
    expect(await relay.relayOnce()).toBe(1);
    expect(publish).toHaveBeenCalledTimes(2);
    expect(await outbox.pending(10)).toEqual([]);
  });

  it('sets aside an entry that is not a valid event instead of blocking the ones behind it', async () => {
    const outbox = new MemoryOutbox();
    outbox.add('{"specversion":"0.3"}', 'broken');
    const event = started('oltp', 'b1');
    outbox.add(outboxPayload(event), event.id);
    const relayed = await new OutboxRelay(outbox, new InProcessEventBus()).relayOnce();
    expect(relayed).toBe(1);
    expect(outbox.entries.get('broken')).toMatchObject({ invalid: true, error: expect.stringContaining('invalid event envelope') });
  });
});

describe('WAL archived batches', () => {
  const file = (name: string, tier: 'oltp' | 'queue' = 'queue') => ({
    tier,
    name,
    sha256: 'a'.repeat(64),
    bytes: 16_777_216,
    archivedAt: '2026-11-26T02:00:00.000Z',
  });

  it('groups files by tier and timeline into one event each, oldest first', () => {
    const events = walArchivedEvents(
      [
        file('000000010000000000000004'),
        file('000000010000000000000003'),
        file('000000020000000000000005'),
        file('000000010000000000000009', 'oltp'),
      ],
      'rookery/test',
    );
    expect(events.map((event) => [event.subject, event.data.timeline, event.data.segments.map((segment) => segment.name)])).toEqual([
      ['queue', 1, ['000000010000000000000003', '000000010000000000000004']],
      ['queue', 2, ['000000020000000000000005']],
      ['oltp', 1, ['000000010000000000000009']],
    ]);
  });

  it('flushes when enough files wait, after the delay, and on demand', async () => {
    // The delay on a fake clock: not before it is over, at once when it is (a slow machine changes neither).
    jest.useFakeTimers();
    try {
      const emitted: CloudEvent[][] = [];
      const batcher = new WalArchivedBatcher(async (events) => void emitted.push(events), {
        source: 'rookery/test',
        maxFiles: 2,
        maxDelayMs: 50,
      });
      batcher.add(file('000000010000000000000001'));
      batcher.add(file('000000010000000000000002'));
      await jest.advanceTimersByTimeAsync(0);
      expect(emitted).toHaveLength(1);
      batcher.add(file('000000010000000000000003'));
      await jest.advanceTimersByTimeAsync(49);
      expect(emitted).toHaveLength(1);
      await jest.advanceTimersByTimeAsync(1);
      expect(emitted.map((events) => (events[0] as CloudEvent<'dev.rookery.wal.archived'>).data.segments.length)).toEqual([2, 1]);
      batcher.add(file('000000010000000000000004'));
      await batcher.flush();
      expect(emitted).toHaveLength(3);
    } finally {
      jest.useRealTimers();
    }
  });
});
