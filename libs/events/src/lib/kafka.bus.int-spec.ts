import { Kafka, logLevel } from 'kafkajs';
import { readFileSync } from 'node:fs';
import { Secret } from '@rookery/core';
import { KafkaHandle, freeLoopbackPort, kafkaClientSecurity, pollUntil, startKafka } from '@rookery/testing';
import { CloudEvent, createEvent } from './cloud-event';
import { InMemorySeenEvents, idempotentHandler } from './event-bus';
import { describeEventBusContract } from './event-bus.contract';
import { eventSigningKey } from './event-signature';
import { ALL_TOPICS, DEAD_LETTER_TOPIC, TOPICS } from './event-types';
import { KafkaEventBus } from './kafka.bus';
import { OutboxEntry, OutboxRelay, OutboxStore, outboxPayload } from './outbox';

const completed = (tier: 'oltp' | 'queue', backupId: string) =>
  createEvent(
    'dev.rookery.backup.completed',
    tier,
    {
      backupId,
      tier,
      type: 'full',
      method: 'physical',
      startedAt: '2026-11-26T02:00:00.000Z',
      finishedAt: '2026-11-26T02:01:00.000Z',
      actor: 'test',
      durationMs: 60_000,
      bytes: 100,
      storedBytes: 10,
      timeline: 1,
      startLsn: '0/2000028',
      stopLsn: '0/2000100',
      walRange: { start: '000000010000000000000002', stop: '000000010000000000000002' },
      parent: null,
      retentionUntil: '2027-02-24T02:00:00.000Z',
      storageClass: 'STANDARD_IA',
      regions: ['local'],
      repository: 'file:///repo',
      manifestChecksum: 'a'.repeat(64),
      artifacts: [{ name: 'base.tar.zst', kind: 'base-tar', bytes: 100, storedBytes: 10, sha256: 'b'.repeat(64) }],
    },
    { source: 'rookery/test' },
  );

/** Collects events until `count` arrived (or fails after the timeout: generous, a wait, never a time bound). */
function collector(count: number, timeoutMs = 180_000) {
  const events: CloudEvent[] = [];
  let done: () => void = () => undefined;
  const arrived = new Promise<void>((resolve, reject) => {
    done = resolve;
    setTimeout(() => reject(new Error(`only ${events.length} of ${count} events arrived`)), timeoutMs).unref();
  });
  return {
    events,
    arrived,
    handler: async (event: CloudEvent) => {
      events.push(event);
      if (events.length >= count) done();
    },
  };
}

let kafka: KafkaHandle;

beforeAll(async () => {
  kafka = await startKafka();
}, 180_000);

afterAll(async () => {
  await kafka?.stop();
});

describe('kafka event bus (real broker)', () => {
  let bus: KafkaEventBus;

  beforeAll(async () => {
    bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'rookery-test', partitions: 3 });
  }, 180_000);

  afterAll(async () => {
    await bus?.close();
  });

  it('creates every topic and delivers each tier in order to a consumer group, validated', async () => {
    const admin = new Kafka({ clientId: 'check', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    expect(await admin.listTopics()).toEqual(expect.arrayContaining([...ALL_TOPICS]));
    await admin.disconnect();

    const sink = collector(6);
    const subscription = await bus.subscribe({ group: 'order-test', topics: [TOPICS.backup] }, sink.handler);
    const published = ['oltp', 'queue', 'oltp', 'queue', 'oltp', 'oltp'].map((tier, index) => completed(tier as 'oltp', `b${index}`));
    await bus.publish(published);
    await sink.arrived;
    await subscription.close();
    for (const tier of ['oltp', 'queue']) {
      expect(sink.events.filter((event) => event.subject === tier).map((event) => event.id)).toEqual(
        published.filter((event) => event.subject === tier).map((event) => event.id),
      );
    }
    expect(sink.events[0]).toEqual(published.find((event) => event.id === sink.events[0].id));
  }, 300_000);

  it('skips and reports a message that is not a valid event, and handles redeliveries once', async () => {
    const raw = new Kafka({ clientId: 'raw', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).producer();
    await raw.connect();
    await raw.send({ topic: TOPICS.validation, messages: [{ key: 'oltp', value: '{"specversion":"1.0","type":"dev.rookery.nope"}' }] });
    await raw.disconnect();
    const event = createEvent(
      'dev.rookery.validation.passed',
      'oltp',
      { backupId: 'b1', tier: 'oltp', checks: [{ name: 'sha256', ok: true }], validatedAt: '2026-11-26T02:05:00.000Z' },
      { source: 'rookery/test' },
    );
    await bus.publish([event, event]);
    const invalid: string[] = [];
    let delivered = 0;
    let handled = 0;
    const once = idempotentHandler(async () => void handled++, new InMemorySeenEvents());
    const subscription = await bus.subscribe(
      { group: 'dedupe-test', topics: [TOPICS.validation], onInvalid: (error) => invalid.push(error.message) },
      async (received) => {
        delivered++;
        await once(received);
      },
    );
    // Both copies delivered (the duplicate too) before counting what the handler did.
    await pollUntil(
      async () => delivered,
      (count) => count >= 2,
      { what: 'the event and its duplicate delivered' },
    );
    await subscription.close();
    expect(handled).toBe(1);
    expect(invalid).toEqual([expect.stringMatching(/^invalid event envelope: id: Required/)]);

    // The rejected message went to the dead-letter topic with the reason and where it came from.
    const dead = new Kafka({ clientId: 'dlq', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).consumer({ groupId: 'dlq-check' });
    await dead.connect();
    await dead.subscribe({ topic: DEAD_LETTER_TOPIC, fromBeginning: true });
    const letter = await new Promise<{ value: string; headers: Record<string, string> }>((resolve) => {
      void dead.run({
        eachMessage: async ({ message }) =>
          resolve({
            value: message.value?.toString() ?? '',
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([key, value]) => [key, String(value)])),
          }),
      });
    });
    await dead.disconnect();
    expect(letter.value).toBe('{"specversion":"1.0","type":"dev.rookery.nope"}');
    expect(letter.headers['rookery-reason']).toMatch(/^invalid event envelope/);
    expect(letter.headers['rookery-consumer-group']).toBe('dedupe-test');
    expect(letter.headers['rookery-source']).toMatch(/^rookery\.validation\/\d+\/\d+$/);
  }, 300_000);

  it('an outbox filled while kafka is unreachable is relayed in full once it is back', async () => {
    const outbox = new MemoryOutbox();
    const events = Array.from({ length: 4 }, (_, index) => completed('oltp', `outage-${index}`));
    for (const event of events) outbox.add(event);

    // Nothing listens on this port yet: the bus cannot connect and the events stay put.
    const port = await freeLoopbackPort();
    await expect(KafkaEventBus.connect({ brokers: [`127.0.0.1:${port}`], clientId: 'down', publishTimeoutMs: 2_000 })).rejects.toThrow(
      `cannot reach kafka at 127.0.0.1:${port}`,
    );
    expect(await outbox.pending(10)).toHaveLength(4);

    const broker = await startKafka({ port });
    const late = await KafkaEventBus.connect({ brokers: broker.brokers, clientId: 'up' });
    try {
      const sink = collector(4);
      const subscription = await late.subscribe({ group: 'outbox-test', topics: [TOPICS.backup] }, sink.handler);
      expect(await new OutboxRelay(outbox, late).relayOnce()).toBe(4);
      await sink.arrived;
      await subscription.close();
      expect(sink.events.map((event) => event.id)).toEqual(events.map((event) => event.id));
      expect(await outbox.pending(10)).toEqual([]);
    } finally {
      await late.close();
      await broker.stop();
    }
  }, 300_000);
});

