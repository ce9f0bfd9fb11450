import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DynamicModule, INestApplication } from '@nestjs/common';
import type { Agent } from 'supertest';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { TierName } from '@rookery/core';
import { TestCluster, startCluster } from './cluster.harness';
import { pollUntil } from './poll';
import { acquireS3, s3StoreUrl } from './s3proxy.harness';
import type { AuthFixture } from './service-auth.harness';

// @nestjs/testing, supertest and @nestjs/schedule are required when a helper runs, not with this
// module: the CLI loads the harness index for `rookery demo`, and must not pay for Nest on start.

/** What the service helpers read of a catalog record (the catalog lib is not imported here). */
export interface ServiceBackupRecord {
  id: string;
  status: string;
  requestedBy: string | null;
  error: string | null;
}

/** The service's root module for a config; the log level of tests comes from TEST_LOG_LEVEL. */
export type ServiceModuleFactory = (options: { config: RookeryConfig; logLevel: string }) => DynamicModule;

/** The service.grpc section of a test config file. */
export interface GrpcListenerSection {
  port: number;
  tls?: { certFile: string; keyFile: string; clientCaFile?: string; requireClientCert?: boolean };
}

/**
 * A tier service's config for a test: one repository, the tier's database, a catalog, an
 * ephemeral port (the app is never listened on; supertest binds its own).
 */
export function backupServiceConfig(
  tier: TierName,
  options: {
    repository: string;
    pgUrl: string;
    catalogUrl: string;
    auth?: AuthFixture['section'];
    /** restores.directoryRoot: where physical restores through the service may go (default: none allowed). */
    restoresRoot?: string;
    grpc?: GrpcListenerSection;
  },
): RookeryConfig {
  return buildConfig(
    {
      repositories: [options.repository],
      tiers: { [tier]: { pgUrl: options.pgUrl } },
      catalog: { url: options.catalogUrl },
      service: { host: '127.0.0.1', port: 0, ...(options.grpc ? { grpc: options.grpc } : {}) },
      // Authentication is off in the specs of what a service does; <app>.auth.int-spec covers it.
      auth: options.auth ?? { mode: 'none' },
      ...(options.restoresRoot ? { restores: { directoryRoot: options.restoresRoot } } : {}),
    },
    `${tier} service int-spec`,
  );
}

/**
 * Builds and initialises a service app the way main() does, through `configure` (the app's
 * configureServiceApp), without listening on HTTP; its gRPC listener (service.grpc) is started.
 */
