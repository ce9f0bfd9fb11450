import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { buildConfig } from '@rookery/config';
import { configureServiceApp, grpcListenerOf } from '@rookery/service-kit';
import { AuthFixture, grpcAuthChecks, makeAuthFixture, serviceAuthChecks } from '@rookery/testing';
import { ComplianceReportingModule } from './compliance-reporting.module';

jest.setTimeout(300_000);

describe('compliance-reporting service authentication (every route)', () => {
  let work: string;
  let auth: AuthFixture;
  let app: INestApplication;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-compliance-auth-'));
    auth = await makeAuthFixture(work);
    const config = buildConfig(
      {
        catalog: { url: `sqlite://${join(work, 'ledger.sqlite')}` },
        // The ledger consumes nothing here: the in-process bus stands in for Kafka.
        events: { allowInProcess: true },
        auth: auth.section,
        // gRPC beside HTTP: the same checks over every rookery.v1 method the service serves.
        service: { grpc: { port: 0 } },
      },
      'compliance auth int-spec',
    );
    const moduleRef = await Test.createTestingModule({
      imports: [ComplianceReportingModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent' })],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(app, { title: 'compliance-reporting (auth test)', description: 'test' });
    await app.init();
    await app.startAllMicroservices();
  }, 240_000);

  afterAll(async () => {
    await app?.close();
    await rm(work, { recursive: true, force: true });
  });

  // Every report covers every tier: only GET /compliance/:tier is one tier's, open to a principal of that tier.
  const fleetRoutes = ['GET /compliance', 'GET /dashboard', 'GET /report.md', 'GET /report.csv', 'GET /metrics'];
  it.each(serviceAuthChecks({ app: () => app, auth: () => auth, tier: 'content', fleetRoutes }))('%s', (_name, run) => run());

  describe('over gRPC', () => {
    // GetReport covers every tier, like GET /report.md.
    it.each(grpcAuthChecks({ listener: () => grpcListenerOf(app), auth: () => auth, tier: 'content', fleetMethods: ['GetReport'] }))(
      '%s',
      (_name, run) => run(),
    );
  });
});
