#!/usr/bin/env node
// Disaster recovery benchmark (issue 6: "DR complete time for the demo data set"). Throwaway
// PostgreSQL 15 clusters (fsync on) hold the demo data set:
//
//   oltp    seedOltp --oltp-mb (default 200, the `rookery demo` default) in penguinmails_oltp   physical
//   queue   seedOltp --queue-mb (default 50) in penguinmails_queue, its own cluster             physical
//   content seedContent --content-mb (default 100) ┐ one cluster                              logical
//   olap    seedOlap --olap-mb (default 100)        ┘                                           logical
//
// oltp and queue archive their WAL with the real `rookery wal-push` (archive_command) into the
// primary repository. Every tier is backed up into the primary (`rookery backup --tier T`), rows
// are written to the physical tiers after their backups and archived (--after-rows per tier: only
// WAL replay from the region brings them back), every tier is replicated to the secondary
// (`rookery replicate --tier T`), the sources' checksums are taken, the sources are stopped and the
// primary repository is deleted. Then, timed end to end:
//
//   rookery dr --mode complete --region secondary --workdir DIR --json   (config: the secondary only)
//
// Physical tiers are restored under DIR/<tier> and promoted; logical tiers into the cluster the
// command starts under DIR (or --target-url URL of a cluster this script starts, with --target-url).
// Per tier the report's restore time is printed against its RTO, and the restored tables must equal
// the sources (row counts and content checksums).
//
//   node tools/bench/dr.mjs [--oltp-mb 200] [--queue-mb 50] [--content-mb 100] [--olap-mb 100]
//                           [--after-rows 200000] [--s3] [--target-url] [--out FILE] [--keep]
//
// --s3: the two repositories are buckets on two S3Proxy servers (startS3Proxy) instead of two
// directories. Needs the compiled libs (npx tsc -p tsconfig.build.json).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOKERY, dist, parseArgs } from './lib/cli.mjs';
import { PGBIN, postgresIds } from './lib/cluster.mjs';

const testing = dist('testing');
const { databaseUrl } = dist('validation');
const {
  startCluster,
  seedOltp,
  seedContent,
  seedOlap,
  tableChecksums,
  diffTableChecksums,
  switchAndWaitArchived,
  startS3Proxy,
  s3StoreUrl,
} = testing;

const args = parseArgs(process.argv.slice(2));
const sizes = {
  oltp: Number(args['oltp-mb'] ?? 200),
  queue: Number(args['queue-mb'] ?? 50),
  content: Number(args['content-mb'] ?? 100),
  olap: Number(args['olap-mb'] ?? 100),
};
const afterRows = Number(args['after-rows'] ?? 200_000);
const TIERS = ['oltp', 'queue', 'content', 'olap'];
const DATABASES = {
  oltp: 'penguinmails_oltp',
  queue: 'penguinmails_queue',
  content: testing.CONTENT_DATABASE,
  olap: testing.OLAP_DATABASE,
};
const PHYSICAL = ['oltp', 'queue'];

function log(message) {
  process.stderr.write(`[dr-bench] ${message}\n`);
}

const since = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/** Asynchronous (so SIGINT cleanup can run meanwhile); throws with the tail of stderr on failure. */
function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const result = { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
      if (code === 0) resolve(result);
      else
        reject(
          Object.assign(
            new Error(
              `${path.basename(argv[0] ?? cmd)} ${argv.slice(1, 4).join(' ')} exited ${code ?? signal}\n${result.stderr.slice(-3000)}${result.stdout.slice(-2000)}`,
            ),
            result,
          ),
        );
    });
  });
}

const rookery = (argv) => run(process.execPath, [ROOKERY, ...argv]);

// Everything this process starts, for the finally block and SIGINT.
const clusters = [];
const s3Servers = [];
const root = mkdtempSync(path.join(os.tmpdir(), 'rookery-bench-dr-'));
chmodSync(root, 0o711);
const workdir = path.join(root, 'dr');
let cleaned = false;

