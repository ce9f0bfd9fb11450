import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { CloudEvent, TOPICS } from '@rookery/events';
import { buildConfig } from '@rookery/config';
import { WalStreamStatus } from '@rookery/wal';
import { WalArchive } from '@rookery/repository';
import { ServiceEventsService, configureServiceApp, fullBackupJobName } from '@rookery/service-kit';
import { createStore } from '@rookery/storage';
import { TestCluster, holdSchedules, scheduledJobsStarted, pollUntil as until, startCluster } from '@rookery/testing';
import { QueueWalModule } from './queue-wal.module';

jest.setTimeout(600_000);

describe('queue-wal service', () => {
  let cluster: TestCluster;
  let work: string;
  let repository: string;
  let app: INestApplication;

  async function status(): Promise<WalStreamStatus> {
    return (await request(app.getHttpServer()).get('/status').expect(200)).body as WalStreamStatus;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-queue-service-'));
    // pg_receivewal runs as the postgres account: it must reach the spool below.
    await chmod(work, 0o711);
    repository = join(work, 'repository');
    // synchronous_commit=on: the harness turns it off with fsync, and only 'on' waits for a standby.
    cluster = await startCluster({ name: 'queue-service', settings: { synchronous_commit: 'on' } });
    await cluster.query('create table queue_jobs (id serial primary key, payload text)');
    const config = buildConfig(
      {
        repositories: [`file://${repository}`],
        tiers: { queue: { pgUrl: cluster.url } },
        catalog: { url: `sqlite://${join(work, 'catalog.sqlite')}` },
        walStream: { spoolDir: join(work, 'spool'), manageSynchronousStandbyNames: true },
        auth: { mode: 'none' },
      },
      'queue-wal int-spec',
    );
    const moduleRef = await Test.createTestingModule({
      imports: [QueueWalModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', sweepIntervalMs: 300 })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'queue-wal (test)', description: 'test' });
    await app.init();
    holdSchedules(app);
  });

  afterAll(async () => {
    // The last test closes the app already; a second close is harmless.
    await app?.close().catch(() => undefined);
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('GET /status: pg_receivewal streams as the synchronous standby, registered in synchronous_standby_names', async () => {
    const streaming = await until(status, (body) => 'syncState' in body.primary && body.primary.syncState === 'sync');
    expect(streaming).toMatchObject({
      tier: 'queue',
      slot: 'rookery_queue_wal',
      onDown: 'blocking',
      receiver: { running: true, pid: expect.any(Number), restarts: 0 },
      primary: { registered: true, synchronousStandbyNames: '"rookery_queue_wal"', state: 'streaming', slot: { active: true } },
    });
    await cluster.query("insert into queue_jobs (payload) values ('acknowledged by the stream')");
    const [{ lsn }] = await cluster.query<{ lsn: string }>('select pg_current_wal_flush_lsn()::text as lsn');
    const flushed = await until(status, (body) => 'flushLsn' in body.primary && body.primary.flushLsn !== null);
    expect('flushLsn' in flushed.primary && flushed.primary.flushLsn).toEqual(expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/));
    expect(lsn).toMatch(/\//);
  });

  it('pushes a completed segment to the repository and reports it as the last uploaded', async () => {
    const archivedNames: string[] = [];
    const bus = await app.get(ServiceEventsService).connectedBus();
    const subscription = await bus.subscribe({ group: 'test', topics: [TOPICS.wal] }, async (event) => {
      // The topic also carries the stream's dev.rookery.wal.streamed reports.
      if (event.type === 'dev.rookery.wal.archived')
        archivedNames.push(...(event as CloudEvent<'dev.rookery.wal.archived'>).data.segments.map((segment) => segment.name));
    });
    const [{ name }] = await cluster.query<{ name: string }>('select pg_walfile_name(pg_current_wal_lsn()) as name from pg_switch_wal()');
    const uploaded = await until(status, (body) => (body.uploads.lastUploaded?.name ?? '') >= name);
    expect(uploaded.uploads).toMatchObject({
      failures: 0,
      lastError: null,
      lastUploaded: { name: expect.any(String), key: expect.stringContaining('queue/wal/00000001/') },
    });

    // The pushed segment is reported in a batched dev.rookery.wal.archived event (outbox → bus).
    const lastName = uploaded.uploads.lastUploaded?.name ?? '?';
    await until(
      async () => archivedNames,
      (names) => names.includes(lastName),
    );
    await subscription.close();
  });

  it('POST /backups takes a base backup of the queue tier; the policy schedule is registered', async () => {
    const started = await request(app.getHttpServer()).post('/backups').expect(202);
    const record = started.body as BackupRecord;
    expect(record).toMatchObject({
      tier: 'queue',
      method: 'physical',
      status: 'running',
      requestedBy: expect.stringMatching(/^anonymous@/),
    });
    const done = await until(
      async () => (await request(app.getHttpServer()).get(`/backups/${record.id}`).expect(200)).body as BackupRecord,
      (body) => body.status !== 'running',
    );
    expect(done).toMatchObject({ status: 'completed', error: null });
    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((listed.body.backups as BackupRecord[]).map((backup) => backup.id)).toEqual([record.id]);
    expect(scheduledJobsStarted(app).has(fullBackupJobName('queue'))).toBe(true);
  });

  it('GET /metrics and the OpenAPI document show the stream', async () => {
    const metrics = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(metrics.text).toContain('rookery_wal_stream_up{tier="queue"} 1');
    expect(metrics.text).toContain('rookery_wal_stream_restarts{tier="queue"} 0');
    expect(metrics.text).toContain('rookery_backups_total{tier="queue"} 1');
    const docs = await request(app.getHttpServer()).get('/docs-json').expect(200);
    expect(Object.keys(docs.body.paths)).toEqual(expect.arrayContaining(['/backups', '/backups/{id}', '/status', '/health', '/metrics']));
    await request(app.getHttpServer()).get('/health').expect(200);
  });

  it('on shutdown pushes the partial segment holding the last commits', async () => {
    await cluster.query("insert into queue_jobs (payload) values ('last before shutdown')");
    await app.close();
    const store = createStore(`file://${repository}`);
    try {
      const partials = (await new WalArchive(store).list('queue')).filter((object) => object.file.kind === 'partial');
      expect(partials.length).toBeGreaterThanOrEqual(1);
    } finally {
      await store.close();
    }
    // Blocking (the default): the name stays, so the primary keeps waiting for the stream.
    const [{ names }] = await cluster.query<{ names: string }>("select current_setting('synchronous_standby_names') as names");
    expect(names).toBe('"rookery_queue_wal"');
  });
});
