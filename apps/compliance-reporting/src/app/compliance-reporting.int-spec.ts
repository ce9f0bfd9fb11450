import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { chromium } from 'playwright-core';
import request from 'supertest';
import { COMPLIANCE_GROUP, TierCompliance } from '@rookery/compliance';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { DEFAULT_POLICIES, Secret, TIER_NAMES } from '@rookery/core';
import { ALL_TOPICS, CloudEvent, EventData, EventType, KafkaEventBus, createEvent, eventSigningKey } from '@rookery/events';
import { configureServiceApp } from '@rookery/service-kit';
import { KafkaHandle, pollUntil, startKafka, waitForConsumerGroupCaughtUp } from '@rookery/testing';
import { ComplianceReportingModule } from './compliance-reporting.module';

jest.setTimeout(600_000);

/** The tier services' event key (issue 16): the ledger accepts only events signed with it. */
const TIER_SERVICES_KEY = new Secret(Buffer.from(randomBytes(32).toString('hex')));

const ARTIFACTS = resolve(__dirname, '../../../../test-artifacts');
const now = Date.now();
const ago = (minutes: number) => new Date(now - minutes * 60_000).toISOString();

function make<K extends EventType>(type: K, tier: string, data: EventData<K>, minutesAgo: number): CloudEvent<K> {
  return createEvent(type, tier, data, { source: 'rookery/test', time: new Date(now - minutesAgo * 60_000) });
}

/**
 * A healthy tier's recent life: a full backup (half an hour ago, within every tier's RPO), its
 * validation, a drill within the RTO and, for physical tiers, archived WAL; the queue tier's
 * synchronous stream reports in sync separately (streamedInSync), as queue-wal does.
 */
function history(tier: (typeof TIER_NAMES)[number], drillMs: number): CloudEvent[] {
  const backupId = `20261126T020000Z-${tier}`;
  const method = tier === 'oltp' || tier === 'queue' ? 'physical' : 'logical';
  const events: CloudEvent[] = [
    make('dev.rookery.backup.started', tier, { backupId, tier, type: 'full', method, startedAt: ago(32), actor: 'test' }, 32),
    make(
      'dev.rookery.backup.completed',
      tier,
      {
        backupId,
        tier,
        type: 'full',
        method,
        startedAt: ago(32),
        finishedAt: ago(30),
        actor: 'test',
        durationMs: 120_000,
        bytes: 5_000_000,
        storedBytes: 1_000_000,
        timeline: method === 'physical' ? 1 : null,
        startLsn: method === 'physical' ? '0/2000028' : null,
        stopLsn: method === 'physical' ? '0/2000100' : null,
        walRange: null,
        parent: null,
        retentionUntil: '2027-06-01T00:00:00.000Z',
        storageClass: 'STANDARD',
        regions: ['local'],
        repository: 'file:///repo',
        manifestChecksum: 'c'.repeat(64),
        artifacts: [],
      },
      30,
    ),
    make('dev.rookery.validation.passed', tier, { backupId, tier, checks: [{ name: 'sha256', ok: true }], validatedAt: ago(20) }, 20),
    make(
      'dev.rookery.drill.completed',
      tier,
      {
        backupId,
        tier,
        ok: true,
        restoreMs: drillMs,
        rtoSeconds: DEFAULT_POLICIES[tier].rtoSeconds,
        withinRto: drillMs <= DEFAULT_POLICIES[tier].rtoSeconds * 1000,
        checks: [],
        finishedAt: ago(10),
      },
      10,
    ),
  ];
  if (method === 'physical') {
    events.push(
      make(
        'dev.rookery.wal.archived',
        tier,
        {
          tier,
          timeline: 1,
          lastLsn: '0/5000000',
          segments: [{ name: '000000010000000000000004', sha256: 'd'.repeat(64), bytes: 16_777_216, archivedAt: ago(1) }],
        },
        1,
      ),
    );
  }
  return events;
}

/** What queue-wal publishes while pg_receivewal is the synchronous standby (reports hold for two of its intervals). */
function streamedInSync(): CloudEvent {
  const at = new Date();
  return createEvent(
    'dev.rookery.wal.streamed',
    'queue',
    {
      tier: 'queue',
      applicationName: 'rookery_queue_wal',
      inSync: true,
      syncState: 'sync',
      flushLsn: '0/5000100',
      currentLsn: '0/5000100',
      lagBytes: 0,
      at: at.toISOString(),
      validForSeconds: 60,
    },
    { source: 'rookery/queue-wal', time: at },
  );
}

/** The seed's content schedule (4-hourly incrementals against a 1-hour RPO), acknowledged as the operators of the demo would. */
const CONTENT_ACKNOWLEDGEMENT = 'incrementals every 4 h accepted: the content objects are re-creatable from the mail store';

