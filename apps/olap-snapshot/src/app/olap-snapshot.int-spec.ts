import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { RookeryEngine } from '@rookery/engine';
import { repositoryLayout } from '@rookery/repository';
import { backupJobName, configureServiceApp, expireJobName, fullBackupJobName } from '@rookery/service-kit';
import {
  OLAP_DATABASE,
  BackupServiceBed,
  completedBackup,
  s3TestRepository,
  scheduledBackup,
  seedOlap,
  postBackup,
  startBackupServiceBed,
  scheduledJobsStarted,
} from '@rookery/testing';
import { OlapSnapshotModule } from './olap-snapshot.module';

jest.setTimeout(180_000);

const DAY_MS = 86_400_000;

describe('olap-snapshot service', () => {
  let bed: BackupServiceBed;
  let app: INestApplication;
  let full: BackupRecord;

  beforeAll(async () => {
    bed = await startBackupServiceBed({
      tier: 'olap',
      database: OLAP_DATABASE,
      seed: (url) => seedOlap(url, { sizeMb: 12, seed: 7 }),
      module: OlapSnapshotModule.forRoot,
      configure: (service) => configureServiceApp(service, { title: 'olap-snapshot (test)', description: 'test' }),
    });
    app = bed.app;
  }, 240_000);

  afterAll(() => bed?.destroy());

  it('POST /backups answers 202 with a running full backup; a second POST while it runs is 409 LOCK_HELD', async () => {
    const running = await postBackup<BackupRecord>(app);
    expect(running).toMatchObject({
      tier: 'olap',
      type: 'full',
      method: 'logical',
      status: 'running',
      requestedBy: expect.stringMatching(/^anonymous@/),
    });

    const second = await request(app.getHttpServer()).post('/backups').send({ type: 'snapshot' }).expect(409);
    expect(second.body).toMatchObject({ code: 'LOCK_HELD', message: expect.stringContaining(running.id) });

    full = await completedBackup<BackupRecord>(app, running.id);
    expect(full.artifacts.map((artifact) => [artifact.name, artifact.kind])).toEqual([[expect.stringMatching(/^full\.dump\./), 'dump']]);
  });

  it('commits a manifest that keeps the full retentionDays, with the audit log rows left out and every artifact listing', async () => {
    expect(existsSync(join(bed.repository, repositoryLayout.manifestKey('olap', full.id, new Date(full.startedAt))))).toBe(true);
    const engine = app.get(RookeryEngine);
    const manifest = await engine.find('olap', full.id);
    expect(manifest).toMatchObject({ id: full.id, type: 'full', method: 'logical', bytes: full.bytes });
    expect(manifest.logical?.excludedTableData).toEqual(['*.admin_audit_log']);
    expect(Date.parse(manifest.retentionUntil) - Date.parse(manifest.finishedAt)).toBe(365 * DAY_MS);
    expect(await engine.verify('olap', full.id)).toMatchObject({ ok: true, artifacts: [{ ok: true }] });
  });

  it('refuses an incremental (the olap tier takes snapshots) with 400 CONFIG_INVALID, recording nothing', async () => {
    const refused = await request(app.getHttpServer()).post('/backups').send({ type: 'incremental' }).expect(400);
    expect(refused.body).toMatchObject({ code: 'CONFIG_INVALID', hint: "tier 'olap' takes 'full' or 'snapshot'" });
    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((listed.body.backups as BackupRecord[]).map((record) => record.id)).toEqual([full.id]);
  });

  it("registers the policy's schedules: full daily at fullSchedule, the snapshot weekly at incrementalSchedule", () => {
    const scheduler = app.get(SchedulerRegistry);
    expect([...scheduler.getCronJobs().keys()].sort()).toEqual(
      [fullBackupJobName('olap'), backupJobName('olap', 'snapshot'), expireJobName('olap')].sort(),
    );
    expect(String(scheduler.getCronJob(fullBackupJobName('olap')).cronTime.source)).toBe('0 4 * * *');
    const snapshot = scheduler.getCronJob(backupJobName('olap', 'snapshot'));
    expect(String(snapshot.cronTime.source)).toBe('0 5 * * 0');
    expect(scheduledJobsStarted(app).has(backupJobName('olap', 'snapshot'))).toBe(true);
  });

  it('the snapshot job takes a snapshot kept snapshotRetentionDays (365 d from its end)', async () => {
    const record = await scheduledBackup<BackupRecord>(app, backupJobName('olap', 'snapshot'));
    expect(record).toMatchObject({ tier: 'olap', type: 'snapshot', requestedBy: 'schedule', status: 'completed', error: null });
    expect(existsSync(join(bed.repository, repositoryLayout.manifestKey('olap', record.id, new Date(record.startedAt))))).toBe(true);
    const manifest = await app.get(RookeryEngine).find('olap', record.id);
    expect(manifest).toMatchObject({ type: 'snapshot', parent: null });
    expect(Date.parse(manifest.retentionUntil)).toBe(Date.parse(manifest.finishedAt) + 365 * DAY_MS);
    expect((await app.get(RookeryEngine).verify('olap', record.id)).ok).toBe(true);

    const listed = await request(app.getHttpServer()).get('/backups').expect(200);
    expect((listed.body.backups as BackupRecord[]).map((backup) => [backup.type, backup.status])).toEqual([
      ['full', 'completed'],
      ['snapshot', 'completed'],
    ]);
  });

  it('serves /health, /metrics per tier and OpenAPI at /docs with the optional type of POST /backups', async () => {
    await request(app.getHttpServer()).get('/health').expect(200);
    const metrics = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(metrics.text).toContain('rookery_backups_total{tier="olap"} 2');
    expect(metrics.text).toContain('rookery_backups_refused_total{tier="olap"} 1');
    const document = (await request(app.getHttpServer()).get('/docs-json').expect(200)).body;
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/backups', '/backups/{id}', '/health', '/metrics']));
    expect(document.paths['/backups'].post.requestBody).toMatchObject({ required: false });
    expect(document.components.schemas.StartBackupDto.properties.type.enum).toEqual(['full', 'incremental', 'snapshot']);
  });

  it('takes a snapshot on demand into an S3 repository (real S3-compatible server)', async () => {
    const onS3 = await bed.startAnother(await s3TestRepository('olap-service'), 's3-catalog.sqlite');
    try {
      const started = await postBackup<BackupRecord>(onS3, { type: 'snapshot' });
      expect(started).toMatchObject({ type: 'snapshot', requestedBy: expect.stringMatching(/^anonymous@/) });
      const done = await completedBackup<BackupRecord>(onS3, started.id);
      const engine = onS3.get(RookeryEngine);
      expect(engine.store.description).toMatch(/^s3:/);
      expect(await engine.find('olap', done.id)).toMatchObject({ id: done.id, type: 'snapshot', storedBytes: done.storedBytes });
      expect((await engine.verify('olap', done.id)).ok).toBe(true);
    } finally {
      await onS3.close();
    }
  });
});
