import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { Store, TierName } from '@rookery/core';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { createStore } from '@rookery/storage';
import {
  CONTENT_DATABASE,
  OLAP_DATABASE,
  TableChecksums,
  TestCluster,
  acquireS3,
  diffTableChecksums,
  freeLoopbackPort,
  s3StoreUrl,
  seedContent,
  seedOlap,
  seedOltp,
  startCluster,
  switchAndWaitArchived,
  tableChecksums,
} from '@rookery/testing';
import { DrReport, databaseUrl } from '@rookery/validation';

/**
 * `rookery dr --mode complete` through the real command after a regional disaster: all four tiers
 * are backed up into the primary store (oltp and queue physical, their WAL archived by the real
 * `rookery wal-push` from archive_command; content and olap logical), replicated to the secondary
 * store (a second S3-compatible server), then every object of the primary is deleted and the
 * command, configured with the secondary store alone and no catalog or service, restores every
 * tier: physical tiers replay the region's WAL and are promoted, logical tiers go into a target
 * cluster; the data must be what the sources held.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const PHYSICAL: readonly { tier: TierName; database: string }[] = [
  { tier: 'oltp', database: 'penguinmails_oltp' },
  { tier: 'queue', database: 'penguinmails_queue' },
];

function rookery(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, env: process.env, encoding: 'utf8', timeout: 240_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rookery dr', () => {
  let work: string;
  let primaryUrl: string;
  let secondaryUrl: string;
  let logicalSource: TestCluster;
  let target: TestCluster;
  const physicalSources = new Map<TierName, TestCluster>();
  const expected = new Map<TierName, TableChecksums>();
  const backups = new Map<TierName, string>();
  const engines: RookeryEngine[] = [];
  const stores: Store[] = [];
  let drConfig: string;
  let restoredDirs: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-dr-'));
    await chmod(work, 0o711);
    primaryUrl = await bucket('primary', 'dr-primary');
    secondaryUrl = await bucket('secondary', 'dr-secondary');

    const [oltp, queue, logical, restoreTarget] = await Promise.all([
      physicalSource('oltp'),
      physicalSource('queue'),
      startCluster({ name: 'dr-logical-source' }),
      startCluster({ name: 'dr-target' }),
    ]);
    physicalSources.set('oltp', oltp).set('queue', queue);
    logicalSource = logical;
    target = restoreTarget;
    await Promise.all([
      seedOltp(oltp.url, { sizeMb: 3, database: PHYSICAL[0].database }),
      seedOltp(queue.url, { sizeMb: 2, database: PHYSICAL[1].database }),
      seedContent(logical.url, { sizeMb: 3, seed: 7 }),
      seedOlap(logical.url, { sizeMb: 2, seed: 7 }),
    ]);

    const engine = await engineFor([primaryUrl, secondaryUrl]);
    for (const tier of ['oltp', 'queue', 'content', 'olap'] as const) backups.set(tier, (await engine.backup({ tier })).id);
    // Rows written after the physical backups: only WAL replay from the region brings them back.
    for (const { tier, database } of PHYSICAL) {
      const source = physicalSources.get(tier) as TestCluster;
      await source.query('create table after_backup as select g as id, md5(g::text) as note from generate_series(1, 5000) g', [], database);
      await switchAndWaitArchived(source);
      expected.set(tier, await tableChecksums(source.urlFor(database)));
    }
    expected.set('content', await tableChecksums(logical.urlFor(CONTENT_DATABASE)));
    expected.set('olap', await tableChecksums(logical.urlFor(OLAP_DATABASE)));

    for (const tier of ['oltp', 'queue', 'content', 'olap'] as const) {
      const run = await engine.replicate(tier);
      expect(run.regions.flatMap((region) => region.backups.map((backup) => backup.outcome))).toEqual(['copied']);
    }
    // The disaster: the primary region's store loses everything.
    const primary = open(primaryUrl);
    for await (const object of primary.list('')) await primary.remove(object.key);
    expect(await firstKey(primary)).toBeUndefined();

    // What an operator has after the disaster: a config naming the secondary store only.
    drConfig = join(work, 'dr.yaml');
    await writeFile(drConfig, `repositories:\n  - "${secondaryUrl}"\n`);
  }, 300_000);

  afterAll(async () => {
    const stopper = await engineFor([secondaryUrl]).catch(() => null);
    for (const dir of restoredDirs) await stopper?.stopRestored(dir).catch(() => undefined);
    for (const engine of engines) await engine.close();
    for (const store of stores) await store.close();
    await Promise.all([...physicalSources.values(), logicalSource, target].map((cluster) => cluster?.destroy()));
    await rm(work, { recursive: true, force: true });
  });

  async function bucket(region: 'primary' | 'secondary', name: string): Promise<string> {
    const server = await acquireS3(region);
    const bucketName = `${name}-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucketName);
    return s3StoreUrl(server, bucketName, 'rookery');
  }

  /** A cluster whose archive_command is the real `rookery wal-push` into the primary store. */
  async function physicalSource(tier: TierName): Promise<TestCluster> {
    const script = join(work, `wal-push-${tier}.sh`);
    // The server hands archive_command no AWS_* variables: the script carries the test credentials.
    await writeFile(
      script,
      [
        '#!/bin/sh',
        `export AWS_ACCESS_KEY_ID='${process.env['AWS_ACCESS_KEY_ID']}' AWS_SECRET_ACCESS_KEY='${process.env['AWS_SECRET_ACCESS_KEY']}'`,
        `exec '${process.execPath}' '${bin}' wal-push "$1" --tier ${tier} --repo '${primaryUrl}'`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    return startCluster({ name: `dr-${tier}`, settings: { archive_mode: 'on', archive_command: `${script} %p` } });
  }

  async function engineFor(repositories: string[]): Promise<RookeryEngine> {
    const tiers = {
      oltp: { pgUrl: physicalSources.get('oltp')?.url },
      queue: { pgUrl: physicalSources.get('queue')?.url },
      content: { pgUrl: logicalSource?.urlFor(CONTENT_DATABASE) },
      olap: { pgUrl: logicalSource?.urlFor(OLAP_DATABASE) },
    };
    const config = buildConfig({ repositories, tiers: JSON.parse(JSON.stringify(tiers)) }, 'test');
    const engine = await createEngine(config, { actor: 'test' });
    engines.push(engine);
    return engine;
  }

  function open(url: string): Store {
    const store = createStore(url);
    stores.push(store);
    return store;
  }

  it('fails clearly, before writing anything, when the region is unreachable', async () => {
    const port = await freeLoopbackPort();
    const unreachable = `s3://gone/rookery?region=us-west-2&endpoint=${encodeURIComponent(`http://127.0.0.1:${port}`)}&forcePathStyle=true`;
    const workdir = join(work, 'unreachable');
    const result = rookery([
      'dr',
      '--mode',
      'complete',
      '--region',
      'secondary',
      '--repo',
      unreachable,
      '--workdir',
      workdir,
      '--target-url',
      target.url,
    ]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/^rookery: region 'secondary' is not reachable \(s3:\/\/gone\/rookery/);
    expect(existsSync(workdir)).toBe(false);
  });

  it('--dry-run prints the plan from the secondary alone and restores nothing', async () => {
    const workdir = join(work, 'dry');
    const result = rookery([
      'dr',
      '--mode',
      'complete',
      '--region',
      'secondary',
      '--config',
      drConfig,
      '--workdir',
      workdir,
      '--target-url',
      target.url,
      '--dry-run',
      '--json',
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const plan = JSON.parse(result.stdout) as {
      loneRepository: boolean;
      tiers: { tier: string; backupId: string; destination: string; walRange: { start: string; end: string | null } | null }[];
    };
    expect(plan.loneRepository).toBe(true);
    expect(plan.tiers.map((tier) => [tier.tier, tier.backupId])).toEqual(
      ['oltp', 'content', 'queue', 'olap'].map((tier) => [tier, backups.get(tier as TierName)]),
    );
    for (const tier of plan.tiers.filter((entry) => entry.tier === 'oltp' || entry.tier === 'queue')) {
      expect(tier.destination).toBe(join(workdir, tier.tier));
      expect(tier.walRange?.end && tier.walRange.end > tier.walRange.start).toBeTruthy();
    }
    expect(existsSync(workdir)).toBe(false);
    const text = rookery(['dr', '--mode', 'complete', '--config', drConfig, '--workdir', workdir, '--target-url', target.url, '--dry-run']);
    expect(text.stdout).toContain(`backup ${backups.get('oltp')}`);
    const databases = await target.query<{ datname: string }>('select datname from pg_database');
    expect(databases.map((row) => row.datname)).not.toContain(CONTENT_DATABASE);
  }, 60_000);

  it('complete: restores all four tiers from the secondary store alone, data identical, report written', async () => {
    const workdir = join(work, 'restored');
    const reportPath = join(work, 'dr-report.md');
    restoredDirs = PHYSICAL.map(({ tier }) => join(workdir, tier));
    const result = rookery([
      'dr',
      '--mode',
      'complete',
      '--region',
      'secondary',
      '--config',
      drConfig,
      '--workdir',
      workdir,
      '--target-url',
      target.url,
      '--report',
      reportPath,
      '--json',
    ]);
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as DrReport;
    expect(report.tiers.filter((tier) => !tier.ok).map((tier) => [tier.tier, tier.error])).toEqual([]);
    expect(result.status).toBe(0);
    expect(report).toMatchObject({ mode: 'complete', region: 'secondary', ok: true });

    for (const outcome of report.tiers) {
      expect(outcome.backupId).toBe(backups.get(outcome.tier));
      expect(outcome.restoreMs).toBeGreaterThan(0);
      expect(outcome.withinRto).toBe(outcome.restoreMs !== null && outcome.restoreMs <= outcome.rtoSeconds * 1000);
      const database =
        outcome.method === 'physical'
          ? (PHYSICAL.find((entry) => entry.tier === outcome.tier)?.database as string)
          : (outcome.database as string);
      const url = outcome.method === 'physical' ? databaseUrl(outcome.url as string, database) : target.urlFor(database);
      // rookery's own change tracking (content tier) is bookkeeping, not the tier's data; the olap
      // policy backs up admin_audit_log's definition without its rows (excludeTableData).
      const comparable = (checksums: TableChecksums) =>
        Object.fromEntries(
          Object.entries(checksums).filter(
            ([table]) => !table.startsWith('rookery.') && !(outcome.tier === 'olap' && table === 'public.admin_audit_log'),
          ),
        );
      const restored = comparable(await tableChecksums(url));
      expect([outcome.tier, diffTableChecksums(comparable(expected.get(outcome.tier) as TableChecksums), restored)]).toEqual([
        outcome.tier,
        [],
      ]);
      expect(outcome.tables.filter((table) => table.database === database).length).toBeGreaterThan(0);
    }
    // WAL written after the backups came back from the region's archive.
    expect(report.tiers.find((tier) => tier.tier === 'oltp')?.restoredTo).toMatch(/end of the archived WAL/);

    const markdown = await readFile(reportPath, 'utf8');
    expect(markdown).toContain('# Disaster recovery report (complete)');
    for (const tier of ['oltp', 'queue', 'content', 'olap'])
      expect(markdown).toMatch(new RegExp(`\\| ${tier} \\| (physical|logical) \\| ${backups.get(tier as TierName)} \\|`));
    expect(JSON.parse(await readFile(join(work, 'dr-report.json'), 'utf8'))).toMatchObject({ ok: true });
  }, 240_000);
});

async function firstKey(store: Store): Promise<string | undefined> {
  for await (const object of store.list('')) return object.key;
  return undefined;
}
