import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { RookeryEngine } from '@rookery/engine';
import { RepositoryLock, repositoryLayout } from '@rookery/repository';
import { backupJobName, configureServiceApp, expireJobName, fullBackupJobName } from '@rookery/service-kit';
import { TestCluster, holdSchedules, pollUntil, scheduledJobsStarted, seedOltp, startCluster } from '@rookery/testing';
import { OltpBackupModule } from './oltp-backup.module';

jest.setTimeout(600_000);

interface ServiceWalStatus {
  tier: string;
  lastArchived: { name: string } | null;
  archivedFiles: number;
  server: { archiveMode: string } | null;
  serverProblem: string | null;
  exposure: { bytes: number; seconds: number } | null;
}

async function startService(config: RookeryConfig): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [OltpBackupModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent' })],
  }).compile();
  const app = moduleRef.createNestApplication({ bufferLogs: true });
  configureServiceApp(app, { title: 'oltp-backup (test)', description: 'test' });
  await app.init();
  holdSchedules(app);
  return app;
}

function serviceConfig(repository: string, pgUrl: string, catalogUrl: string): RookeryConfig {
  return buildConfig(
    {
      repositories: [`file://${repository}`],
      tiers: { oltp: { pgUrl } },
      catalog: { url: catalogUrl },
      service: { host: '127.0.0.1', port: 0 },
      auth: { mode: 'none' },
    },
    'oltp-backup int-spec',
  );
}

/** Polls `probe` until `done` holds (pollUntil's generous cap: a wait, never a time bound). */
function until<T>(probe: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  return pollUntil(probe, done);
}

async function backupRecord(app: INestApplication, id: string): Promise<BackupRecord> {
  const response = await request(app.getHttpServer()).get(`/backups/${id}`).expect(200);
  return response.body as BackupRecord;
}

function manifestPath(repository: string, record: BackupRecord): string {
  return join(repository, ...repositoryLayout.manifestKey('oltp', record.id, new Date(record.startedAt)).split('/'));
}

