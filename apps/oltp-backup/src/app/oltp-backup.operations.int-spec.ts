import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { RookeryEngine } from '@rookery/engine';
import { JobProgress, RestoreRecord, ServedBackupRecord, configureServiceApp } from '@rookery/service-kit';
import {
  FaultProxy,
  TableChecksums,
  TestCluster,
  backupServiceConfig,
  freeLoopbackPort,
  pollUntil,
  s3TestRepository,
  seedOltp,
  startBackupService,
  startCluster,
  startFaultProxy,
  tableChecksums,
} from '@rookery/testing';
import { OltpBackupModule } from './oltp-backup.module';

jest.setTimeout(600_000);

/**
 * The operations issue 16 puts behind the oltp-backup service's REST API, on a real cluster and an
 * S3 repository: a backup followed to its end with its progress, a physical restore into a
 * directory under restores.directoryRoot that then starts with the source's data, a cancelled
 * backup, legal holds and the retention plan.
 */
describe('oltp-backup service operations (REST)', () => {
  let cluster: TestCluster;
  /** The service reaches PostgreSQL through it: a backup can be held mid-stream. */
  let pgProxy: FaultProxy;
  let work: string;
  let restoresRoot: string;
  let app: INestApplication;
  let sourceData: TableChecksums;
  let backup: ServedBackupRecord;
  const http = () => request(app.getHttpServer());

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-oltp-operations-'));
    // The restored server runs as the postgres account: it must reach its directory.
    await chmod(work, 0o711);
    restoresRoot = join(work, 'restores');
    await mkdir(restoresRoot, { mode: 0o711 });
    cluster = await startCluster({ name: 'oltp-operations' });
    // Enough data that a backup streams for a while: its progress is seen, and a cancel lands mid-run.
    await seedOltp(cluster.url, { sizeMb: 48 });
    sourceData = await tableChecksums(cluster.url);
    pgProxy = await startFaultProxy({ host: '127.0.0.1', port: cluster.port });
    const config = backupServiceConfig('oltp', {
      repository: await s3TestRepository('oltp-operations'),
      pgUrl: `postgres://postgres@127.0.0.1:${pgProxy.port}/postgres`,
      catalogUrl: `sqlite://${join(work, 'catalog.sqlite')}`,
      restoresRoot,
    });
    app = await startBackupService(OltpBackupModule.forRoot, config, (service) =>
      configureServiceApp(service, { title: 'oltp-backup (operations test)', description: 'test' }),
    );
  }, 300_000);

  afterAll(async () => {
    try {
      await app?.close();
    } finally {
      await pgProxy?.close();
      await cluster?.destroy();
      await rm(work, { recursive: true, force: true });
    }
  });

  /** GET /backups/:id until the backup has ended, keeping every progress it showed on the way. */
  async function followBackup(id: string): Promise<{ record: ServedBackupRecord; progress: JobProgress[] }> {
    const progress: JobProgress[] = [];
    const record = await pollUntil(
      async () => {
        const served = (await http().get(`/backups/${id}`).expect(200)).body as ServedBackupRecord;
        if (served.progress) progress.push(served.progress);
        return served;
      },
      (served) => served.status !== 'running',
      { what: `backup '${id}' to end`, intervalMs: 20 },
    );
    return { record, progress };
  }

  it('POST /backups starts a backup whose GET shows its progress while it runs, polled to completion', async () => {
    // PostgreSQL reports progress about once a second: the stream, capped at 4 MiB/s, lasts a few
    // seconds on any machine, so there is progress to see.
    pgProxy.setFault({ direction: 'down', bytesPerSecond: 4 * 1024 * 1024 });
    const started = await http().post('/backups').send({}).expect(202);
    const { record, progress } = await followBackup(started.body.id);
    pgProxy.clearFault();
    expect(record).toMatchObject({ id: started.body.id, status: 'completed', error: null, progress: null });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((seen) => seen.phase === 'backup' && seen.bytes >= 0)).toBe(true);
    // Bytes only grow, and the last seen is at most what the backup holds.
    expect(progress.map((seen) => seen.bytes)).toEqual([...progress.map((seen) => seen.bytes)].sort((a, b) => a - b));
    expect(progress.at(-1)?.bytes).toBeLessThanOrEqual(record.bytes as number);
    backup = record;
  });

  it('POST /backups/:id/cancel stops a running backup: failed, its error naming who cancelled it; the next backup runs', async () => {
    // The server's stream slowed to 1 MiB/s (its 14 MiB take seconds): the backup is mid-stream
    // when the cancel comes, however fast this machine is (a stall would leave no progress to see).
    pgProxy.setFault({ direction: 'down', bytesPerSecond: 1024 * 1024 });
    const started = await http().post('/backups').send({}).expect(202);
    const id = started.body.id as string;
    await pollUntil(
      async () => ((await http().get(`/backups/${id}`).expect(200)).body as ServedBackupRecord).progress,
      (progress) => progress !== null,
      { what: `backup '${id}' to stream`, intervalMs: 20 },
    );
    const cancelled = await http().post(`/backups/${id}/cancel`).send({}).expect(200);
    pgProxy.clearFault();
    expect(cancelled.body).toMatchObject({ id, status: 'failed', error: expect.stringMatching(/^cancelled by anonymous@/) });
    const again = await http().get(`/backups/${id}`).expect(200);
    expect(again.body).toMatchObject({ status: 'failed', error: cancelled.body.error, progress: null });

    const notRunning = await http().post(`/backups/${id}/cancel`).expect(409);
    expect(notRunning.body).toMatchObject({ code: 'NOT_RUNNING', message: expect.stringContaining(`backup '${id}' of tier 'oltp'`) });
    await http().post('/backups/20990101T000000Z-oltp/cancel').expect(404);
    await http().post(`/backups/${id}/cancel`).send({ force: true }).expect(400);

    // The cancelled run released the tier: a backup runs again, and the cancelled one is not listed by the repository.
    const next = await http().post('/backups').send({}).expect(202);
    expect((await followBackup(next.body.id)).record.status).toBe('completed');
    const { backups } = await app.get(RookeryEngine).list('oltp');
    expect(backups.map((manifest) => manifest.id)).toEqual([backup.id, next.body.id]);
  });

  it('refuses restores the service must not run: outside the directory root, logical on a physical tier, a started server, a recovery target it cannot write', async () => {
    const outside = await http()
      .post('/restores')
      .send({ backup: backup.id, target: { kind: 'physical', directory: join(work, 'elsewhere') } })
      .expect(400);
    expect(outside.body).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('is not under restores.directoryRoot') });
    const logical = await http()
      .post('/restores')
      .send({ backup: backup.id, target: { kind: 'logical', url: cluster.urlFor('copy') } })
      .expect(400);
    expect(logical.body.message).toBe("tier 'oltp' is backed up physically: a logical restore is not possible");
    await http()
      .post('/restores')
      .send({ backup: backup.id, target: { kind: 'physical', directory: join(restoresRoot, 'x'), start: true } })
      .expect(400);
    // This service runs without the rookery command a restored server's restore_command needs.
    const targeted = await http()
      .post('/restores')
      .send({ backup: backup.id, target: { kind: 'physical', directory: join(restoresRoot, 'x'), recoveryTarget: { lsn: '0/3000148' } } })
      .expect(400);
    expect(targeted.body.message).toBe('a recovery target needs recovery settings, which this service does not write');
    expect((await http().get('/restores').expect(200)).body).toEqual({ restores: [] });
  });

  it('POST /restores restores the backup physically into a directory under the root; started, it holds the source data', async () => {
    const directory = join(restoresRoot, 'oltp-restored');
    const started = await http()
      .post('/restores')
      .send({ backup: backup.id, target: { kind: 'physical', directory } })
      .expect(202);
    const running = started.body as RestoreRecord;
    expect(started.headers.location).toBe(`/restores/${running.id}`);
    expect(running).toMatchObject({
      tier: 'oltp',
      kind: 'physical',
      backup: backup.id,
      target: directory,
      requestedBy: expect.stringMatching(/^anonymous@/),
    });

    const progress: JobProgress[] = [];
    const done = await pollUntil(
      async () => {
        const served = (await http().get(`/restores/${running.id}`).expect(200)).body as RestoreRecord & { progress: JobProgress | null };
        if (served.progress) progress.push(served.progress);
        return served;
      },
      (served) => served.status !== 'running',
      { what: `restore '${running.id}' to end`, intervalMs: 20 },
    );
    expect(done).toMatchObject({ status: 'completed', error: null, backupId: backup.id, backupsApplied: [backup.id], progress: null });
    expect(done.bytes).toBeGreaterThan(0);
    expect((await http().get('/restores').expect(200)).body.restores.map((record: RestoreRecord) => record.id)).toEqual([running.id]);
    await http().post(`/restores/${running.id}/cancel`).expect(409);
    await http().get('/restores/restore-unknown').expect(404);

    // Left for the operator to start: nothing runs on it yet.
    const engine = app.get(RookeryEngine);
    expect(await engine.isRestoredRunning(directory)).toBe(false);
    const port = await engine.startRestored(directory, { port: await freeLoopbackPort() });
    try {
      expect(await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`)).toEqual(sourceData);
    } finally {
      await engine.stopRestored(directory);
    }
  });

  it('places, lists and releases a legal hold, which the retention plan keeps the backup for', async () => {
    const placed = await http().post('/holds').send({ backup: backup.id, reason: 'litigation 2026-114' }).expect(201);
    expect(placed.body).toMatchObject({
      backupId: backup.id,
      tier: 'oltp',
      reason: 'litigation 2026-114',
      heldBy: expect.stringMatching(/^anonymous@.* \(oltp-backup service\)$/),
    });
    expect((await http().get('/holds').expect(200)).body).toEqual({ holds: [placed.body] });

    const plan = (await http().get('/retention/plan').expect(200)).body as {
      tier: string;
      dryRun: boolean;
      plan: { keep: { backups: { id: string; reasons: string[] }[] }; expire: { backups: unknown[] } };
    };
    expect(plan).toMatchObject({ tier: 'oltp', dryRun: true });
    expect(plan.plan.expire.backups).toEqual([]);
    const kept = plan.plan.keep.backups.find((entry) => entry.id === backup.id);
    expect(kept?.reasons.join('; ')).toContain('litigation 2026-114');

    await http().post('/holds').send({ backup: '20990101T000000Z-oltp', reason: 'x' }).expect(404);
    await http().post('/holds').send({ backup: backup.id }).expect(400);
    expect((await http().delete(`/holds/${backup.id}`).expect(200)).body).toEqual(placed.body);
    expect((await http().get('/holds').expect(200)).body).toEqual({ holds: [] });
    const again = await http().delete(`/holds/${backup.id}`).expect(400);
    expect(again.body.message).toContain('is not under legal hold');
  });
});
