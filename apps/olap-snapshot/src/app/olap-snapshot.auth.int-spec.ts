import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureServiceApp } from '@rookery/service-kit';
import { AuthFixture, BackupServiceBed, makeAuthFixture, serviceAuthChecks, startBackupServiceBed } from '@rookery/testing';
import { OlapSnapshotModule } from './olap-snapshot.module';

jest.setTimeout(300_000);

describe('olap-snapshot service authentication (every route)', () => {
  let work: string;
  let auth: AuthFixture;
  let bed: BackupServiceBed;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-olap-auth-'));
    auth = await makeAuthFixture(work);
    // No backup runs here (a write that passes the guard is refused for its unknown field), so the
    // tier's database need not exist.
    bed = await startBackupServiceBed({
      tier: 'olap',
      database: 'postgres',
      seed: async () => undefined,
      module: OlapSnapshotModule.forRoot,
      configure: (service) => configureServiceApp(service, { title: 'olap-snapshot (auth test)', description: 'test' }),
      auth: auth.section,
    });
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it.each(serviceAuthChecks({ app: () => bed.app, auth: () => auth, tier: 'olap' }))('%s', (_name, run) => run());
});