export async function startBackupService(
  module: ServiceModuleFactory,
  config: RookeryConfig,
  configure: (app: INestApplication) => void,
): Promise<INestApplication> {
  const { Test } = require('@nestjs/testing') as typeof import('@nestjs/testing');
  const moduleRef = await Test.createTestingModule({
    imports: [module({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent' })],
  }).compile();
  const app = moduleRef.createNestApplication({ bufferLogs: true });
  configure(app);
  await app.init();
  holdSchedules(app);
  await app.startAllMicroservices();
  return app;
}

const startedSchedules = new WeakMap<INestApplication, ReadonlySet<string>>();

/**
 * Stops every cron job the app registered and started, remembering which were started: a spec
 * asserts that through scheduledJobsStarted and runs a job with scheduledBackup, and the wall
 * clock never adds a backup of its own (CI once ran across 23:00: the OLTP tier's hourly
 * incremental fired mid-spec and a counter read 3 refusals instead of 2).
 */
export function holdSchedules(app: INestApplication): void {
  const { SchedulerRegistry } = require('@nestjs/schedule') as typeof import('@nestjs/schedule');
  const started = new Set<string>();
  for (const [name, job] of app.get(SchedulerRegistry).getCronJobs()) {
    if (job.isActive) started.add(name);
    void job.stop();
  }
  startedSchedules.set(app, started);
}

/** The cron jobs the app had started when holdSchedules stopped them. */
export function scheduledJobsStarted(app: INestApplication): ReadonlySet<string> {
  const started = startedSchedules.get(app);
  if (!started) throw new Error('holdSchedules was not called for this app');
  return started;
}

/** A tier service under test: its source cluster, a work directory, the service on a file:// repository. */
export interface BackupServiceBed {
  cluster: TestCluster;
  work: string;
  /** The file:// repository's directory. */
  repository: string;
  app: INestApplication;
  /** Another instance of the service on another repository and a catalog file of its own. */
  startAnother(repositoryUrl: string, catalogFile: string): Promise<INestApplication>;
  /** Closes the service, destroys the cluster, removes the work directory. */
  destroy(): Promise<void>;
}

/**
 * Starts a throwaway cluster, seeds the tier's database, and starts the service (its module,
 * finished by `configure` as main() does) on a file:// repository and a SQLite catalog.
 */
export async function startBackupServiceBed(options: {
  tier: TierName;
  database: string;
  seed: (url: string) => Promise<unknown>;
  module: ServiceModuleFactory;
  configure: (app: INestApplication) => void;
  /** The service's auth section (makeAuthFixture); default: authentication off. */
  auth?: AuthFixture['section'];
  /** service.grpc: a gRPC listener beside HTTP (port 0: any free one, see grpcAddressOf). */
  grpc?: GrpcListenerSection;
}): Promise<BackupServiceBed> {
  const work = await mkdtemp(join(tmpdir(), `rookery-${options.tier}-service-`));
  const repository = join(work, 'repository');
  let cluster: TestCluster | undefined;
  try {
    cluster = await startCluster({ name: `${options.tier}-service` });
    await options.seed(cluster.url);
    const source = cluster;
    const startAnother = (repositoryUrl: string, catalogFile: string) => {
      const catalogUrl = `sqlite://${join(work, catalogFile)}`;
      const config = backupServiceConfig(options.tier, {
        repository: repositoryUrl,
        pgUrl: source.urlFor(options.database),
        catalogUrl,
        auth: options.auth,
        grpc: options.grpc,
      });
      return startBackupService(options.module, config, options.configure);
    };
    const app = await startAnother(`file://${repository}`, 'catalog.sqlite');
    const destroy = async () => {
      try {
        await app.close();
      } finally {
        await source.destroy();
        await rm(work, { recursive: true, force: true });
      }
    };
    return { cluster, work, repository, app, startAnother, destroy };
  } catch (error) {
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
    throw error;
  }
}

/** POST /backups (with an optional body): expects 202 and the Location of the running record. */
export async function postBackup<Record extends ServiceBackupRecord>(app: INestApplication, body?: { type: string }): Promise<Record> {
  const started = await http(app)
    .post('/backups')
    .send(body ?? {})
    .expect(202);
  const record = started.body as Record;
  if (started.headers.location !== `/backups/${record.id}`)
    throw new Error(`unexpected Location '${started.headers.location}' for backup '${record.id}'`);
  return record;
}

/** GET /backups/:id until the run is no longer running; fails unless it completed. */
export async function completedBackup<Record extends ServiceBackupRecord>(app: INestApplication, id: string): Promise<Record> {
  const record = await pollUntil(
    async () =>
      (
        await http(app)
          .get(`/backups/${encodeURIComponent(id)}`)
          .expect(200)
      ).body as Record,
    (value) => value.status !== 'running',
    { what: `backup '${id}' to finish`, timeoutMs: 120_000, intervalMs: 200 },
  );
  if (record.status !== 'completed') throw new Error(`backup '${id}' ${record.status}: ${record.error}`);
  return record;
}

/**
 * Runs a registered cron job's handler now (what its schedule would do) and returns the finished
 * record of the backup it started, whatever its status: the caller asserts on it.
 */
export async function scheduledBackup<Record extends ServiceBackupRecord>(app: INestApplication, jobName: string): Promise<Record> {
  const list = async () => (await http(app).get('/backups').expect(200)).body.backups as Record[];
  const before = new Set((await list()).map((record) => record.id));
  const { SchedulerRegistry } = require('@nestjs/schedule') as typeof import('@nestjs/schedule');
  await app.get(SchedulerRegistry).getCronJob(jobName).fireOnTick();
  const [record] = await pollUntil(
    async () => (await list()).filter((candidate) => !before.has(candidate.id)),
    (started) => started.length > 0 && started[0].status !== 'running',
    { what: `a backup started by job '${jobName}' to finish`, timeoutMs: 120_000, intervalMs: 200 },
  );
  return record;
}

/** A repository URL in a fresh bucket of the shared S3-compatible test server. */
export async function s3TestRepository(name: string): Promise<string> {
  const s3 = await acquireS3('primary');
  const bucket = `${name}-${randomBytes(3).toString('hex')}`;
  await s3.createBucket(bucket);
  return s3StoreUrl(s3, bucket, 'rookery');
}

function http(app: INestApplication): Agent {
  const request = require('supertest') as typeof import('supertest');
  return request(app.getHttpServer());
}
