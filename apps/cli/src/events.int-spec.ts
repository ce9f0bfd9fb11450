import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BackupCatalog } from '@rookery/catalog';
import { Secret } from '@rookery/core';
import { CloudEvent, KafkaEventBus, TOPICS, eventSigningKey } from '@rookery/events';
import { KafkaHandle, TestCluster, freeLoopbackPort, pollUntil, seedOlap, seedOltp, startCluster, startKafka } from '@rookery/testing';

/** The CLI's events through the real command, a real cluster and a real Kafka broker (outage included). */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

jest.setTimeout(240_000);

describe('rookery CLI events', () => {
  let cluster: TestCluster;
  let work: string;
  let kafka: KafkaHandle | undefined;
  let port: number;

  const rookery = (args: string[], pgUrl = cluster.url) => {
    const result = spawnSync(process.execPath, [bin, ...args, '--repo', `file://${join(work, 'repo')}`, '--pg-url', pgUrl], {
      cwd: root,
      env: {
        ...process.env,
        ROOKERY_KAFKA_BROKERS: `127.0.0.1:${port}`,
        ROOKERY_CATALOG_URL: `sqlite://${join(work, 'catalog.sqlite')}`,
        ROOKERY_CONFIG: '',
      },
      encoding: 'utf8',
      timeout: 180_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-cli-events-'));
    cluster = await startCluster({ name: 'cli-events' });
    await seedOltp(cluster.url, { sizeMb: 4 });
    port = await freeLoopbackPort();
  }, 120_000);

  afterAll(async () => {
    await kafka?.stop();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('with Kafka down a backup succeeds and its events wait in the outbox; the next run delivers them all', async () => {
    const first = rookery(['backup', '--tier', 'oltp', '--json']);
    expect(first.status).toBe(0);
    expect(first.stderr).toContain('rookery: warning: events wait in the catalog outbox');
    const firstId = (JSON.parse(first.stdout) as { id: string }).id;
    const catalog = await BackupCatalog.open(`sqlite://${join(work, 'catalog.sqlite')}`);
    try {
      expect((await catalog.outbox.stats()).pending).toBe(2);
    } finally {
      await catalog.close();
    }

    // The broker comes up on a port of its own: the one the first run was pointed at stayed
    // unbound while Kafka was down, and another suite running meanwhile may have taken it (seen in
    // CI: BindException). The outbox does not care which address the broker has now.
    kafka = await startKafka();
    port = Number(kafka.brokers[0].split(':')[1]);
    const second = rookery(['backup', '--tier', 'oltp', '--json']);
    expect(second.status).toBe(0);
    expect(second.stderr).toBe('');
    const secondId = (JSON.parse(second.stdout) as { id: string }).id;

    const bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'cli-events-test' });
    const received: CloudEvent[] = [];
    const subscription = await bus.subscribe(
      { group: 'cli-events-test', topics: [TOPICS.backup] },
      async (event) => void received.push(event),
    );
    try {
      await pollUntil(
        async () => received.length,
        (count) => count >= 4,
      );
      expect(received.map((event) => `${event.type}:${(event.data as { backupId: string }).backupId}`).sort()).toEqual(
        [firstId, secondId].flatMap((id) => [`dev.rookery.backup.completed:${id}`, `dev.rookery.backup.started:${id}`]).sort(),
      );
      expect(received.every((event) => event.source === 'rookery/cli')).toBe(true);
    } finally {
      await subscription.close();
      await bus.close();
    }
  });

  it('rookery drill publishes drill.completed, and drill.failed with the reason for a drill that fails', async () => {
    kafka ??= await startKafka();
    port = Number(kafka.brokers[0].split(':')[1]);
    const olap = cluster.urlFor((await seedOlap(cluster.url, { sizeMb: 2 })).database);
    const backup = rookery(['backup', '--tier', 'olap', '--json'], olap);
    expect({ status: backup.status, stderr: backup.stderr }).toEqual({ status: 0, stderr: '' });
    const backupId = (JSON.parse(backup.stdout) as { id: string }).id;
    const passed = rookery(['drill', '--tier', 'olap', '--json'], olap);
    expect({ status: passed.status, stderr: passed.stderr }).toEqual({ status: 0, stderr: '' });
    // No backup of the content tier: the drill cannot start, exits non-zero, and is recorded.
    const failed = rookery(['drill', '--tier', 'content']);
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain("backup 'latest' of tier 'content' not found");

    const bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'cli-drill-events-test' });
    const received: CloudEvent[] = [];
    const subscription = await bus.subscribe(
      { group: 'cli-drill-events-test', topics: [TOPICS.validation] },
      async (event) => void received.push(event),
    );
    try {
      await pollUntil(
        async () => received.length,
        (count) => count >= 2,
        { what: 'the drill events of both runs' },
      );
      expect(received.map((event) => `${event.type}:${event.subject}`).sort()).toEqual([
        'dev.rookery.drill.completed:olap',
        'dev.rookery.drill.failed:content',
      ]);
      const completed = received.find((event) => event.type === 'dev.rookery.drill.completed') as CloudEvent<'dev.rookery.drill.completed'>;
      expect(completed.data).toMatchObject({ backupId, tier: 'olap', ok: true, withinRto: true });
      const drillFailed = received.find((event) => event.type === 'dev.rookery.drill.failed') as CloudEvent<'dev.rookery.drill.failed'>;
      expect(drillFailed.data).toMatchObject({
        backupId: null,
        tier: 'content',
        checks: [],
        error: { code: 'BACKUP_NOT_FOUND', message: expect.stringContaining('not found'), retryable: false },
      });
      expect(received.every((event) => event.source === 'rookery/cli')).toBe(true);
    } finally {
      await subscription.close();
      await bus.close();
    }
  });

  it('relays over SASL_SSL with the configured credentials, each event signed with the CLI key (issue 16)', async () => {
    const secured = await startKafka({ secured: true });
    try {
      const security = secured.security as NonNullable<KafkaHandle['security']>;
      await writeFile(join(work, 'kafka-password'), security.password, { mode: 0o600 });
      const keyMaterial = randomBytes(32).toString('hex');
      await writeFile(join(work, 'cli-event.key'), keyMaterial, { mode: 0o600 });
      const config = join(work, 'secured.yaml');
      await writeFile(
        config,
        [
          'events:',
          `  brokers: ["${secured.brokers[0]}"]`,
          `  tls: { caFile: "${security.caFile}" }`,
          `  sasl: { mechanism: scram-sha-512, username: ${security.username}, passwordFile: kafka-password }`,
          '  signing: { keyId: cli, keyFile: cli-event.key }',
          '',
        ].join('\n'),
      );
      const run = spawnSync(
        process.execPath,
        [bin, '--config', config, 'backup', '--tier', 'oltp', '--json', '--repo', `file://${join(work, 'repo')}`, '--pg-url', cluster.url],
        {
          cwd: work,
          env: { ...process.env, ROOKERY_KAFKA_BROKERS: '', ROOKERY_CATALOG_URL: `sqlite://${join(work, 'secured-catalog.sqlite')}` },
          encoding: 'utf8',
          timeout: 180_000,
        },
      );
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
      const backupId = (JSON.parse(run.stdout) as { id: string }).id;

      // A consumer that accepts only events proven by the CLI's key: the events arrive, nothing is set aside.
      const cliKey = eventSigningKey({ keyId: 'cli', key: new Secret(Buffer.from(keyMaterial)) });
      const bus = await KafkaEventBus.connect({
        brokers: secured.brokers,
        clientId: 'cli-secured-test',
        tls: { ca: [await readFile(security.caFile, 'utf8')] },
        sasl: { mechanism: 'scram-sha-512', username: security.username, password: new Secret(security.password) },
        verification: { keys: [cliKey], allowUnsigned: false },
      });
      const received: CloudEvent[] = [];
      const invalid: string[] = [];
      const subscription = await bus.subscribe(
        { group: 'cli-secured-test', topics: [TOPICS.backup], onInvalid: (error) => invalid.push(error.message) },
        async (event) => void received.push(event),
      );
      try {
        await pollUntil(
          async () => received.length + invalid.length,
          (count) => count >= 2,
          { what: "the CLI backup's events over SASL_SSL" },
        );
        expect({
          invalid,
          received: received.map((event) => `${event.type}:${(event.data as { backupId: string }).backupId}`).sort(),
        }).toEqual({
          invalid: [],
          received: [`dev.rookery.backup.completed:${backupId}`, `dev.rookery.backup.started:${backupId}`],
        });
      } finally {
        await subscription.close();
        await bus.close();
      }
    } finally {
      await secured.stop();
    }
  });
});
