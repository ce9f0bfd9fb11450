import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { BackupCatalog } from '@rookery/catalog';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { BackupManifest, Secret, TierName, ToolFailedError } from '@rookery/core';
import { PostgresTools, RookeryEngine, createEngine } from '@rookery/engine';
import { CloudEvent, EventData, KafkaEventBus, Subscription, TOPICS, backupCompletedEvent, eventSigningKey } from '@rookery/events';
import { lookupOsUser } from '@rookery/postgres';
import { ROOKERY_CONFIG, configureServiceApp } from '@rookery/service-kit';
import {
  KafkaHandle,
  TestCluster,
  acquireS3,
  pollUntil,
  seedOlap,
  seedOltp,
  startCluster,
  startKafka,
  waitForConsumerGroupCaughtUp,
} from '@rookery/testing';
import { VALIDATOR_ENGINE, ValidatorModule } from './validator.module';
import { VALIDATOR_GROUP } from './validator.service';

jest.setTimeout(300_000);

/**
 * The validator end to end on a real Kafka broker, real clusters and real backups: backup.completed
 * in → validation.passed/failed out with every check, a fault of the restore's own extraction
 * failing validation; drills on a physical and a logical tier over REST, with drill.completed on
 * Kafka, and failed drills answered with their reason, listed and published as drill.failed; a
 * consumer closed mid-stream and restarted validates every backup exactly once; and `rookery
 * drill` from the CLI against an S3 repository, with an RTO set impossibly low.
 */
const root = resolve(__dirname, '..', '..', '..', '..');

/**
 * The fault a case injects into the validator engine's tar extraction, which only `rookery
 * restore` (and the validator, through the engine) uses: the artifacts and their checksums stay
 * intact. Null: extraction as built.
 */
let extractionFault: (() => Error) | null = null;

function withExtractionFault(tools: PostgresTools): PostgresTools {
  return {
    ...tools,
    extractTar: (directory, rename, options) => {
      const extraction = tools.extractTar(directory, rename, options);
      const failure = extractionFault;
      if (!failure) return extraction;
      const done = extraction.done.then(() => Promise.reject(failure()));
      done.catch(() => undefined);
      return { ...extraction, done };
    },
  };
}
const bin = join(root, 'bin', 'rookery.js');

/** The tier services' event key (issue 16): the validator acts only on backup.completed signed with it. */
const TIER_SERVICES_KEY = new Secret(Buffer.from(randomBytes(32).toString('hex')));

type ValidationData = EventData<'dev.rookery.validation.failed'>;
type DrillFailedData = EventData<'dev.rookery.drill.failed'>;

