#!/usr/bin/env node
// Before/after benchmark of two revisions of rookery on one data set (issue 14: a refactor must
// leave backup, restore and WAL-push speed unchanged beyond noise). The "before" revision is
// checked out into a temporary git worktree and built there (node_modules shared with this
// checkout); "after" is this checkout as built (npx tsc -p tsconfig.build.json). One throwaway
// PostgreSQL 15 cluster is seeded once; each round runs, for each revision in turn (the order
// alternates per round, so neither always runs first):
//   - backup:   rookery backup --tier oltp into a fresh filesystem repository (default config)
//   - restore:  rookery restore --backup latest --to DIR of that backup (files only, no start)
//   - wal-push: rookery wal-push of the same N real WAL segments, one process per segment
//               (as archive_command runs it), into a fresh repository
// and prints wall time (and peak RSS for backup and restore) per revision, with the median of
// the rounds. Restored directories are compared with the source's file list as a sanity check
// (the specs judge the data; this only catches a run that did nothing).
//
//   node tools/bench/revisions.mjs --before REV [--scale 20] [--text-mb 50] [--rounds 3]
//                                  [--segments 32] [--out FILE] [--keep]
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCluster, mkPgDir, pgCtlStop, pgTempDir, psql, stopAllStarted } from './lib/cluster.mjs';
import { loadData } from './lib/data.mjs';
import { ROOT, parseArgs } from './lib/cli.mjs';
import { duBytes, runMonitored, sh } from './lib/proc.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.before || args.before === true) {
  console.error('usage: node tools/bench/revisions.mjs --before REV [--scale 20] [--text-mb 50] [--rounds 3] [--segments 32] [--out FILE]');
  process.exit(2);
}
const scale = Number(args.scale ?? 20);
const textMb = Number(args['text-mb'] ?? 50);
const rounds = Math.max(1, Number(args.rounds ?? 3));
const segmentCount = Math.max(1, Number(args.segments ?? 32));
const log = (message) => process.stderr.write(`[revisions ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

function env() {
  const out = { ...process.env, NO_COLOR: '1' };
  delete out.ROOKERY_CONFIG;
  delete out.ROOKERY_CATALOG_URL;
  return out;
}

/** A built checkout of `rev` in `dir` (a detached worktree; node_modules shared with this one). */
function checkout(rev, dir) {
  const commit = sh('git', ['-C', ROOT, 'rev-parse', '--verify', `${rev}^{commit}`]).stdout.trim();
  sh('git', ['-C', ROOT, 'worktree', 'add', '--detach', dir, commit]);
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  log(`building ${rev} (${commit.slice(0, 10)}) in ${dir}`);
  sh(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: dir });
  return { name: `before ${rev} (${commit.slice(0, 10)})`, dir, cli: path.join(dir, 'bin', 'rookery.js') };
}

const median = (values) => {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)] : NaN;
};

async function timed(revision, op, cliArgs, cwd) {
  const result = await runMonitored(process.execPath, [revision.cli, ...cliArgs], { cwd, env: env() });
  if (result.code !== 0) {
    throw new Error(`${revision.name} ${op} exited ${result.code ?? result.signal}: ${result.stderr.slice(-2000)}`);
  }
  return result;
}

const work = pgTempDir('rookery-revisions-');
const results = [];
let before;
try {
  before = checkout(String(args.before), path.join(work, 'before'));
  const after = { name: 'after (this checkout)', dir: ROOT, cli: path.join(ROOT, 'bin', 'rookery.js') };
  if (!existsSync(path.join(ROOT, 'dist'))) throw new Error('build this checkout first: npx tsc -p tsconfig.build.json');

  const cluster = await createCluster(mkPgDir(path.join(work, 'cluster'), 0o755));
  log(`seeding: pgbench scale ${scale}, ${textMb} MB of text`);
  loadData(cluster, { scale, textMb, log });
  const dbBytes = Number(psql(cluster.conn, 'select sum(pg_database_size(oid)) from pg_database'));

  // Real segments of this cluster, complete ones only (names before the one being written; later
  // names may be recycled files holding old WAL), copied while it is idle: every revision pushes
  // the same files.
  psql(cluster.conn, 'checkpoint');
  psql(
    cluster.conn,
    `create table bench_wal as select g, md5(g::text) || repeat('w', 900) as filler from generate_series(1, ${segmentCount * 16000}) g`,
  );
  psql(cluster.conn, 'select pg_switch_wal()');
  const current = psql(cluster.conn, 'select pg_walfile_name(pg_current_wal_lsn())').trim();
  const segments = mkPgDir(path.join(work, 'segments'), 0o755);
  const names = readdirSync(path.join(cluster.dataDir, 'pg_wal'))
    .filter((name) => /^[0-9A-F]{24}$/.test(name) && name < current)
    .sort()
    .slice(-segmentCount);
  for (const name of names) copyFileSync(path.join(cluster.dataDir, 'pg_wal', name), path.join(segments, name));
  if (names.length === 0) throw new Error('no complete WAL segment found in pg_wal to stage for wal-push');
  log(`${names.length} WAL segments staged for wal-push`);

  for (let round = 0; round < rounds; round++) {
    for (const revision of round % 2 === 0 ? [before, after] : [after, before]) {
      const dir = path.join(work, `round-${round}-${revision === after ? 'after' : 'before'}`);
      mkdirSync(dir, { recursive: true });
      const repo = path.join(dir, 'repo');
      mkdirSync(repo);
      log(`round ${round + 1}: ${revision.name}: backup`);
      const backup = await timed(
        revision,
        'backup',
        ['backup', '--tier', 'oltp', '--repo', `file://${repo}`, '--pg-url', cluster.url, '--json'],
        dir,
      );
      const target = path.join(mkPgDir(path.join(dir, 'restore'), 0o755), 'data');
      log(`round ${round + 1}: ${revision.name}: restore`);
      const restore = await timed(
        revision,
        'restore',
        ['restore', '--tier', 'oltp', '--backup', 'latest', '--to', target, '--repo', `file://${repo}`, '--json'],
        dir,
      );
      const restoredFiles = readdirSync(path.join(target, 'base')).length;
      const walRepo = path.join(dir, 'wal-repo');
      mkdirSync(walRepo);
      log(`round ${round + 1}: ${revision.name}: wal-push x ${names.length}`);
      const pushStarted = process.hrtime.bigint();
      for (const name of names) {
        await timed(revision, 'wal-push', ['wal-push', path.join(segments, name), '--tier', 'oltp', '--repo', `file://${walRepo}`], dir);
      }
      const pushS = Number(process.hrtime.bigint() - pushStarted) / 1e9;
      results.push({
        round: round + 1,
        revision: revision.name,
        backupS: backup.wallS,
        backupPeakRssMiB: backup.peakRssBytes / 1048576,
        storedBytes: duBytes(repo),
        restoreS: restore.wallS,
        restorePeakRssMiB: restore.peakRssBytes / 1048576,
        restoredDatabases: restoredFiles,
        walPushSegmentsPerS: names.length / pushS,
        walPushMsPerSegment: (pushS * 1000) / names.length,
      });
      if (!args.keep) rmSync(dir, { recursive: true, force: true });
    }
  }
  pgCtlStop(cluster.dataDir);

  const rows = [];
  for (const name of [before.name, after.name]) {
    const mine = results.filter((result) => result.revision === name);
    rows.push({
      revision: name,
      'backup s': median(mine.map((r) => r.backupS)).toFixed(2),
      'backup RSS MiB': median(mine.map((r) => r.backupPeakRssMiB)).toFixed(0),
      'stored MiB': (median(mine.map((r) => r.storedBytes)) / 1048576).toFixed(1),
      'restore s': median(mine.map((r) => r.restoreS)).toFixed(2),
      'restore RSS MiB': median(mine.map((r) => r.restorePeakRssMiB)).toFixed(0),
      'wal-push ms/segment': median(mine.map((r) => r.walPushMsPerSegment)).toFixed(0),
    });
  }
  console.log(`database ${(dbBytes / 1048576).toFixed(0)} MiB, ${rounds} rounds, medians:`);
  console.table(rows);
  console.log('every round:');
  console.table(
    results.map((r) => ({
      ...r,
      backupS: r.backupS.toFixed(2),
      restoreS: r.restoreS.toFixed(2),
      walPushMsPerSegment: r.walPushMsPerSegment.toFixed(0),
    })),
  );
  if (args.out) writeFileSync(String(args.out), `${JSON.stringify({ scale, textMb, rounds, dbBytes, results, medians: rows }, null, 2)}\n`);
} finally {
  stopAllStarted();
  if (before) sh('git', ['-C', ROOT, 'worktree', 'remove', '--force', before.dir]);
  if (!args.keep) rmSync(work, { recursive: true, force: true });
}
