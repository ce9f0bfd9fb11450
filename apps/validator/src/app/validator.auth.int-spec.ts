import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { buildConfig } from '@rookery/config';
import { configureServiceApp, grpcListenerOf } from '@rookery/service-kit';
import { AuthFixture, TestCluster, grpcAuthChecks, makeAuthFixture, serviceAuthChecks, startCluster } from '@rookery/testing';
import { ValidatorModule } from './validator.module';

jest.setTimeout(300_000);

describe('validator service authentication (every route)', () => {
  let work: string;
  let auth: AuthFixture;
  let cluster: TestCluster;
  let app: INestApplication;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-validator-auth-'));
    auth = await makeAuthFixture(work);
    cluster = await startCluster({ name: 'validator-auth' });
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repository')}`],
        tiers: { oltp: { pgUrl: cluster.url } },
        catalog: { url: `sqlite://${join(work, 'validator.sqlite')}` },
        // No drill or validation runs here: the in-process bus stands in for Kafka.
        events: { allowInProcess: true },
        auth: auth.section,
        // gRPC beside HTTP: the same checks over every rookery.v1 method the service serves.
        service: { grpc: { port: 0 } },
      },
      'validator auth int-spec',
    );
    const moduleRef = await Test.createTestingModule({
      imports: [ValidatorModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent', workDirectory: work })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'validator (auth test)', description: 'test' });
    await app.init();
    await app.startAllMicroservices();
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  // The validator serves every tier: a route naming none (GET /metrics) is refused to a tier-scoped principal.
  it.each(serviceAuthChecks({ app: () => app, auth: () => auth, tier: 'oltp', fleetRoutes: ['GET /metrics'] }))('%s', (_name, run) =>
    run(),
  );

  describe('over gRPC', () => {
    it.each(grpcAuthChecks({ listener: () => grpcListenerOf(app), auth: () => auth, tier: 'oltp' }))('%s', (_name, run) => run());
  });
});