// After the cases above, so the contract also meets a broker holding other cases' events.
describeEventBusContract('kafka', { retainsEvents: true, redeliversAfterHandlerFailure: true, acceptsForeignMessages: true }, async () => {
  const bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'rookery-contract', partitions: 3 });
  const raw = new Kafka({ clientId: 'foreign', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).producer();
  await raw.connect();
  return {
    bus,
    publishRaw: async (topic, key, value) => void (await raw.send({ topic, acks: -1, messages: [{ key, value }] })),
    close: () => raw.disconnect(),
  };
});

// The same contract on a broker whose client listener is SASL_SSL (SCRAM-SHA-512), every event
// signed by the bus and verified before delivery (issue 16): security changes nothing a caller sees.
let secured: Promise<KafkaHandle> | null = null;
const securedKafka = () => (secured ??= startKafka({ secured: true }));
afterAll(async () => {
  await (await secured)?.stop();
}, 120_000);

describeEventBusContract(
  'kafka over SASL_SSL, events signed and verified',
  { retainsEvents: true, redeliversAfterHandlerFailure: true, acceptsForeignMessages: true },
  async () => {
    const broker = await securedKafka();
    const security = broker.security as NonNullable<KafkaHandle['security']>;
    const key = eventSigningKey({ keyId: 'contract', key: new Secret(Buffer.from('c'.repeat(64))) });
    const bus = await KafkaEventBus.connect({
      brokers: broker.brokers,
      clientId: 'rookery-secured-contract',
      partitions: 3,
      tls: { ca: [readFileSync(security.caFile, 'utf8')] },
      sasl: { mechanism: security.mechanism, username: security.username, password: new Secret(security.password) },
      signing: key,
      verification: { keys: [key], allowUnsigned: false },
    });
    const raw = new Kafka({
      clientId: 'foreign',
      brokers: broker.brokers,
      logLevel: logLevel.NOTHING,
      ...kafkaClientSecurity(security),
    }).producer();
    await raw.connect();
    return {
      bus,
      publishRaw: async (topic, key, value) => void (await raw.send({ topic, acks: -1, messages: [{ key, value }] })),
      close: () => raw.disconnect(),
    };
  },
);

class MemoryOutbox implements OutboxStore {
  private readonly entries: (OutboxEntry & { relayed?: boolean })[] = [];
  add(event: CloudEvent): void {
    this.entries.push({ eventId: event.id, payload: outboxPayload(event), createdAt: new Date(), attempts: 0 });
  }
  async pending(limit: number): Promise<OutboxEntry[]> {
    return this.entries.filter((entry) => !entry.relayed).slice(0, limit);
  }
  async markRelayed(ids: readonly string[]): Promise<void> {
    for (const entry of this.entries) if (ids.includes(entry.eventId)) entry.relayed = true;
  }
  async markFailed(ids: readonly string[]): Promise<void> {
    for (const entry of this.entries) if (ids.includes(entry.eventId)) entry.attempts++;
  }
  async markInvalid(): Promise<void> {
    throw new Error('no invalid entries in this test');
  }
}