describe('compliance-reporting service (real Kafka)', () => {
  let kafka: KafkaHandle;
  let producer: KafkaEventBus;
  let work: string;
  let config: RookeryConfig;
  let app: INestApplication | null = null;

  async function startApp(): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({
      imports: [ComplianceReportingModule.forRoot({ config, logLevel: process.env.TEST_LOG_LEVEL ?? 'silent' })],
    }).compile();
    const started = moduleRef.createNestApplication({ bufferLogs: true });
    configureServiceApp(started, { title: 'compliance-reporting (test)', description: 'test' });
    await started.listen(0, '127.0.0.1');
    return started;
  }

  async function ledgerCount(): Promise<number> {
    return (
      await request((app as INestApplication).getHttpServer())
        .get('/health')
        .expect(200)
    ).body.events as number;
  }

  async function waitForLedger(count: number): Promise<void> {
    await pollUntil(ledgerCount, (events) => events >= count, { what: `${count} events in the ledger`, intervalMs: 200 });
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-compliance-'));
    kafka = await startKafka();
    config = buildConfig(
      {
        catalog: { url: `sqlite://${join(work, 'ledger.sqlite')}` },
        events: {
          brokers: kafka.brokers,
          clientId: 'compliance-test',
          partitions: 2,
          verifyKeys: { 'tier-services': { keyEnv: 'TIER_SERVICES_EVENT_KEY' } },
        },
        auth: { mode: 'none' },
        tiers: { content: { policy: { acknowledge: [{ rule: 'rpo-schedule', reason: CONTENT_ACKNOWLEDGEMENT }] } } },
      },
      'compliance int-spec',
      {},
      { TIER_SERVICES_EVENT_KEY: TIER_SERVICES_KEY.reveal().toString() },
    );
    producer = await KafkaEventBus.connect({
      brokers: kafka.brokers,
      clientId: 'tier-services',
      partitions: 2,
      signing: eventSigningKey({ keyId: 'tier-services', key: TIER_SERVICES_KEY }),
    });
  }, 180_000);

  afterAll(async () => {
    await app?.close();
    await producer?.close();
    await kafka?.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('consumes every topic into the ledger once and serves each tier’s compliance', async () => {
    app = await startApp();
    const events = [
      ...history('oltp', 240_000),
      ...history('content', 200_000),
      ...history('queue', 120_000),
      ...history('olap', 60_000),
      streamedInSync(),
    ];
    await producer.publish(events);
    // A redelivery (the producer retried, the outbox relayed twice) must not be counted twice.
    await producer.publish(events.slice(0, 3));
    await waitForLedger(events.length);
    // The redelivered copies handled too (the group's offsets reach the end) before counting.
    await waitForConsumerGroupCaughtUp(kafka.brokers, COMPLIANCE_GROUP, ALL_TOPICS);
    expect(await ledgerCount()).toBe(events.length);

    const { tiers } = (await request(app.getHttpServer()).get('/compliance').expect(200)).body as { tiers: TierCompliance[] };
    const byTier = Object.fromEntries(tiers.map((tier) => [tier.tier, tier]));
    expect(Object.keys(byTier).sort()).toEqual([...TIER_NAMES].sort());
    expect(byTier['oltp']).toMatchObject({
      lastGoodFull: { backupId: '20261126T020000Z-oltp', validated: true },
      recoveryPoint: { source: 'wal' },
      rpoMet: true,
      lastDrill: { restoreSeconds: 240, withinRto: true },
      validation: { completed: 1, validated: 1, coverage: 1, openFailures: [] },
    });
    // The queue tier streams synchronously: no exposure while the stream reports in sync.
    expect(byTier['queue']).toMatchObject({
      rpoExposureSeconds: 0,
      rpoMet: true,
      recoveryPoint: { source: 'stream' },
      stream: { inSync: true, current: true },
    });
    // The seed's content policy: a 4-hour incremental against a 1-hour RPO is a finding, shown with its rule and the acknowledgement.
    expect(byTier['content'].lint).toEqual([
      expect.objectContaining({ rule: 'rpo-schedule', severity: 'error', acknowledged: CONTENT_ACKNOWLEDGEMENT }),
    ]);
    expect(byTier['olap'].rpoMet).toBe(true);
    for (const tier of tiers) expect([tier.tier, tier.status, tier.missing]).toEqual([tier.tier, 'ok', []]);

    const one = (await request(app.getHttpServer()).get('/compliance/olap').expect(200)).body as TierCompliance;
    expect(one.tier).toBe('olap');
    await request(app.getHttpServer()).get('/compliance/nope').expect(400);
    await request(app.getHttpServer()).get('/compliance?since=yesterday').expect(400);

    const markdown = await request(app.getHttpServer())
      .get('/report.md')
      .expect(200)
      .expect('content-type', /text\/markdown/);
    expect(markdown.text).toMatch(/^\| queue \| OK \|/m);
    expect(markdown.text).toContain(
      `- Policy lint: error rpo-schedule: the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h (acknowledged: ${CONTENT_ACKNOWLEDGEMENT}).`,
    );
    const csv = await request(app.getHttpServer())
      .get('/report.csv')
      .expect(200)
      .expect('content-type', /text\/csv/);
    expect(csv.text.split('\r\n').filter(Boolean)).toHaveLength(5);

    // /metrics without a repository configured: the ledger's figures (the queue drill: 120 s of a 300 s RTO).
    const metrics = (await request(app.getHttpServer()).get('/metrics').expect(200)).text;
    expect(metrics).toContain('rookery_drill_last_duration_seconds{tier="queue"} 120');
    expect(metrics).toContain('rookery_drill_last_within_rto{tier="queue"} 1');
    expect(metrics).toContain('rookery_rto_objective_seconds{tier="queue"} 300');
  });

  it('renders the dashboard in Chromium: the four tiers of the healthy setup are ok, with data for every tier', async () => {
    // The stream's report holds for a minute: renew it as queue-wal would, so the screenshot shows the present.
    const before = await ledgerCount();
    await producer.publish([streamedInSync()]);
    await waitForLedger(before + 1);
    const url = `${await (app as INestApplication).getUrl()}/dashboard`.replace('[::1]', '127.0.0.1');
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
      await page.goto(url);
      expect(await page.locator('section.tier').count()).toBe(4);
      for (const tier of TIER_NAMES) {
        const section = page.locator(`section[data-tier="${tier}"]`);
        expect([tier, await section.locator('[data-testid="status"]').innerText()]).toEqual([tier, 'ok']);
        // Every chart of every tier has data drawn (bars or the exposure path), not "no data yet".
        for (const chart of ['backups', 'exposure', 'drills']) {
          expect(await section.locator(`svg[data-chart="${chart}"] [data-point]`).count()).toBeGreaterThan(0);
        }
      }
      expect(await page.locator('section[data-tier="queue"] [data-testid="rpo"]').innerText()).toBe('0 s of 0 s');
      expect(await page.locator('section[data-tier="content"] li[data-rule="rpo-schedule"]').innerText()).toContain(
        `(acknowledged: ${CONTENT_ACKNOWLEDGEMENT})`,
      );
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'compliance-dashboard.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });

  it('a consumer stopped mid-stream and restarted loses nothing and counts nothing twice', async () => {
    const before = await ledgerCount();
    await (app as INestApplication).close();
    app = null;
    // Events published while the service is down wait in Kafka for its consumer group.
    const later = [
      make(
        'dev.rookery.backup.started',
        'oltp',
        { backupId: 'later-1', tier: 'oltp', type: 'full', method: 'physical', startedAt: ago(0), actor: 'test' },
        0,
      ),
    ];
    later.push(
      make(
        'dev.rookery.backup.started',
        'queue',
        { backupId: 'later-2', tier: 'queue', type: 'full', method: 'physical', startedAt: ago(0), actor: 'test' },
        0,
      ),
    );
    await producer.publish(later);
    app = await startApp();
    await waitForLedger(before + later.length);
    await waitForConsumerGroupCaughtUp(kafka.brokers, COMPLIANCE_GROUP, ALL_TOPICS);
    expect(await ledgerCount()).toBe(before + later.length);
  });

  it('records a failed drill and a validation that could not finish, and shows them as failures', async () => {
    const before = await ledgerCount();
    const failedAt = new Date();
    await producer.publish([
      createEvent(
        'dev.rookery.drill.failed',
        'olap',
        {
          backupId: '20261126T020000Z-olap',
          tier: 'olap',
          startedAt: new Date(failedAt.getTime() - 63_000).toISOString(),
          failedAt: failedAt.toISOString(),
          durationMs: 63_000,
          rtoSeconds: DEFAULT_POLICIES.olap.rtoSeconds,
          checks: [],
          error: { code: 'TOOL_FAILED', message: "pg_restore failed with exit code 1: relation 'events' already exists", retryable: false },
        },
        { source: 'rookery/validator', time: failedAt },
      ),
      createEvent(
        'dev.rookery.validation.failed',
        'oltp',
        {
          backupId: '20261126T020000Z-oltp',
          tier: 'oltp',
          checks: [],
          validatedAt: failedAt.toISOString(),
          error: { code: 'TOOL_FAILED', message: 'tar failed with exit code 2 while extracting base.tar', retryable: false },
        },
        { source: 'rookery/validator', time: failedAt },
      ),
    ]);
    await waitForLedger(before + 2);
    const olap = (
      await request((app as INestApplication).getHttpServer())
        .get('/compliance/olap')
        .expect(200)
    ).body as TierCompliance;
    expect(olap.lastDrill).toMatchObject({
      ok: false,
      withinRto: false,
      restoreSeconds: 63,
      error: "pg_restore failed with exit code 1: relation 'events' already exists",
    });
    expect(olap.status).toBe('failing');
    const oltp = (
      await request((app as INestApplication).getHttpServer())
        .get('/compliance/oltp')
        .expect(200)
    ).body as TierCompliance;
    expect(oltp.lastValidation).toMatchObject({ ok: false, error: 'tar failed with exit code 2 while extracting base.tar' });
    expect(oltp.validation.openFailures).toEqual(['20261126T020000Z-oltp']);
    const dashboard = await request((app as INestApplication).getHttpServer())
      .get('/dashboard')
      .expect(200);
    expect(dashboard.text).toMatch(
      /<section class="tier" data-tier="olap">[\s\S]*?data-testid="drill">failed after 63 s: pg_restore failed with exit code 1: relation &#39;events&#39; already exists</,
    );
  });
});
