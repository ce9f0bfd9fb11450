import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Kafka, Producer, logLevel } from 'kafkajs';
import { EventLedger } from '@rookery/catalog';
import { COMPLIANCE_GROUP } from '@rookery/compliance';
import { EventKey, RookeryConfig, buildConfig } from '@rookery/config';
import { Secret } from '@rookery/core';
import {
  ALL_TOPICS,
  CloudEvent,
  DEAD_LETTER_TOPIC,
  KafkaEventBus,
  TOPICS,
  createEvent,
  eventSigningKey,
  kafkaBusOptions,
  signEvent,
} from '@rookery/events';
import { configureServiceApp } from '@rookery/service-kit';
import { KafkaHandle, kafkaClientSecurity, pollUntil, startKafka, waitForConsumerGroupCaughtUp } from '@rookery/testing';
import { ComplianceReportingModule } from './compliance-reporting.module';

jest.setTimeout(600_000);

/**
 * Issue 16: Kafka secured. A real broker whose client listener is SASL_SSL (SCRAM-SHA-512, a CA
 * made for the run); rookery's bus configured by the config (events.tls, events.sasl,
 * events.signing, events.verifyKeys) publishes and consumes over it; wrong credentials and a
 * client without TLS are refused with a message that says so. A forged validation.passed —
 * produced by someone who can write to the topic but holds no service's key — is dead-lettered
 * with the reason and never reaches the compliance ledger; a signed one does.
 */
