import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { EventLedger } from '@rookery/catalog';
import { ComplianceLedgerService, TierCompliance } from '@rookery/compliance';
import { DEFAULT_POLICIES } from '@rookery/core';
import { EventType, KafkaEventBus, createEvent } from '@rookery/events';
import { CONTENT_DATABASE, KafkaHandle, TestCluster, pollUntil, seedContent, startCluster, startKafka } from '@rookery/testing';

jest.setTimeout(600_000);

/**
 * Evidence with no holes (issue 12, item 4): backups taken by the CLI without Kafka never reached
 * the compliance ledger; `rookery catalog rebuild` records them from their manifests into the
 * ledger (in a real PostgreSQL catalog database) so they count, running it again changes nothing,
 * and the event a service publishes later over real Kafka for the same backup is not counted twice.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

describe('compliance ledger backfill from the repository', () => {
  let work: string;
  let cluster: TestCluster;
  let kafka: KafkaHandle;
  let config: string;
  let catalogUrl: string;
  let repo: string;

  function rookery(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const result = spawnSync(process.execPath, [bin, ...args, '--config', config], {
      cwd: root,
      env: { ...process.env, ROOKERY_CONFIG: '' },
      encoding: 'utf8',
      timeout: 180_000,
    });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  function contentCompliance(): TierCompliance {
    const report = rookery(['report', '--tier', 'content', '--format', 'json']);
    expect([report.status, report.stderr]).toEqual([0, '']);
    return (JSON.parse(report.stdout) as { tiers: TierCompliance[] }).tiers[0];
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-backfill-'));
    await chmod(work, 0o711);
    [cluster, kafka] = await Promise.all([startCluster({ name: 'backfill' }), startKafka()]);
    await seedContent(cluster.url, { sizeMb: 1, seed: 4 });
    await cluster.query('create database rookery_catalog');
    catalogUrl = cluster.urlFor('rookery_catalog');
    repo = `file://${join(work, 'repo')}`;
    config = join(work, 'rookery.yaml');
    // No events section: the CLI publishes on its in-process bus, which no compliance service hears.
    await writeFile(
      config,
      `repositories:\n  - ${repo}\ncatalog:\n  url: ${catalogUrl}\ntiers:\n  content:\n    pgUrl: ${cluster.urlFor(CONTENT_DATABASE)}\n`,
    );
  }, 300_000);

  afterAll(async () => {
    await kafka?.stop();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('records pre-Kafka backups once, however often it runs and whatever events arrive later', async () => {
    const ids: string[] = [];
    for (let run = 0; run < 2; run++) {
      const backup = rookery(['backup', '--tier', 'content', '--json']);
      expect([backup.status, backup.stderr]).toEqual([0, '']);
      ids.push((JSON.parse(backup.stdout) as { id: string }).id);
    }
    // The ledger knows nothing of them: the report says so instead of printing every tier as failing.
    const empty = rookery(['report']);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toContain('holds no events: nothing to report');

    const rebuild = rookery(['catalog', 'rebuild', '--tier', 'content', '--json']);
    expect([rebuild.status, rebuild.stderr]).toEqual([0, '']);
    expect((JSON.parse(rebuild.stdout) as { tiers: { ledger: unknown }[] }).tiers[0].ledger).toEqual({ recorded: 2, alreadyRecorded: 0 });
    const backfilled = contentCompliance();
    expect(backfilled).toMatchObject({
      lastGoodFull: { backupId: ids[1], validated: false },
      validation: { completed: 2, validated: 0 },
      missing: ['no validation recorded', 'no drill recorded'],
      status: 'attention',
    });
    expect(backfilled.series.backups.map((backup) => backup.backupId)).toEqual(ids);

    // Running it again changes nothing.
    const again = rookery(['catalog', 'rebuild', '--tier', 'content']);
    expect([again.status, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toMatch(
      /^ {2}content +2 backups indexed, 0 stale records removed; compliance ledger: 0 backups recorded, 2 already there$/m,
    );
    const ledger = await EventLedger.open(catalogUrl);
    try {
      expect(await ledger.count()).toBe(2);
      // The event for the first backup arrives late over Kafka (an outbox relayed once Kafka was configured).
      const [entry] = await ledger.list({ types: ['dev.rookery.backup.completed'] });
      const bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'backfill-test', partitions: 1 });
      const compliance = new ComplianceLedgerService(ledger, DEFAULT_POLICIES);
      const subscription = await compliance.subscribe(bus, 'backfill-test');
      try {
        await bus.publish([
          createEvent(entry.type as EventType, entry.subject, entry.data as never, {
            source: 'rookery/content-backup',
            time: new Date(entry.time),
          }),
        ]);
        await pollUntil(
          () => ledger.count(),
          (count) => count === 3,
          { what: 'the late event in the ledger', intervalMs: 200 },
        );
      } finally {
        await subscription.close();
        await bus.close();
      }
    } finally {
      await ledger.close();
    }
    const afterEvent = contentCompliance();
    expect(afterEvent.validation.completed).toBe(2);
    expect(afterEvent.series.backups.map((backup) => backup.backupId)).toEqual(ids);
  });
});
