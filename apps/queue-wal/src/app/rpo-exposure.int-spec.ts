import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { EventLedger } from '@rookery/catalog';
import { ComplianceLedgerService, TierCompliance } from '@rookery/compliance';
import { buildConfig, tierPolicies } from '@rookery/config';
import { KafkaEventBus, Subscription } from '@rookery/events';
import { KafkaHandle, TestCluster, pollUntil, startCluster, startKafka } from '@rookery/testing';
import { QueueWalModule } from './queue-wal.module';

jest.setTimeout(600_000);

/**
 * The queue tier's RPO exposure is measured from the synchronous stream (issue 12, item 4): the
 * queue-wal service reports the stream's confirmed flush position (dev.rookery.wal.streamed) over
 * real Kafka into the compliance ledger; while pg_receivewal is the synchronous standby of a real
 * cluster the exposure is 0, and once the stream is stopped it is the time since it last was in sync.
 */
describe('queue tier RPO exposure from the synchronous WAL stream', () => {
  let cluster: TestCluster;
  let kafka: KafkaHandle;
  let work: string;
  let app: INestApplication | null = null;
  let ledger: EventLedger;
  let compliance: ComplianceLedgerService;
  let bus: KafkaEventBus;
  let subscription: Subscription;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-queue-rpo-'));
    // pg_receivewal runs as the postgres account: it must reach the spool below.
    await chmod(work, 0o711);
    // synchronous_commit=on: the harness turns it off with fsync, and only 'on' waits for a standby.
    [cluster, kafka] = await Promise.all([startCluster({ name: 'queue-rpo', settings: { synchronous_commit: 'on' } }), startKafka()]);
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repository')}`],
        tiers: { queue: { pgUrl: cluster.url } },
        catalog: { url: `sqlite://${join(work, 'catalog.sqlite')}` },
        events: { brokers: kafka.brokers, clientId: 'queue-wal', partitions: 1 },
        walStream: { spoolDir: join(work, 'spool'), manageSynchronousStandbyNames: true },
        auth: { mode: 'none' },
      },
      'queue rpo int-spec',
    );
    // The compliance side: its own ledger, consuming the real topics.
    ledger = await EventLedger.open(`sqlite://${join(work, 'ledger.sqlite')}`);
    compliance = new ComplianceLedgerService(ledger, tierPolicies(config));
    bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'compliance', partitions: 1 });
    subscription = await compliance.subscribe(bus, 'compliance-test');

    const moduleRef = await Test.createTestingModule({
      imports: [
        QueueWalModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', sweepIntervalMs: 300, reportIntervalMs: 1_000 }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    await app.init();
  }, 300_000);

  afterAll(async () => {
    await app?.close().catch(() => undefined);
    await subscription?.close();
    await bus?.close();
    await ledger?.close();
    await kafka?.stop();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  const queue = (): Promise<TierCompliance> => compliance.tier('queue');

  it('is 0 while the stream is the synchronous standby and grows once the stream is stopped', async () => {
    const inSync = await pollUntil(queue, (view) => view.stream?.inSync === true && view.stream.current, {
      what: 'an in-sync stream report in the ledger',
      intervalMs: 300,
    });
    await cluster.query('create table jobs (id serial primary key, payload text)');
    await cluster.query("insert into jobs (payload) values ('acknowledged by the stream')");
    expect(inSync).toMatchObject({ rpoExposureSeconds: 0, rpoMet: true, recoveryPoint: { source: 'stream' } });
    // Later reports, after commits the stream confirmed, still hold it at 0.
    const reportsBefore = (await ledger.list({ types: ['dev.rookery.wal.streamed'] })).length;
    const later = await pollUntil(
      async () => ({ view: await queue(), reports: (await ledger.list({ types: ['dev.rookery.wal.streamed'] })).length }),
      ({ reports }) => reports >= reportsBefore + 2,
      { what: 'two more stream reports', intervalMs: 300 },
    );
    expect(later.view).toMatchObject({ rpoExposureSeconds: 0, rpoMet: true, stream: { inSync: true, current: true } });

    // The stream stops (the service shuts down): from now on commits are not confirmed anywhere.
    await (app as INestApplication).close();
    app = null;
    const stopped = await pollUntil(queue, (view) => (view.rpoExposureSeconds ?? 0) > 0, { what: 'RPO exposure above 0', intervalMs: 300 });
    expect(stopped.rpoMet).toBe(false);
    expect(stopped.stream?.current).toBe(false);
    // It keeps growing: the lag is measured from the last moment the stream was in sync.
    await pollUntil(queue, (view) => (view.rpoExposureSeconds ?? 0) > (stopped.rpoExposureSeconds ?? 0), {
      what: 'a growing RPO exposure',
      intervalMs: 300,
    });
  });
});
