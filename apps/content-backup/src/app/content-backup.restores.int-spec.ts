import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { RestoreJobService, RestoreProgressUpdate, RestoreRecord, configureServiceApp } from '@rookery/service-kit';
import {
  BackupServiceBed,
  CONTENT_DATABASE,
  completedBackup,
  postBackup,
  s3TestRepository,
  seedContent,
  startBackupServiceBed,
  userTableChecksums,
} from '@rookery/testing';
import { ContentBackupModule } from './content-backup.module';

jest.setTimeout(300_000);

/**
 * Logical restores through the content-backup service's REST API, from an S3 repository: a full
 * and an incremental backup taken through the service, 'latest' restored into a new database
 * that then holds exactly the source's tables and rows.
 */
describe('content-backup service restores (REST)', () => {
  let bed: BackupServiceBed;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    bed = await startBackupServiceBed({
      tier: 'content',
      database: CONTENT_DATABASE,
      seed: (url) => seedContent(url, { sizeMb: 8, seed: 16 }),
      module: ContentBackupModule.forRoot,
      configure: (service) => configureServiceApp(service, { title: 'content-backup (restores test)', description: 'test' }),
    });
    app = await bed.startAnother(await s3TestRepository('content-restores'), 'restores-catalog.sqlite');
  }, 240_000);

  afterAll(async () => {
    try {
      await app?.close();
    } finally {
      await bed?.destroy();
    }
  });

  it('refuses a target URL with a password, and a physical restore of a logical tier, before starting anything', async () => {
    const withPassword = bed.cluster.urlFor('content_copy').replace('postgres@', 'postgres:hunter2@');
    const refused = await http()
      .post('/restores')
      .send({ backup: 'latest', target: { kind: 'logical', url: withPassword } })
      .expect(400);
    expect(refused.body).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('target.url carries a password') });
    expect(JSON.stringify(refused.body)).not.toContain('hunter2');
    const physical = await http()
      .post('/restores')
      .send({ backup: 'latest', target: { kind: 'physical', directory: '/srv/restores/x' } })
      .expect(400);
    expect(physical.body.message).toBe("tier 'content' is backed up logically: a physical restore is not possible");
    const unknownField = await http()
      .post('/restores')
      .send({ backup: 'latest', target: { kind: 'logical', url: bed.cluster.urlFor('content_copy'), jobs: 4 } })
      .expect(400);
    expect(unknownField.body.message).toContain("'target.jobs'");
    expect((await http().get('/restores').expect(200)).body).toEqual({ restores: [] });
  });

  it("restores 'latest' (a full and its incremental) into a new database that holds exactly the source's tables and rows", async () => {
    const full = await completedBackup<BackupRecord>(app, (await postBackup<BackupRecord>(app, { type: 'full' })).id);
    await bed.cluster.query(
      `update content_objects set subject = subject || ' (edited)' where id % 40 = 0;
       delete from object_tags where content_object_id % 89 = 0;`,
      [],
      CONTENT_DATABASE,
    );
    const incremental = await completedBackup<BackupRecord>(app, (await postBackup<BackupRecord>(app, { type: 'incremental' })).id);
    const source = await userTableChecksums(bed.cluster.urlFor(CONTENT_DATABASE));

    const target = bed.cluster.urlFor('content_restored');
    const started = await http()
      .post('/restores')
      .send({ backup: 'latest', target: { kind: 'logical', url: target } })
      .expect(202);
    const running = started.body as RestoreRecord;
    expect(started.headers.location).toBe(`/restores/${running.id}`);
    expect(running).toMatchObject({
      tier: 'content',
      kind: 'logical',
      backup: 'latest',
      target: `127.0.0.1:${bed.cluster.port}/content_restored`,
      requestedBy: expect.stringMatching(/^anonymous@/),
    });

    // The transport-neutral stream the gRPC watch serves: running updates, then the end, then done.
    const updates: RestoreProgressUpdate[] = [];
    for await (const update of app.get(RestoreJobService).watch(running.id)) updates.push(update);
    const last = updates.at(-1) as RestoreProgressUpdate;
    expect(updates.slice(0, -1).every((update) => update.restore.status === 'running')).toBe(true);
    expect(last).toMatchObject({ restore: { id: running.id, status: 'completed', error: null }, progress: null });

    const done = (await http().get(`/restores/${running.id}`).expect(200)).body as RestoreRecord;
    expect(done).toMatchObject({
      status: 'completed',
      backupId: incremental.id,
      backupsApplied: [full.id, incremental.id],
      error: null,
      progress: null,
    });
    expect(done.bytes).toBeGreaterThan(0);
    expect(Object.keys(source).length).toBeGreaterThan(3);
    expect(await userTableChecksums(target)).toEqual(source);
  });
});