/** pg_ctl stop (immediate) every server `rookery dr` left running under the workdir. */
function stopRestoredServers() {
  const pidFiles = [];
  const walk = (dir, depth) => {
    if (depth > 3 || !existsSync(dir)) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const sub = path.join(dir, entry.name);
      if (existsSync(path.join(sub, 'postmaster.pid'))) pidFiles.push(sub);
      else walk(sub, depth + 1);
    }
  };
  walk(workdir, 0);
  for (const dataDir of pidFiles)
    spawnSync('runuser', ['-u', 'postgres', '--', `${PGBIN}/pg_ctl`, '-D', dataDir, '-m', 'immediate', '-w', '-t', '60', 'stop'], {
      stdio: 'ignore',
    });
  // wal-get's detached prefetchers of those servers (their command lines name this run's dir).
  const prefetchers = spawnSync('pgrep', ['-f', `wal-prefetcher .*${root}/`], { encoding: 'utf8' })
    .stdout.split(/\s+/)
    .filter(Boolean)
    .map(Number);
  for (const pid of prefetchers) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  return pidFiles.length;
}

async function cleanup() {
  if (cleaned) return;
  cleaned = true;
  stopRestoredServers();
  await Promise.allSettled(clusters.map((cluster) => cluster.destroy()));
  await Promise.allSettled(s3Servers.map((server) => server.stop()));
  if (!args.keep) rmSync(root, { recursive: true, force: true });
  else log(`kept ${root}`);
}

process.on('SIGINT', () => {
  log('interrupted: stopping everything');
  cleanup().finally(() => process.exit(130));
});

/** Two repositories: directories (the primary owned by postgres, for wal-push) or two S3Proxy buckets. */
async function repositories() {
  if (!args.s3) {
    const primaryDir = path.join(root, 'repo-primary');
    const secondaryDir = path.join(root, 'repo-secondary');
    mkdirSync(primaryDir, { mode: 0o755 });
    mkdirSync(secondaryDir, { mode: 0o755 });
    const { uid, gid } = postgresIds();
    chownSync(primaryDir, uid, gid);
    // The restored servers' restore_command (wal-get) runs as postgres, and the objects root wrote
    // are 0640 root:root: the surviving repository is handed to the postgres account before dr.
    const secondaryReadable = () => spawnSync('chown', ['-R', `${uid}:${gid}`, secondaryDir]);
    return {
      primary: `file://${primaryDir}`,
      secondary: `file://${secondaryDir}`,
      removePrimary: async () => rmSync(primaryDir, { recursive: true, force: true }),
      walEnv: '',
      secondaryReadable,
    };
  }
  const urls = [];
  for (const name of ['primary', 'secondary']) {
    const server = await startS3Proxy({ buckets: [`dr-${name}`] });
    s3Servers.push(server);
    urls.push(s3StoreUrl(server, `dr-${name}`, 'rookery'));
    // The CLI processes this script starts read the credentials from the environment.
    process.env.AWS_ACCESS_KEY_ID = server.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = server.secretAccessKey;
  }
  const removePrimary = async () => {
    // The disaster: the primary server and everything it stored are gone.
    await s3Servers[0].stop();
  };
  // archive_command gets no AWS_* from the server: the wal-push script carries the (test) credentials.
  const walEnv = `export AWS_ACCESS_KEY_ID='${process.env.AWS_ACCESS_KEY_ID}' AWS_SECRET_ACCESS_KEY='${process.env.AWS_SECRET_ACCESS_KEY}'`;
  return { primary: urls[0], secondary: urls[1], removePrimary, walEnv, secondaryReadable: () => undefined };
}

/** A source cluster whose archive_command is the real `rookery wal-push` into the primary. */
async function physicalSource(tier, repos) {
  const script = path.join(root, `wal-push-${tier}.sh`);
  writeFileSync(
    script,
    ['#!/bin/sh', repos.walEnv, `exec '${process.execPath}' '${ROOKERY}' wal-push "$1" --tier ${tier} --repo '${repos.primary}'`, ''].join(
      '\n',
    ),
    { mode: 0o755 },
  );
  const cluster = await startCluster({
    name: `bench-dr-${tier}`,
    fsync: true,
    settings: { archive_mode: 'on', archive_command: `${script} %p`, max_wal_size: '4GB', checkpoint_timeout: '30min' },
  });
  clusters.push(cluster);
  return cluster;
}

