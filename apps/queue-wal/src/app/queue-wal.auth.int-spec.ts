import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { buildConfig } from '@rookery/config';
import { configureServiceApp } from '@rookery/service-kit';
import { AuthFixture, TestCluster, makeAuthFixture, serviceAuthChecks, startCluster } from '@rookery/testing';
import { QueueWalModule } from './queue-wal.module';

jest.setTimeout(300_000);

describe('queue-wal service authentication (every route)', () => {
  let work: string;
  let auth: AuthFixture;
  let cluster: TestCluster;
  let app: INestApplication;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-queue-auth-'));
    // pg_receivewal runs as the postgres account: it must reach the spool below.
    await chmod(work, 0o711);
    auth = await makeAuthFixture(work);
    cluster = await startCluster({ name: 'queue-auth', settings: { synchronous_commit: 'on' } });
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repository')}`],
        tiers: { queue: { pgUrl: cluster.url } },
        catalog: { url: `sqlite://${join(work, 'catalog.sqlite')}` },
        walStream: { spoolDir: join(work, 'spool'), manageSynchronousStandbyNames: true },
        auth: auth.section,
      },
      'queue-wal auth int-spec',
    );
    const moduleRef = await Test.createTestingModule({
      imports: [QueueWalModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', sweepIntervalMs: 300 })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'queue-wal (auth test)', description: 'test' });
    await app.init();
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it.each(serviceAuthChecks({ app: () => app, auth: () => auth, tier: 'queue' }))('%s', (_name, run) => run());
});
