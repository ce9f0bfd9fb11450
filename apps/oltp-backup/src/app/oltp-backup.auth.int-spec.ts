import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ServiceEventsService, configureServiceApp, grpcListenerOf } from '@rookery/service-kit';
import {
  AuthFixture,
  BackupServiceBed,
  grpcAuthChecks,
  makeAuthFixture,
  pollUntil,
  recordAudits,
  serviceAuthChecks,
  startBackupServiceBed,
} from '@rookery/testing';
import { OltpBackupModule } from './oltp-backup.module';

jest.setTimeout(300_000);

describe('oltp-backup service authentication (every route)', () => {
  let work: string;
  let auth: AuthFixture;
  let bed: BackupServiceBed;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-oltp-auth-'));
    auth = await makeAuthFixture(work);
    bed = await startBackupServiceBed({
      tier: 'oltp',
      database: 'postgres',
      seed: async () => undefined,
      module: OltpBackupModule.forRoot,
      configure: (service) => configureServiceApp(service, { title: 'oltp-backup (auth test)', description: 'test' }),
      auth: auth.section,
      grpc: { port: 0 },
    });
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it.each(serviceAuthChecks({ app: () => bed.app, auth: () => auth, tier: 'oltp' }))('%s', (_name, run) => run());

  describe('over gRPC', () => {
    it.each(grpcAuthChecks({ listener: () => grpcListenerOf(bed.app), auth: () => auth, tier: 'oltp' }))('%s', (_name, run) => run());
  });

  it('names the principal in the audit trail: a backup started by a tier operator, calls refused', async () => {
    const audits = recordAudits(bed.app.get(ServiceEventsService));
    const server = bed.app.getHttpServer();
    const operator = `Bearer ${auth.tokens['operator-oltp']}`;
    const started = await request(server).post('/backups').set('Authorization', operator).send({}).expect(202);
    await request(server).post('/backups').set('Authorization', `Bearer ${auth.tokens['auditor']}`).send({}).expect(403);
    await request(server).post('/backups').send({}).expect(401);
    const done = await pollUntil(
      async () =>
        (await request(server).get(`/backups/${started.body.id}`).set('Authorization', operator).expect(200)).body as { status: string },
      (record) => record.status !== 'running',
    );
    expect(done.status).toBe('completed');
    expect(audits.map(({ actor, role, action, outcome }) => ({ actor, role, action, outcome }))).toEqual([
      { actor: 'operator-oltp', role: 'operator', action: 'POST /backups', outcome: 'succeeded' },
      { actor: 'auditor', role: 'auditor', action: 'POST /backups', outcome: 'denied' },
      { actor: expect.stringMatching(/^unauthenticated@/), role: undefined, action: 'POST /backups', outcome: 'denied' },
    ]);
  });
});
