import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { RookeryEngine } from '@rookery/engine';
import { RepositoryLock, repositoryLayout } from '@rookery/repository';
import { backupJobName, configureServiceApp, expireJobName, fullBackupJobName } from '@rookery/service-kit';
import {
  CONTENT_DATABASE,
  BackupServiceBed,
  completedBackup,
  s3TestRepository,
  scheduledBackup,
  seedContent,
  postBackup,
  startBackupServiceBed,
  scheduledJobsStarted,
} from '@rookery/testing';
import { ContentBackupModule } from './content-backup.module';

jest.setTimeout(180_000);

describe('content-backup service', () => {
  let bed: BackupServiceBed;
  let app: INestApplication;
  let full: BackupRecord;

  beforeAll(async () => {
    bed = await startBackupServiceBed({
      tier: 'content',
      database: CONTENT_DATABASE,
      // Enough rows that a backup at the policy's zstd level 9 runs for a moment.
      seed: (url) => seedContent(url, { sizeMb: 16, seed: 7 }),
      module: ContentBackupModule.forRoot,
      configure: (service) => configureServiceApp(service, { title: 'content-backup (test)', description: 'test' }),
    });
    app = bed.app;
  }, 240_000);

  afterAll(() => bed?.destroy());

  it('POST /backups answers 202 with a running full backup; a second POST while it runs is 409 LOCK_HELD', async () => {
    const running = await postBackup<BackupRecord>(app);
    expect(running).toMatchObject({
      tier: 'content',
      type: 'full',
      method: 'logical',
      status: 'running',
      requestedBy: expect.stringMatching(/^anonymous@/),
    });

    const second = await request(app.getHttpServer()).post('/backups').send({ type: 'incremental' }).expect(409);
    expect(second.body).toMatchObject({ code: 'LOCK_HELD', message: expect.stringContaining(running.id) });

    full = await completedBackup<BackupRecord>(app, running.id);
    // The split of the content tier: everything but the big table's rows, and those rows alone.
    expect(full.artifacts.map((artifact) => [artifact.name, artifact.kind])).toEqual([
      [expect.stringMatching(/^metadata\.dump\.zst/), 'dump'],
      [expect.stringMatching(/^objects\.dump\.zst/), 'dump'],
    ]);
    expect(full.artifacts[0].compression).toEqual({ codec: 'zstd', level: 9 });
    expect(full.startLsn).toBeNull();
  });

  it('commits the manifest to the repository only with artifacts that list, and GET /backups shows it', async () => {
    expect(existsSync(join(bed.repository, repositoryLayout.manifestKey('content', full.id, new Date(full.startedAt))))).toBe(true);
    const engine = app.get(RookeryEngine);
    const manifest = await engine.find('content', full.id);
    expect(manifest).toMatchObject({ id: full.id, type: 'full', method: 'logical', parent: null, bytes: full.bytes });
    expect(manifest.logical?.steps.map((step) => step.sections.join('+'))).toEqual(['pre-data+data', 'data', 'post-data']);
    const verified = await engine.verify('content', full.id);
    expect(verified).toMatchObject({ ok: true, artifacts: [{ ok: true }, { ok: true }] });

    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((listed.body.backups as BackupRecord[]).map((record) => [record.id, record.type, record.status, record.parent])).toEqual([
      [full.id, 'full', 'completed', null],
    ]);
  });

  it('answers 409 LOCK_HELD while another process (the CLI) holds the tier lock, and records nothing', async () => {
    const lock = await new RepositoryLock(app.get(RookeryEngine).store).acquire('content', { holder: 'rookery backup (cli)' });
    try {
      const refused = await request(app.getHttpServer()).post('/backups').expect(409);
      expect(refused.body).toMatchObject({ code: 'LOCK_HELD', message: expect.stringContaining('rookery backup (cli)') });
    } finally {
      await lock.release();
    }
    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((listed.body.backups as BackupRecord[]).map((record) => record.id)).toEqual([full.id]);
  });

  it('refuses a type the tier does not take with 400 CONFIG_INVALID before recording anything', async () => {
    const refused = await request(app.getHttpServer()).post('/backups').send({ type: 'snapshot' }).expect(400);
    expect(refused.body).toEqual({
      code: 'CONFIG_INVALID',
      message: "backup type 'snapshot' is not available for tier 'content'",
      hint: "tier 'content' takes 'full' or 'incremental'",
    });
    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect(listed.body.backups).toHaveLength(1);
  });

  it("registers the policy's schedules: full at fullSchedule, incremental at incrementalSchedule", () => {
    const scheduler = app.get(SchedulerRegistry);
    expect([...scheduler.getCronJobs().keys()].sort()).toEqual(
      [fullBackupJobName('content'), backupJobName('content', 'incremental'), expireJobName('content')].sort(),
    );
    expect(String(scheduler.getCronJob(fullBackupJobName('content')).cronTime.source)).toBe('0 3 * * *');
    const incremental = scheduler.getCronJob(backupJobName('content', 'incremental'));
    expect(String(incremental.cronTime.source)).toBe('0 */4 * * *');
    expect(scheduledJobsStarted(app).has(backupJobName('content', 'incremental'))).toBe(true);
  });

  it('the incremental job, run after changes, takes an incremental backup chained to the full', async () => {
    await bed.cluster.query(
      `update content_objects set subject = subject || ' (edited)' where id % 50 = 0;
       delete from object_tags where content_object_id % 97 = 0;`,
      [],
      CONTENT_DATABASE,
    );
    const record = await scheduledBackup<BackupRecord>(app, backupJobName('content', 'incremental'));
    expect(record).toMatchObject({ tier: 'content', type: 'incremental', requestedBy: 'schedule', status: 'completed', error: null });
    const manifest = await app.get(RookeryEngine).find('content', record.id);
    expect(manifest).toMatchObject({ type: 'incremental', parent: full.id });
    const served = await request(app.getHttpServer()).get(`/backups/${record.id}`).expect(200);
    expect(served.body).toMatchObject({ type: 'incremental', parent: full.id });
    expect(existsSync(join(bed.repository, repositoryLayout.manifestKey('content', record.id, new Date(record.startedAt))))).toBe(true);
    expect((await app.get(RookeryEngine).verify('content', record.id)).ok).toBe(true);
  });

  it('serves /health, /metrics per tier and OpenAPI at /docs with the optional type of POST /backups and the parent of a record', async () => {
    await request(app.getHttpServer()).get('/health').expect(200);
    const metrics = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(metrics.text).toContain('rookery_backups_total{tier="content"} 2');
    expect(metrics.text).toContain('rookery_backups_refused_total{tier="content"} 2');
    const document = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/backups', '/backups/{id}', '/health', '/metrics']));
    expect(document.paths['/backups'].post.requestBody).toMatchObject({ required: false });
    expect(document.components.schemas.StartBackupDto.properties.type.enum).toEqual(['full', 'incremental', 'snapshot']);
    expect(document.components.schemas.BackupRecordDto.properties.parent).toMatchObject({ type: 'string', nullable: true });
    expect(Object.keys(document.components.schemas.ArtifactDto.properties)).toEqual(expect.arrayContaining(['incremental', 'pageIndex']));
  });

  it('backs up into an S3 repository (real S3-compatible server) the same way', async () => {
    const onS3 = await bed.startAnother(await s3TestRepository('content-service'), 's3-catalog.sqlite');
    try {
      const started = await postBackup<BackupRecord>(onS3, { type: 'full' });
      const done = await completedBackup<BackupRecord>(onS3, started.id);
      expect(done.artifacts).toHaveLength(2);
      const engine = onS3.get(RookeryEngine);
      expect(engine.store.description).toMatch(/^s3:/);
      expect(await engine.find('content', done.id)).toMatchObject({ id: done.id, type: 'full', storedBytes: done.storedBytes });
      expect((await engine.verify('content', done.id)).ok).toBe(true);
    } finally {
      await onS3.close();
    }
  });
});