function comparable(tier, checksums) {
  // rookery's own change tracking is bookkeeping, not the tier's data; the olap policy backs up
  // admin_audit_log's definition without its rows (excludeTableData) — as in dr.int-spec.
  return Object.fromEntries(
    Object.entries(checksums).filter(
      ([table]) => !table.startsWith('rookery.') && !(tier === 'olap' && table === 'public.admin_audit_log'),
    ),
  );
}

async function main() {
  const load = () =>
    os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(', ');
  const results = {
    date: new Date().toISOString(),
    cpus: os.cpus().length,
    store: args.s3 ? 's3 (two S3Proxy servers)' : 'filesystem',
    sizesMb: sizes,
    afterRows,
    loadBefore: load(),
  };
  const total = process.hrtime.bigint();
  const repos = await repositories();

  log('starting clusters');
  const [oltp, queue] = [await physicalSource('oltp', repos), await physicalSource('queue', repos)];
  const logical = await startCluster({ name: 'bench-dr-logical', fsync: true });
  clusters.push(logical);
  const targetCluster = args['target-url'] ? await startCluster({ name: 'bench-dr-target', fsync: true }) : null;
  if (targetCluster) clusters.push(targetCluster);
  const sources = { oltp, queue, content: logical, olap: logical };

  log(`seeding oltp ${sizes.oltp} MiB, queue ${sizes.queue} MiB, content ${sizes.content} MiB, olap ${sizes.olap} MiB`);
  let t = process.hrtime.bigint();
  const seeded = {};
  seeded.oltp = await seedOltp(oltp.url, { sizeMb: sizes.oltp, database: DATABASES.oltp });
  seeded.queue = await seedOltp(queue.url, { sizeMb: sizes.queue, database: DATABASES.queue, seed: 2 });
  seeded.content = await seedContent(logical.url, { sizeMb: sizes.content, seed: 7 });
  seeded.olap = await seedOlap(logical.url, { sizeMb: sizes.olap, seed: 7 });
  results.databaseMiB = Object.fromEntries(TIERS.map((tier) => [tier, +(seeded[tier].databaseBytes / 1048576).toFixed(0)]));
  results.seedS = +since(t).toFixed(1);
  log(`seeded in ${results.seedS} s: ${JSON.stringify(results.databaseMiB)} MiB`);

  // wal-push creates <tier>/wal in the primary first (as postgres), before a backup (as root) can.
  for (const tier of PHYSICAL) await switchAndWaitArchived(sources[tier], 300_000);

  const config = path.join(root, 'rookery.yaml');
  writeFileSync(
    config,
    [
      `repositories: ['${repos.primary}', '${repos.secondary}']`,
      'tiers:',
      ...TIERS.map((tier) => `  ${tier}: { pgUrl: '${sources[tier].urlFor(DATABASES[tier])}' }`),
      '',
    ].join('\n'),
  );

  log('backing up the four tiers into the primary');
  t = process.hrtime.bigint();
  results.backupS = {};
  for (const tier of TIERS) {
    const started = process.hrtime.bigint();
    await rookery(['backup', '--tier', tier, '--config', config, '--json']);
    results.backupS[tier] = +since(started).toFixed(1);
  }
  log(`backups ${JSON.stringify(results.backupS)} s`);

  // Rows after the backups: only the region's archived WAL brings them back.
  for (const tier of PHYSICAL) {
    await sources[tier].query(
      `create table after_backup as select g as id, md5(g::text) as note from generate_series(1, ${afterRows}) g`,
      [],
      DATABASES[tier],
    );
    await switchAndWaitArchived(sources[tier], 300_000);
  }

  log('replicating to the secondary');
  t = process.hrtime.bigint();
  for (const tier of TIERS) await rookery(['replicate', '--tier', tier, '--config', config, '--json']);
  results.replicateS = +since(t).toFixed(1);

  const expected = {};
  for (const tier of TIERS) expected[tier] = comparable(tier, await tableChecksums(sources[tier].urlFor(DATABASES[tier])));

  // The disaster: the sources and the primary repository are gone.
  for (const cluster of [oltp, queue, logical]) await cluster.destroy();
  await repos.removePrimary();
  repos.secondaryReadable();
  const drConfig = path.join(root, 'dr.yaml');
  writeFileSync(drConfig, `repositories:\n  - '${repos.secondary}'\n`);

  const drArgs = ['dr', '--mode', 'complete', '--region', 'secondary', '--config', drConfig, '--workdir', workdir, '--json'];
  if (targetCluster) drArgs.push('--target-url', targetCluster.url);
  results.command = `rookery ${drArgs.join(' ').replaceAll(root, '$TMP')}`;
  results.loadAtDr = load();
  log(`${results.command} (load ${results.loadAtDr})`);
  t = process.hrtime.bigint();
  const dr = await rookery(drArgs).catch((error) => error);
  results.drWallS = +since(t).toFixed(1);
  const report = JSON.parse(dr.stdout || '{}');
  if (!report.tiers) throw new Error(`rookery dr printed no report: ${dr.message ?? dr.stderr}`);
  results.drOk = report.ok;

  results.tiers = [];
  for (const outcome of report.tiers) {
    const database = DATABASES[outcome.tier];
    const entry = {
      tier: outcome.tier,
      method: outcome.method,
      ok: outcome.ok,
      restoreS: outcome.restoreMs === null ? null : +(outcome.restoreMs / 1000).toFixed(1),
      rtoS: outcome.rtoSeconds,
      withinRto: outcome.withinRto,
      restoredTo: outcome.restoredTo,
      error: outcome.error?.message ?? null,
    };
    if (outcome.ok) {
      const url = databaseUrl(outcome.url, outcome.method === 'physical' ? database : (outcome.database ?? database));
      const restored = comparable(outcome.tier, await tableChecksums(url));
      entry.differences = diffTableChecksums(expected[outcome.tier], restored);
      entry.rows = Object.values(expected[outcome.tier]).reduce((sum, table) => sum + table.rows, 0);
      // The report's own counts must agree with the sources too.
      const reported = Object.fromEntries(
        outcome.tables
          .filter((table) => table.database === (outcome.database ?? database))
          .map((table) => [table.table.replace(/"/g, ''), table.rows]),
      );
      entry.reportCountsMatch = Object.entries(expected[outcome.tier]).every(([table, { rows }]) => reported[table] === rows);
    }
    results.tiers.push(entry);
  }
  results.stoppedRestoredServers = stopRestoredServers();
  results.totalS = +since(total).toFixed(0);
  results.loadAfter = load();

  const lines = [
    `rookery dr --mode complete, ${results.store}, ${results.cpus} cores, load ${results.loadBefore} (start) / ${results.loadAtDr} (at dr), ${results.date}`,
    `data: ${TIERS.map((tier) => `${tier} ${results.databaseMiB[tier]} MiB`).join(', ')}; ${afterRows} rows per physical tier written after its backup (replayed from the region's WAL)`,
    `backups ${JSON.stringify(results.backupS)} s; replicate (4 tiers) ${results.replicateS} s`,
    '',
    `dr wall clock (process start to exit): ${results.drWallS} s, ok: ${results.drOk}`,
    '',
    '| tier | method | restore s (report) | RTO s | within RTO | rows | data equal the source |',
    '| --- | --- | ---: | ---: | --- | ---: | --- |',
    ...results.tiers.map(
      (e) =>
        `| ${e.tier} | ${e.method} | ${e.restoreS ?? '–'} | ${e.rtoS} | ${e.withinRto ? 'yes' : 'NO'} | ${e.rows ?? ''} | ${e.ok ? (e.differences.length === 0 && e.reportCountsMatch ? 'yes (counts + checksums)' : `NO: ${e.differences.slice(0, 3).join('; ')}${e.reportCountsMatch ? '' : ' (report counts differ)'}`) : `FAILED: ${e.error}`} |`,
    ),
    '',
    `total benchmark ${results.totalS} s`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.out) writeFileSync(path.resolve(String(args.out)), `${JSON.stringify(results, null, 2)}\n`);
  if (!results.drOk || results.tiers.some((e) => !e.ok || e.differences.length || !e.reportCountsMatch)) process.exitCode = 1;
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanup);