describe('oltp-backup service', () => {
  let cluster: TestCluster;
  let work: string;
  let repository: string;
  let app: INestApplication;
  let first: BackupRecord;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-oltp-service-'));
    repository = join(work, 'repository');
    cluster = await startCluster({ name: 'oltp-service' });
    // Enough data that a backup runs for a moment, so "a second POST while one runs" is real.
    await seedOltp(cluster.url, { sizeMb: 24 });
    app = await startService(serviceConfig(repository, cluster.url, `sqlite://${join(work, 'catalog.sqlite')}`));
  });

  afterAll(async () => {
    try {
      await app?.close();
    } finally {
      await cluster?.destroy();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('POST /backups answers 202 with the running record; a second POST while it runs is 409 LOCK_HELD', async () => {
    const started = await request(app.getHttpServer()).post('/backups').expect(202);
    first = started.body as BackupRecord;
    expect(first).toMatchObject({
      tier: 'oltp',
      type: 'full',
      method: 'physical',
      status: 'running',
      requestedBy: expect.stringMatching(/^anonymous@/),
    });
    expect(started.headers.location).toBe(`/backups/${first.id}`);

    const second = await request(app.getHttpServer()).post('/backups').expect(409);
    expect(second.body).toMatchObject({
      code: 'LOCK_HELD',
      message: expect.stringContaining("a backup of tier 'oltp' is already running"),
    });
    expect(second.body.message).toContain(first.id);
    expect(second.body.hint).toEqual(expect.any(String));

    const done = await until(
      () => backupRecord(app, first.id),
      (record) => record.status !== 'running',
    );
    expect(done).toMatchObject({ id: first.id, status: 'completed', error: null });
    expect(done.bytes).toBeGreaterThan(24 * 1024 * 1024);
    expect(done.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    // zstd compressed by the server, with its page index (the tier takes block incrementals) and
    // PostgreSQL's backup_manifest stored beside the tar.
    expect(done.artifacts.map((artifact) => artifact.name)).toEqual(['base.tar.zst', 'base.pgidx', 'backup_manifest.zst']);
    first = done;
  });

  it('GET /backups lists the backup from the catalog and its manifest is in the repository', async () => {
    const response = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((response.body.backups as BackupRecord[]).map((record) => [record.id, record.status])).toEqual([[first.id, 'completed']]);
    expect(existsSync(manifestPath(repository, first))).toBe(true);
    const manifest = await app.get(RookeryEngine).find('oltp', first.id);
    expect(manifest).toMatchObject({ id: first.id, startedAt: first.startedAt, bytes: first.bytes, storedBytes: first.storedBytes });
  });

  it('answers 409 LOCK_HELD when another process holds the tier lock, and records nothing', async () => {
    const lock = await new RepositoryLock(app.get(RookeryEngine).store).acquire('oltp', { holder: 'rookery backup (cli)' });
    try {
      const refused = await request(app.getHttpServer()).post('/backups').expect(409);
      expect(refused.body).toMatchObject({ code: 'LOCK_HELD', message: expect.stringContaining('rookery backup (cli)') });
    } finally {
      await lock.release();
    }
    const response = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((response.body.backups as BackupRecord[]).map((record) => record.id)).toEqual([first.id]);
  });

  it.each(['unknown', '20990101T000000Z-oltp'])('GET /backups/%s → 404 BACKUP_NOT_FOUND', async (id) => {
    const response = await request(app.getHttpServer()).get(`/backups/${id}`).expect(404);
    expect(response.body).toMatchObject({ code: 'BACKUP_NOT_FOUND', message: `backup '${id}' of tier 'oltp' not found` });
  });

  it('GET /status reports the WAL archive of the tier: newest archived segment, archiver state, RPO exposure', async () => {
    const before = (await request(app.getHttpServer()).get('/status').expect(200)).body as { tier: string; wal: ServiceWalStatus };
    expect(before.tier).toBe('oltp');
    expect(before.wal).toMatchObject({ tier: 'oltp', lastArchived: null, serverProblem: null });
    expect(before.wal.server?.archiveMode).toBe('off');
    // Nothing archived: every byte of WAL the server wrote is exposed.
    expect(before.wal.exposure?.bytes).toBeGreaterThan(0);

    const [{ name }] = await cluster.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
    const copy = join(work, name);
    await copyFile(join(cluster.dataDir, 'pg_wal', name), copy);
    await app.get(RookeryEngine).wal.push('oltp', copy);

    const after = (await request(app.getHttpServer()).get('/status').expect(200)).body as { wal: ServiceWalStatus };
    expect(after.wal.lastArchived?.name).toBe(name);
    expect(after.wal.archivedFiles).toBe(1);
    // Exposure now starts at the end of the archived segment: less than one segment.
    expect(after.wal.exposure?.bytes).toBeLessThan(16 * 1024 * 1024);
  });

  it('GET /metrics exposes the backup counters in Prometheus format', async () => {
    const response = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(response.headers['content-type']).toContain('text/plain');
    expect(response.text).toContain('rookery_backups_total{tier="oltp"} 1');
    expect(response.text).toContain('rookery_backups_failed_total{tier="oltp"} 0');
    expect(response.text).toMatch(/rookery_backups_refused_total\{tier="oltp"\} 2/);
    expect(response.text).toMatch(/rookery_backup_last_success_timestamp_seconds\{tier="oltp"\} \d+/);
    expect(response.text).toContain('rookery_backup_duration_seconds_count{tier="oltp",status="completed"} 1');
  });

  it('serves the OpenAPI document at /docs', async () => {
    const response = await request(app.getHttpServer()).get('/docs-json').expect(200);
    expect(Object.keys(response.body.paths)).toEqual(expect.arrayContaining(['/backups', '/backups/{id}', '/health', '/metrics']));
    await request(app.getHttpServer()).get('/docs').expect(200);
  });

  it("registers the tier policy's daily full and hourly block-incremental schedules (WAL is archived continuously beside them)", () => {
    expect([...app.get(SchedulerRegistry).getCronJobs().keys()].sort()).toEqual(
      [expireJobName('oltp'), fullBackupJobName('oltp'), backupJobName('oltp', 'incremental')].sort(),
    );
    const job = app.get(SchedulerRegistry).getCronJob(fullBackupJobName('oltp'));
    expect(String(job.cronTime.source)).toBe('0 2 * * *');
    expect(scheduledJobsStarted(app).has(fullBackupJobName('oltp'))).toBe(true);
    // Every hour but the full's.
    const incremental = app.get(SchedulerRegistry).getCronJob(backupJobName('oltp', 'incremental'));
    expect(String(incremental.cronTime.source)).toBe('0 0,1,3-23 * * *');
    expect(scheduledJobsStarted(app).has(backupJobName('oltp', 'incremental'))).toBe(true);
  });

  it('GET /health is 200 while the repository and catalog answer, 503 naming the repository when it is gone', async () => {
    const healthy = await request(app.getHttpServer()).get('/health').expect(200);
    expect(healthy.body).toMatchObject({
      status: 'ok',
      info: { service: { status: 'up', name: 'oltp-backup', tier: 'oltp' }, repository: { status: 'up' }, catalog: { status: 'up' } },
    });

    // Removed, with a plain file in its place: the store cannot recreate its directory (the tests
    // run as root, so a chmod would not make the directory unwritable).
    await rename(repository, `${repository}.moved`);
    await writeFile(repository, 'not a directory\n');
    try {
      const broken = await request(app.getHttpServer()).get('/health').expect(503);
      expect(broken.body).toMatchObject({
        status: 'error',
        error: { repository: { status: 'down', code: expect.stringMatching(/^STORAGE_/), message: expect.any(String) } },
        info: { catalog: { status: 'up' } },
      });
    } finally {
      await rm(repository, { force: true });
      await rename(`${repository}.moved`, repository);
    }
    await request(app.getHttpServer()).get('/health').expect(200);
  });

  it('answers 503 when the database cannot be reached and keeps the failed run in the catalog', async () => {
    const unreachable = await startService(
      serviceConfig(join(work, 'other-repository'), 'postgres://postgres@127.0.0.1:1/postgres', 'sqlite://:memory:'),
    );
    try {
      const refused = await request(unreachable.getHttpServer()).post('/backups').expect(503);
      expect(refused.body).toMatchObject({ code: 'SOURCE_UNAVAILABLE', message: expect.any(String) });
      expect(refused.headers['retry-after']).toBe('30');
      const listed = await request(unreachable.getHttpServer()).get('/backups').expect(200);
      expect(listed.body.backups).toEqual([expect.objectContaining({ status: 'failed', error: refused.body.message })]);
      const metrics = await request(unreachable.getHttpServer()).get('/metrics').expect(200);
      expect(metrics.text).toContain('rookery_backups_failed_total{tier="oltp"} 1');
    } finally {
      await unreachable.close();
    }
  });

  it('rebuilds a fresh catalog from the repository on start', async () => {
    const restarted = await startService(serviceConfig(repository, cluster.url, `sqlite://${join(work, 'fresh-catalog.sqlite')}`));
    try {
      const response = await request(restarted.getHttpServer()).get('/backups').expect(200);
      expect(response.body.backups).toEqual([{ ...first, requestedBy: null }]);
    } finally {
      await restarted.close();
    }
  });

  it('keeps its catalog in PostgreSQL when catalog.url is a postgres:// database', async () => {
    await cluster.query('create database rookery_catalog');
    const onPostgres = await startService(serviceConfig(repository, cluster.url, cluster.urlFor('rookery_catalog')));
    try {
      const started = await request(onPostgres.getHttpServer()).post('/backups').expect(202);
      const id = (started.body as BackupRecord).id;
      await until(
        () => backupRecord(onPostgres, id),
        (record) => record.status !== 'running',
      );
      const rows = await cluster.query<{ id: string; status: string }>(
        'select id, status from backup_record order by started_at',
        [],
        'rookery_catalog',
      );
      expect(rows).toEqual([
        { id: first.id, status: 'completed' },
        { id, status: 'completed' },
      ]);
      const listed = await request(onPostgres.getHttpServer()).get('/backups').expect(200);
      expect((listed.body.backups as BackupRecord[]).map((record) => record.id)).toEqual([first.id, id]);
    } finally {
      await onPostgres.close();
    }
  });
});