describe('compliance-reporting on a SASL_SSL broker with signed events', () => {
  let kafka: KafkaHandle;
  let work: string;
  let validatorConfig: RookeryConfig;
  let complianceConfig: RookeryConfig;
  let validator: KafkaEventBus;
  let forger: Producer;
  let app: INestApplication;

  /** A service's config: the broker's CA, the SCRAM user's password from a file, the event keys. */
  async function serviceConfig(events: Record<string, unknown>): Promise<RookeryConfig> {
    const security = kafka.security;
    if (!security) throw new Error('the broker was not started secured');
    return buildConfig(
      {
        catalog: { url: `sqlite://${join(work, `${String(events['clientId'])}.sqlite`)}` },
        // The HTTP surface's authentication is the auth specs' subject: this one is about the bus.
        auth: { mode: 'none' },
        events: {
          brokers: kafka.brokers,
          partitions: 2,
          tls: { caFile: security.caFile },
          sasl: { mechanism: 'scram-sha-512', username: security.username, passwordFile: 'kafka-password' },
          ...events,
        },
      },
      'secured kafka int-spec',
      {},
      {},
      work,
    );
  }

  function passed(backupId: string): CloudEvent<'dev.rookery.validation.passed'> {
    return createEvent(
      'dev.rookery.validation.passed',
      'oltp',
      { backupId, tier: 'oltp', checks: [{ name: 'sha256 base.tar.zst', ok: true }], validatedAt: new Date().toISOString() },
      { source: 'rookery/validator' },
    );
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-secured-kafka-'));
    kafka = await startKafka({ secured: true });
    const security = kafka.security as NonNullable<KafkaHandle['security']>;
    await writeFile(join(work, 'kafka-password'), `${security.password}\n`, { mode: 0o600 });
    await writeFile(join(work, 'validator.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    await writeFile(join(work, 'oltp-backup.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    validatorConfig = await serviceConfig({ clientId: 'validator', signing: { keyId: 'validator', keyFile: 'validator.key' } });
    complianceConfig = await serviceConfig({
      clientId: 'compliance',
      verifyKeys: {
        validator: { keyFile: 'validator.key', types: ['dev.rookery.validation.*', 'dev.rookery.drill.*'] },
        'oltp-backup': { keyFile: 'oltp-backup.key', types: ['dev.rookery.backup.*', 'dev.rookery.wal.*'] },
      },
    });
    validator = await KafkaEventBus.connect(kafkaBusOptions(validatorConfig.events));
    // Someone with write access to the topics (credentials leaked, a misconfigured ACL) but no service's key.
    forger = new Kafka({
      clientId: 'forger',
      brokers: kafka.brokers,
      logLevel: logLevel.NOTHING,
      ...kafkaClientSecurity(security),
    }).producer();
    await forger.connect();

    const moduleRef = await Test.createTestingModule({
      imports: [ComplianceReportingModule.forRoot({ config: complianceConfig, logLevel: process.env['TEST_LOG_LEVEL'] ?? 'silent' })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'compliance-reporting (secured kafka test)', description: 'test' });
    await app.init();
  }, 300_000);

  afterAll(async () => {
    await app?.close();
    await forger?.disconnect();
    await validator?.close();
    await kafka?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('publishes and consumes through the configured bus over SASL_SSL, the proof checked and removed', async () => {
    const consumer = await KafkaEventBus.connect(kafkaBusOptions({ ...complianceConfig.events, clientId: 'round-trip' }));
    const received: CloudEvent[] = [];
    const subscription = await consumer.subscribe({ group: 'secured-round-trip', topics: [TOPICS.validation] }, async (event) => {
      received.push(event);
    });
    try {
      const event = passed('20261207T020000-round-trip');
      await validator.publish(event);
      await pollUntil(
        async () => received.filter((each) => each.id === event.id),
        (found) => found.length === 1,
        { what: 'the signed event delivered over SASL_SSL' },
      );
      expect(received.find((each) => each.id === event.id)).toEqual(event);
    } finally {
      await subscription.close();
      await consumer.close();
    }
  });

  it('refuses a wrong password, saying the credentials were refused', async () => {
    await writeFile(join(work, 'wrong-password'), 'not-the-password', { mode: 0o600 });
    const wrong = await serviceConfig({
      clientId: 'wrong-password',
      sasl: { mechanism: 'scram-sha-512', username: 'rookery', passwordFile: 'wrong-password' },
    });
    const connecting = KafkaEventBus.connect({ ...kafkaBusOptions(wrong.events), retries: 1, publishTimeoutMs: 5_000 });
    await expect(connecting).rejects.toMatchObject({
      code: 'EVENT_BUS_UNAVAILABLE',
      message: expect.stringMatching(
        `^kafka at ${kafka.brokers[0]} refused the credentials of 'rookery' \\(scram-sha-512; check events.sasl\\)`,
      ),
    });
    await expect(connecting).rejects.toThrow(/authentication failed/i);
    await expect(connecting).rejects.not.toThrow('not-the-password');
  });

  it('refuses a client that does not speak TLS to the TLS listener', async () => {
    const plain = { ...kafkaBusOptions(complianceConfig.events), tls: undefined, retries: 1, publishTimeoutMs: 5_000 };
    await expect(KafkaEventBus.connect(plain)).rejects.toMatchObject({
      code: 'EVENT_BUS_UNAVAILABLE',
      message: `cannot reach kafka at ${kafka.brokers[0]} (it closed the connection: if its listener is SSL or SASL_SSL, configure events.tls): Closed connection`,
    });
  });

  it('dead-letters a forged validation.passed with the reason and keeps it out of the ledger; a signed one is recorded', async () => {
    const ledger = app.get(EventLedger);
    const unsigned = passed('20261207T020000-forged-unsigned');
    const wrongKey = signEvent(
      passed('20261207T020000-forged-key'),
      eventSigningKey({ keyId: 'validator', key: new Secret(randomBytes(32)) }),
    );
    const unknownKey = signEvent(
      passed('20261207T020000-forged-unknown'),
      eventSigningKey({ keyId: 'forger', key: new Secret(randomBytes(32)) }),
    );
    const genuine = passed('20261207T020000-genuine');
    const altered = { ...signEvent(passed('20261207T020000-altered'), eventSigningKey(validatorConfig.events.signing as EventKey)) };
    altered.data = {
      ...altered.data,
      checks: [
        { name: 'sha256 base.tar.zst', ok: true },
        { name: 'pg_verifybackup', ok: true },
      ],
    };
    // Signed with a real service's key, but not the one that may vouch for validations.
    const outOfRole = signEvent(
      passed('20261207T020000-forged-role'),
      eventSigningKey({ keyId: 'oltp-backup', key: new Secret(await readFile(join(work, 'oltp-backup.key'))) }),
    );
    const forged = [unsigned, wrongKey, unknownKey, altered, outOfRole];
    // Keyed by tier as rookery's producer keys them: the same partition, so the genuine event
    // published after them is consumed after them.
    await forger.send({
      topic: TOPICS.validation,
      acks: -1,
      messages: forged.map((event) => ({ key: 'oltp', value: JSON.stringify(event) })),
    });
    await validator.publish(genuine);

    await pollUntil(
      () => ledger.has(genuine.id),
      (has) => has,
      { what: 'the signed validation.passed in the ledger', intervalMs: 200 },
    );
    await waitForConsumerGroupCaughtUp(kafka.brokers, COMPLIANCE_GROUP, ALL_TOPICS, kafka.security);
    for (const event of forged) expect({ id: event.id, recorded: await ledger.has(event.id) }).toEqual({ id: event.id, recorded: false });
    const recorded = (await ledger.list({ types: ['dev.rookery.validation.passed'], subject: 'oltp' })).map(
      (entry) => entry.data['backupId'],
    );
    expect(recorded).toContain(genuine.data.backupId);
    for (const event of forged) expect(recorded).not.toContain((event.data as { backupId: string }).backupId);

    const letters = await deadLetters(forged.map((event) => event.id));
    const named = (event: { id: string }) => `event ${event.id} of type 'dev.rookery.validation.passed' from 'rookery/validator'`;
    expect(letters).toEqual(
      new Map([
        [unsigned.id, { reason: `${named(unsigned)} is not signed`, group: COMPLIANCE_GROUP }],
        [
          wrongKey.id,
          {
            reason: expect.stringContaining(`${named(wrongKey)} has a signature that does not match (key validator)`),
            group: COMPLIANCE_GROUP,
          },
        ],
        [unknownKey.id, { reason: `${named(unknownKey)} is signed by an unknown key forger`, group: COMPLIANCE_GROUP }],
        [
          altered.id,
          {
            reason: expect.stringContaining(`${named(altered)} has a signature that does not match (key validator)`),
            group: COMPLIANCE_GROUP,
          },
        ],
        [
          outOfRole.id,
          {
            reason: `${named(outOfRole)} is signed by key oltp-backup, which may sign only dev.rookery.backup.*, dev.rookery.wal.* (events.verifyKeys.oltp-backup.types)`,
            group: COMPLIANCE_GROUP,
          },
        ],
      ]),
    );
  });

  /** The dead-letter topic's messages about these events: their reason and the group that set them aside. */
  async function deadLetters(ids: readonly string[]): Promise<Map<string, { reason: string; group: string }>> {
    const found = new Map<string, { reason: string; group: string }>();
    const consumer = new Kafka({
      clientId: 'dlq',
      brokers: kafka.brokers,
      logLevel: logLevel.NOTHING,
      ...kafkaClientSecurity(kafka.security),
    }).consumer({
      groupId: `dlq-check-${randomBytes(4).toString('hex')}`,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: DEAD_LETTER_TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          const id = String(JSON.parse(message.value?.toString() ?? '{}').id);
          if (!ids.includes(id)) return;
          found.set(id, {
            reason: String(message.headers?.['rookery-reason']),
            group: String(message.headers?.['rookery-consumer-group']),
          });
        },
      });
      await pollUntil(
        async () => found.size,
        (size) => size === ids.length,
        { what: `${ids.length} forged events in ${DEAD_LETTER_TOPIC}` },
      );
    } finally {
      await consumer.disconnect();
    }
    return found;
  }
});
