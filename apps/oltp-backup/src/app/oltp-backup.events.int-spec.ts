import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { BackupCatalog, BackupRecord, EventLedger } from '@rookery/catalog';
import { ComplianceLedgerService } from '@rookery/compliance';
import { buildConfig } from '@rookery/config';
import { DEFAULT_POLICIES } from '@rookery/core';
import { ALL_TOPICS, KafkaEventBus, Subscription } from '@rookery/events';
import { configureServiceApp } from '@rookery/service-kit';
import {
  KafkaHandle,
  TestCluster,
  freeLoopbackPort,
  pollUntil,
  seedOltp,
  startCluster,
  startKafka,
  waitForConsumerGroupCaughtUp,
} from '@rookery/testing';
import { OltpBackupModule } from './oltp-backup.module';

jest.setTimeout(240_000);

/**
 * At-least-once delivery through the outbox (issue 5): with Kafka down, backups still succeed and
 * their events wait in the catalog's outbox; once the broker is up every event reaches a consumer,
 * and the compliance ledger holds each exactly once.
 */
describe('oltp-backup service events through a Kafka outage', () => {
  let cluster: TestCluster;
  let work: string;
  let app: INestApplication | undefined;
  let kafka: KafkaHandle | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-oltp-events-'));
    cluster = await startCluster({ name: 'oltp-events' });
    await seedOltp(cluster.url, { sizeMb: 8 });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await kafka?.stop();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('backups succeed while Kafka is down; after it returns every event arrives, each once in the ledger', async () => {
    const port = await freeLoopbackPort();
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repository')}`],
        tiers: { oltp: { pgUrl: cluster.url } },
        catalog: { url: `sqlite://${join(work, 'catalog.sqlite')}` },
        events: { brokers: [`127.0.0.1:${port}`], clientId: 'oltp-events-test', partitions: 2 },
        auth: { mode: 'none' },
      },
      'events int-spec',
    );
    const moduleRef = await Test.createTestingModule({
      imports: [OltpBackupModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent' })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'oltp-backup (events test)', description: 'test' });
    await app.init();
    const server = app.getHttpServer();

    const ids: string[] = [];
    for (let run = 0; run < 2; run++) {
      const started = (await request(server).post('/backups').expect(202)).body as BackupRecord;
      const done = await pollUntil(
        async () => (await request(server).get(`/backups/${started.id}`).expect(200)).body as BackupRecord,
        (record) => record.status !== 'running',
        { timeoutMs: 120_000 },
      );
      expect(done.status).toBe('completed');
      ids.push(done.id);
    }
    // started + completed per backup, all still in the outbox.
    const outbox = app.get(BackupCatalog).outbox;
    expect(await outbox.stats()).toMatchObject({ pending: 6 });

    kafka = await startKafka({ port });
    const ledger = await EventLedger.open(`sqlite://${join(work, 'ledger.sqlite')}`);
    const consumerBus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'ledger' });
    let subscription: Subscription | undefined;
    try {
      subscription = await new ComplianceLedgerService(ledger, DEFAULT_POLICIES).subscribe(consumerBus, 'events-test-ledger');
      // started + completed per backup, and the audit event of each POST /backups.
      await pollUntil(
        () => ledger.count(),
        (count) => count >= 6,
        { timeoutMs: 120_000 },
      );
      expect((await outbox.stats()).pending).toBe(0);
      // A duplicate delivery handled too (the group's offsets reach the end) before counting.
      await waitForConsumerGroupCaughtUp(kafka.brokers, 'events-test-ledger', ALL_TOPICS);
      expect(await ledger.count()).toBe(6);
      const audits = await ledger.list({ types: ['dev.rookery.audit'] });
      expect(audits.map((entry) => [entry.subject, entry.data['action'], entry.data['outcome']])).toEqual([
        ['oltp', 'POST /backups', 'succeeded'],
        ['oltp', 'POST /backups', 'succeeded'],
      ]);
      const entries = await ledger.list({ subject: 'oltp', types: ['dev.rookery.backup.started', 'dev.rookery.backup.completed'] });
      expect(entries.map((entry) => `${entry.type}:${entry.data['backupId']}`).sort()).toEqual(
        ids.flatMap((id) => [`dev.rookery.backup.completed:${id}`, `dev.rookery.backup.started:${id}`]).sort(),
      );
      const completed = entries.find((entry) => entry.type === 'dev.rookery.backup.completed');
      expect(completed?.source).toBe('rookery/oltp-backup');
      expect(JSON.stringify(entries)).not.toMatch(/password|secret/i);
    } finally {
      await subscription?.close();
      await consumerBus.close();
      await ledger.close();
    }
  });
});