describe('validator service (real Kafka, real clusters)', () => {
  let kafka: KafkaHandle;
  let producer: KafkaEventBus;
  let watcher: Subscription;
  const seen: CloudEvent[] = [];
  let work: string;
  let repoUrl: string;
  let oltp: TestCluster;
  let olap: TestCluster;
  let olapUrl: string;
  let config: RookeryConfig;
  let engine: RookeryEngine;
  let app: INestApplication | null = null;

  async function startApp(): Promise<INestApplication> {
    const selfCommand = [process.execPath, bin, '--repo', repoUrl];
    const moduleRef = await Test.createTestingModule({
      imports: [ValidatorModule.forRoot({ config, logLevel: process.env['TEST_LOG_LEVEL'] ?? 'silent', selfCommand })],
    })
      // The validator's engine as the module builds it, with a tar extraction a case can make fail.
      .overrideProvider(VALIDATOR_ENGINE)
      .useFactory({
        factory: (resolved: RookeryConfig) =>
          createEngine(resolved, { actor: 'validator service', selfCommand, postgres: withExtractionFault }),
        inject: [ROOKERY_CONFIG],
      })
      .compile();
    const started = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(started, { title: 'validator (test)', description: 'test' });
    await started.listen(0, '127.0.0.1');
    return started;
  }

  function validationsOf(backupId: string): CloudEvent[] {
    return seen.filter(
      (event) => event.type.startsWith('dev.rookery.validation.') && (event.data as { backupId: string }).backupId === backupId,
    );
  }

  async function awaitValidation(backupId: string): Promise<CloudEvent> {
    await pollUntil(
      async () => validationsOf(backupId).length,
      (count) => count > 0,
      { what: `validation of ${backupId}`, timeoutMs: 180_000, intervalMs: 200 },
    );
    return validationsOf(backupId)[0];
  }

  /** A new backup of the tier whose first artifact has one byte flipped in the store. */
  async function damagedBackup(tier: TierName): Promise<BackupManifest> {
    const manifest = await engine.backup({ tier });
    const path = join(new URL(repoUrl).pathname, engine.artifactKey(manifest, manifest.artifacts[0].name));
    const bytes = await readFile(path);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(path, bytes);
    return manifest;
  }

  function completed(manifest: BackupManifest): CloudEvent {
    return backupCompletedEvent(manifest, { actor: 'test', repository: repoUrl, source: 'rookery/test' });
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-validator-'));
    await chmod(work, 0o711);
    // archive_command runs as the server's account: it writes the repository's oltp/wal folder.
    const postgres = lookupOsUser('postgres');
    const repoDir = join(work, 'repo');
    await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')]) await chown(dir, postgres.uid, postgres.gid);
    repoUrl = `file://${repoDir}`;

    kafka = await startKafka();
    producer = await KafkaEventBus.connect({
      brokers: kafka.brokers,
      clientId: 'tier-services',
      partitions: 2,
      signing: eventSigningKey({ keyId: 'tier-services', key: TIER_SERVICES_KEY }),
    });
    watcher = await producer.subscribe({ group: 'test-watcher', topics: [TOPICS.validation] }, async (event) => void seen.push(event));

    oltp = await startCluster({
      name: 'validator-oltp',
      settings: { archive_mode: 'on', archive_command: `${process.execPath} ${bin} wal-push %p --tier oltp --repo ${repoUrl}` },
    });
    await seedOltp(oltp.url, { sizeMb: 4 });
    olap = await startCluster({ name: 'validator-olap' });
    const seeded = await seedOlap(olap.url, { sizeMb: 4 });
    olapUrl = olap.urlFor(seeded.database);
    config = buildConfig(
      {
        repositories: [repoUrl],
        catalog: { url: `sqlite://${join(work, 'validator.sqlite')}` },
        events: {
          brokers: kafka.brokers,
          clientId: 'validator-test',
          partitions: 2,
          signing: { keyId: 'validator', keyEnv: 'VALIDATOR_EVENT_KEY' },
          verifyKeys: { 'tier-services': { keyEnv: 'TIER_SERVICES_EVENT_KEY' } },
        },
        tiers: { oltp: { pgUrl: oltp.url }, olap: { pgUrl: olapUrl } },
        auth: { mode: 'none' },
      },
      'validator int-spec',
      {},
      { TIER_SERVICES_EVENT_KEY: TIER_SERVICES_KEY.reveal().toString(), VALIDATOR_EVENT_KEY: randomBytes(32).toString('hex') },
    );
    engine = await createEngine(config, { actor: 'test' });
    app = await startApp();
  }, 600_000);

  afterAll(async () => {
    await app?.close();
    await watcher?.close();
    await producer?.close();
    await engine?.close();
    await kafka?.stop();
    await oltp?.destroy();
    await olap?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('validates a physical backup: every check passes, the result arrives on Kafka', async () => {
    const manifest = await engine.backup({ tier: 'oltp' });
    // A segment past the backup's end, so the archive continues beyond it.
    await oltp.query('select pg_switch_wal()');
    await producer.publish(completed(manifest));
    const event = await awaitValidation(manifest.id);
    const data = event.data as { checks: { name: string; ok: boolean; detail?: string }[] };
    expect({ type: event.type, failed: data.checks.filter((check) => !check.ok) }).toEqual({
      type: 'dev.rookery.validation.passed',
      failed: [],
    });
    // The default physical backup is server-compressed: its tar, its page index (the OLTP tier
    // takes block incrementals) and PostgreSQL's backup_manifest beside it.
    expect(manifest.artifacts.map((artifact) => artifact.name)).toEqual(['base.tar.zst', 'base.pgidx', 'backup_manifest.zst']);
    expect(data.checks.map((check) => check.name)).toEqual([
      'manifest',
      'sha256 base.tar.zst',
      'sha256 base.pgidx',
      'sha256 backup_manifest',
      'restore extraction',
      'pg_verifybackup',
      'wal continuity',
    ]);
    expect(event.subject).toBe('oltp');
    const listed = await request((app as INestApplication).getHttpServer())
      .get('/validations?tier=oltp')
      .expect(200);
    expect(listed.body.validations).toEqual([expect.objectContaining({ backupId: manifest.id, ok: true, eventId: event.id })]);
  });

  it.each<[string, () => Error, (data: ValidationData) => void]>([
    [
      "tar fails in the restore's extraction: the failed check says why, pg_verifybackup is not run",
      () => new ToolFailedError('tar', 2, 'tar: Skipping to next header\ntar: Exiting with failure status due to previous errors'),
      (data) => {
        expect(data.checks.filter((check) => check.name.startsWith('sha256 ')).every((check) => check.ok)).toBe(true);
        expect(data.checks.find((check) => check.name === 'restore extraction')).toMatchObject({
          ok: false,
          detail: expect.stringContaining('Exiting with failure status'),
        });
        expect(data.checks.find((check) => check.name === 'pg_verifybackup')).toMatchObject({
          ok: false,
          detail: 'not run: the restore did not extract the backup',
        });
        expect(data.error).toBeUndefined();
      },
    ],
    [
      'the restore crashes: the validation could not run to the end and says why',
      () => new TypeError('extraction crashed on purpose'),
      (data) =>
        expect(data).toMatchObject({
          checks: [],
          error: { code: 'UNEXPECTED', message: 'extraction crashed on purpose', retryable: false },
        }),
    ],
  ])(
    "a physical backup whose bytes are intact fails validation when the restore's own extraction fails (%s)",
    async (_case, failure, expectFailure) => {
      // The fault is injected into the engine's tar extraction, which only `rookery restore` (and
      // now the validator, through the engine) uses: the artifacts and their checksums stay intact.
      extractionFault = failure;
      try {
        const manifest = await engine.backup({ tier: 'oltp' });
        await oltp.query('select pg_switch_wal()');
        await producer.publish(completed(manifest));
        const event = await awaitValidation(manifest.id);
        expect(event.type).toBe('dev.rookery.validation.failed');
        expectFailure(event.data as ValidationData);
        const listed = await request((app as INestApplication).getHttpServer())
          .get(`/validations?backupId=${manifest.id}`)
          .expect(200);
        expect(listed.body.validations).toEqual([expect.objectContaining({ backupId: manifest.id, ok: false, eventId: event.id })]);
      } finally {
        extractionFault = null;
      }
    },
  );

  it('validates a logical backup with pg_restore --list, and names a damaged artifact', async () => {
    const good = await engine.backup({ tier: 'olap' });
    await producer.publish(completed(good));
    const passed = await awaitValidation(good.id);
    expect(passed.type).toBe('dev.rookery.validation.passed');
    expect((passed.data as { checks: { name: string }[] }).checks.map((check) => check.name)).toContain(
      `pg_restore --list ${good.artifacts[0].name}`,
    );

    const damaged = await damagedBackup('olap');
    const artifact = damaged.artifacts[0];
    await producer.publish(completed(damaged));
    const failed = await awaitValidation(damaged.id);
    expect(failed.type).toBe('dev.rookery.validation.failed');
    const checks = (failed.data as { checks: { name: string; ok: boolean; detail?: string }[] }).checks;
    expect(checks.find((check) => check.name === `sha256 ${artifact.name}`)).toMatchObject({
      ok: false,
      detail: expect.stringContaining(artifact.name),
    });
    expect(checks.find((check) => check.name === `pg_restore --list ${artifact.name}`)).toMatchObject({
      ok: false,
      detail: expect.stringContaining('not run'),
    });
    // The damaged backup must not be the one the drills restore.
    await engine.backup({ tier: 'olap' });
  });

  it.each<[TierName, string]>([
    ['oltp', 'archived-wal'],
    ['olap', 'dump'],
  ])('drills %s over REST: restores, checks the data, reports the duration, publishes drill.completed', async (tier, recovery) => {
    const response = await request((app as INestApplication).getHttpServer())
      .post('/drills')
      .send({ tier })
      .expect(200);
    expect(response.body).toMatchObject({ tier, ok: true, recovery, withinRto: true });
    expect(response.body.restoreMs).toBeGreaterThan(0);
    expect(response.body.checks.map((check: { name: string }) => check.name)).toEqual([
      'restore',
      'not in recovery',
      'tables readable',
      'data present',
    ]);
    await pollUntil(
      async () => seen.filter((event) => event.type === 'dev.rookery.drill.completed' && event.subject === tier).length,
      (count) => count === 1,
      { what: `drill.completed of ${tier}` },
    );
    const listed = await request((app as INestApplication).getHttpServer())
      .get(`/drills?tier=${tier}`)
      .expect(200);
    expect(listed.body.drills).toEqual([expect.objectContaining({ tier, ok: true, backupId: response.body.backupId })]);
    // Nothing of the drill is left behind: no scratch directory, no server.
    expect(
      spawnSync('sh', [
        '-c',
        `ls -d ${tmpdir()}/rookery-drill-${tier}-* ${tmpdir()}/rookery-pg-drill-${tier}-* 2>/dev/null`,
      ]).stdout.toString(),
    ).toBe('');
  });

  it('a failed drill is evidence: answered with its reason, listed by GET /drills, published as drill.failed', async () => {
    const server = (app as INestApplication).getHttpServer();
    // A backup whose dump is damaged after it was taken: the drill's restore fails on it.
    const damaged = await damagedBackup('olap');
    const artifact = damaged.artifacts[0];

    const failed = await request(server).post('/drills').send({ tier: 'olap' }).expect(422);
    expect(failed.body).toMatchObject({
      code: 'DRILL_FAILED',
      message: expect.stringContaining(`restore drill of backup '${damaged.id}'`),
      drill: { backupId: damaged.id, ok: false },
    });
    expect(failed.body.drill.checks.find((check: { name: string }) => check.name === 'restore')).toMatchObject({
      ok: false,
      detail: expect.stringContaining(artifact.name),
    });
    // A tier with no backup at all: the drill cannot start, and that is recorded too.
    const none = await request(server).post('/drills').send({ tier: 'queue' }).expect(404);
    expect(none.body).toMatchObject({ code: 'BACKUP_NOT_FOUND', drill: { backupId: null, tier: 'queue', ok: false } });

    const drillFailures = () => seen.filter((event) => event.type === 'dev.rookery.drill.failed');
    await pollUntil(
      async () => drillFailures().length,
      (count) => count >= 2,
      { what: 'drill.failed of olap and queue' },
    );
    const bySubject = new Map(drillFailures().map((event) => [event.subject, event.data as DrillFailedData]));
    expect(bySubject.get('olap')).toMatchObject({ backupId: damaged.id, error: { code: 'DRILL_FAILED', message: failed.body.message } });
    expect(bySubject.get('queue')).toMatchObject({
      backupId: null,
      checks: [],
      error: { code: 'BACKUP_NOT_FOUND', message: none.body.message },
    });

    const olapDrills = (await request(server).get('/drills?tier=olap').expect(200)).body.drills;
    expect(olapDrills[0]).toMatchObject({ ok: false, backupId: damaged.id, error: { code: 'DRILL_FAILED', message: failed.body.message } });
    // The passed drill of the spec above is still there, after the failed one (newest first).
    expect(olapDrills.slice(1)).toEqual([expect.objectContaining({ ok: true })]);
    const queueDrills = (await request(server).get('/drills?tier=queue').expect(200)).body.drills;
    expect(queueDrills).toEqual([
      expect.objectContaining({ ok: false, backupId: null, error: expect.objectContaining({ code: 'BACKUP_NOT_FOUND' }) }),
    ]);
  });

  it('a validator closed mid-stream and restarted validates every backup exactly once', async () => {
    // Physical backups: each validation extracts and verifies a base backup, so the stream is still
    // being worked through when the service closes.
    const backups = [await engine.backup({ tier: 'oltp' }), await engine.backup({ tier: 'oltp' }), await engine.backup({ tier: 'oltp' })];
    const events = backups.map(completed);
    await producer.publish(events);
    await awaitValidation(backups[0].id);
    // Closed while the rest wait (or one is in hand): the consumer finishes and commits what it holds.
    await (app as INestApplication).close();
    app = null;
    const validatedBeforeRestart = backups.filter((backup) => validationsOf(backup.id).length > 0).length;
    expect(validatedBeforeRestart).toBeLessThan(backups.length);
    // A redelivery of an event already validated (an outbox relayed twice) arrives while it is down.
    await producer.publish(events[0]);
    app = await startApp();
    for (const backup of backups) await awaitValidation(backup.id);
    // Everything the redelivery could cause has arrived before counting: the validator handled every
    // backup event, its outbox relayed what that produced, and the watcher consumed it.
    await waitForConsumerGroupCaughtUp(kafka.brokers, VALIDATOR_GROUP, [TOPICS.backup]);
    const outbox = (app as INestApplication).get(BackupCatalog).outbox;
    await pollUntil(
      () => outbox.stats(),
      (stats) => stats.pending === 0,
      { what: "the validator's outbox relayed" },
    );
    await waitForConsumerGroupCaughtUp(kafka.brokers, 'test-watcher', [TOPICS.validation]);
    for (const backup of backups) {
      // Delivery on Kafka is at least once (a validator stopped between publishing an outbox entry
      // and marking it relayed publishes it again at restart): what must hold is one validation
      // per backup, i.e. one event id; repeated deliveries of that id are consumers' to dedupe.
      const validations = [...new Map(validationsOf(backup.id).map((event) => [event.id, event])).values()];
      expect({ backup: backup.id, ids: validations.length, types: validations.map((event) => event.type) }).toEqual({
        backup: backup.id,
        ids: 1,
        types: ['dev.rookery.validation.passed'],
      });
    }
  });

  it('rookery drill on an S3 repository reports an RTO set impossibly low as missed', async () => {
    const s3 = await acquireS3('primary');
    await s3.createBucket('validator-drill');
    const s3Url = `s3://validator-drill/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
    const s3Config = buildConfig({ repositories: [s3Url], tiers: { olap: { pgUrl: olapUrl } } }, 's3 test');
    const s3Engine = await createEngine(s3Config, { actor: 'test' });
    const manifest = await s3Engine.backup({ tier: 'olap' }).finally(() => s3Engine.close());
    const file = join(work, 'rookery.yaml');
    // A millisecond: no restore of anything meets it (one second no longer fails: the olap drill can finish within it).
    await writeFile(file, `repositories: ['${s3Url}']\ntiers:\n  olap:\n    policy:\n      rtoSeconds: 0.001\n`);
    const drill = spawnSync(process.execPath, [bin, '--config', file, 'drill', '--tier', 'olap', '--json'], {
      encoding: 'utf8',
      env: process.env,
      timeout: 240_000,
    });
    expect({ status: drill.status, stderr: drill.stderr }).toEqual({ status: 0, stderr: '' });
    const report = JSON.parse(drill.stdout);
    expect(report).toMatchObject({ backupId: manifest.id, tier: 'olap', ok: true, rtoSeconds: 0.001, withinRto: false });
    const text = spawnSync(process.execPath, [bin, '--config', file, 'drill', '--tier', 'olap'], {
      encoding: 'utf8',
      env: process.env,
      timeout: 240_000,
    });
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/RTO MISSED: restore .* against 0.001 s/);
  });
});
