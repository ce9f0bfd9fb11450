#!/usr/bin/env node
// WAL archiving benchmark: rookery wal-push (one process per segment, and asynchronous: a background
// archiver pushes ahead, wal-push answers from its spool, through node or through the shell fast
// path bin/rookery-wal-push) against
// pgBackRest archive-push (sync and async), each on its own throwaway PostgreSQL 15 cluster
// (fsync on), archiving into a local filesystem repository with zstd level 1.
//
//   node tools/bench/wal-archive.mjs [--scale 50] [--duration 60] [--archive-timeout 60]
//                                    [--clients 4] [--only rookery,pgbackrest] [--out FILE]
//                                    [--async-only] [--drain-only] [--process-max 2]
//  --async-only: only the asynchronous variants; --drain-only: skip the load phase;
//  --process-max: rookery's wal.processMax (pgBackRest's --process-max stays 2);
//  --skip-node: leave out the node-foreground asynchronous variant (rookery.js as archive_command);
//  --rounds N: run the variants N times, alternating, so each round compares the tools in one stretch.
//
// Two measurements per tool:
//  - drain: archiving paused (archive_command = ''), `pgbench -i -s SCALE` leaves a backlog of
//    ready segments; then the tool is switched on and timed until the backlog is archived:
//    segments/s at full speed, the tool's capacity.
//  - load: `pgbench -c CLIENTS -T DURATION` with archive_timeout set; every 0.5 s the benchmark
//    samples pg_current_wal_lsn() and pg_stat_archiver and computes the observed RPO: bytes of WAL
//    written but not yet archived (current LSN − end of the last archived segment) and seconds
//    since the oldest such byte was written.
import { spawn } from 'node:child_process';
import { writeFileSync, readdirSync, chownSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGBIN, createCluster, mkPgDir, pgCtlStop, pgTempDir, postgresIds, psql, stopAllStarted } from './lib/cluster.mjs';
import { STANZA, pgbackrestAvailable, setupPgBackRest } from './lib/pgbackrest.mjs';
import { asPostgres, sh } from './lib/proc.mjs';
import { parseArgs } from './lib/cli.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SEGMENT = 16 * 1024 * 1024;

const args = parseArgs(process.argv.slice(2));
const scale = Number(args.scale ?? 50);
const duration = Number(args.duration ?? 60);
const archiveTimeout = Number(args['archive-timeout'] ?? 60);
const clients = Number(args.clients ?? 4);
const only = args.only ? String(args.only).split(',') : null;
const processMax = Number(args['process-max'] ?? 2);

const VARIANTS = [
  { tool: 'rookery', name: 'rookery wal-push (process per segment)', async: false },
  { tool: 'rookery', name: `rookery wal-push archiveAsync processMax=${processMax}`, async: true },
  { tool: 'rookery', name: `rookery-wal-push (sh fast path) archiveAsync processMax=${processMax}`, async: true, shell: true },
  { tool: 'pgbackrest', name: 'pgBackRest archive-push (sync)', async: false },
  { tool: 'pgbackrest', name: 'pgBackRest archive-push archive-async process-max=2', async: true },
]
  .filter((variant) => !only || only.includes(variant.tool))
  .filter((variant) => !args['async-only'] || variant.async)
  .filter((variant) => !args['skip-node'] || variant.tool !== 'rookery' || !variant.async || variant.shell);
const rounds = Number(args.rounds ?? 1);

function log(message) {
  process.stderr.write(`[wal-bench] ${message}\n`);
}

function parseLsn(text) {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}

function segmentNumberOfName(name) {
  return BigInt(`0x${name.slice(8, 16)}`) * 256n + BigInt(`0x${name.slice(16, 24)}`);
}

function readyCount(cluster) {
  return readdirSync(path.join(cluster.dataDir, 'pg_wal', 'archive_status')).filter((entry) => entry.endsWith('.ready')).length;
}

function setArchiveCommand(cluster, command) {
  psql(cluster.conn, `ALTER SYSTEM SET archive_command = '${command.replace(/'/g, "''")}'`);
  psql(cluster.conn, 'SELECT pg_reload_conf()');
}

/** The archive_command of a variant, after preparing its repository. */
function prepare(variant, cluster, work) {
  if (variant.tool === 'rookery') {
    const repo = mkPgDir(path.join(work, 'rookery-repo'));
    const spool = mkPgDir(path.join(work, 'rookery-spool'));
    const config = path.join(work, 'rookery.yaml');
    const wal = variant.async ? `wal:\n  archiveAsync: true\n  spoolPath: ${spool}\n  processMax: ${processMax}\n` : '';
    writeFileSync(config, `repositories:\n  - file://${repo}\ncompression:\n  codec: zstd\n  level: 1\n${wal}`);
    const { uid, gid } = postgresIds();
    chownSync(config, uid, gid);
    const program = variant.shell
      ? `ROOKERY_NODE=${process.execPath} ${path.join(root, 'bin', 'rookery-wal-push')}`
      : `${process.execPath} ${path.join(root, 'bin', 'rookery.js')} wal-push`;
    return { repo, command: `${program} %p --tier oltp --config ${config}` };
  }
  const pb = setupPgBackRest(work, cluster);
  const options = `--config=${pb.conf} --stanza=${STANZA} --compress-type=zst --compress-level=1`;
  const asyncOptions = variant.async ? ' --archive-async --process-max=2' : '';
  asPostgres('pgbackrest', [`--config=${pb.conf}`, `--stanza=${STANZA}`, 'stanza-create']);
  return { repo: pb.repo, command: `pgbackrest ${options}${asyncOptions} archive-push %p` };
}

function archiverState(cluster) {
  const row = psql(
    cluster.conn,
    "select archived_count, coalesce(last_archived_wal, ''), failed_count, pg_current_wal_lsn(), extract(epoch from clock_timestamp()) from pg_stat_archiver",
  );
  const [archived, last, failed, lsn, now] = row.split('|');
  return { archived: Number(archived), last, failed: Number(failed), lsn: parseLsn(lsn), at: Number(now) };
}

async function waitDrained(cluster, timeoutS) {
  const deadline = Date.now() + timeoutS * 1000;
  while (readyCount(cluster) > 0) {
    if (Date.now() > deadline) throw new Error(`archive backlog not drained within ${timeoutS} s (${readyCount(cluster)} ready)`);
    await new Promise((done) => setTimeout(done, 50));
  }
}

async function drain(variant, cluster, command) {
  setArchiveCommand(cluster, '');
  log(`${variant.name}: pgbench -i -s ${scale} with archiving paused`);
  sh(`${PGBIN}/pgbench`, [
    '-i',
    '-s',
    String(scale),
    '-q',
    '-h',
    cluster.conn.host,
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    'postgres',
  ]);
  psql(cluster.conn, 'CHECKPOINT');
  psql(cluster.conn, 'SELECT pg_switch_wal()');
  const backlog = readyCount(cluster);
  const before = archiverState(cluster);
  const started = process.hrtime.bigint();
  setArchiveCommand(cluster, command);
  await waitDrained(cluster, 1800);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = archiverState(cluster);
  log(`${variant.name}: ${backlog} segments in ${seconds.toFixed(1)} s`);
  return { backlog, seconds, segmentsPerSecond: backlog / seconds, failed: after.failed - before.failed };
}

async function load(variant, cluster) {
  psql(cluster.conn, `ALTER SYSTEM SET archive_timeout = '${archiveTimeout}s'`);
  psql(cluster.conn, 'SELECT pg_reload_conf()');
  const samples = [];
  const writes = []; // (time, lsn) to find when the oldest unarchived byte was written
  const before = archiverState(cluster);
  log(`${variant.name}: pgbench -c ${clients} -T ${duration}, archive_timeout=${archiveTimeout}s`);
  const bench = spawn(
    `${PGBIN}/pgbench`,
    [
      '-c',
      String(clients),
      '-j',
      '2',
      '-T',
      String(duration),
      '-h',
      cluster.conn.host,
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      'postgres',
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  bench.stdout.on('data', (chunk) => (output += chunk));
  const finished = new Promise((done) => bench.on('close', done));
  let running = true;
  finished.then(() => (running = false));
  while (running) {
    const state = archiverState(cluster);
    writes.push({ at: state.at, lsn: state.lsn });
    const archivedEnd = state.last ? (segmentNumberOfName(state.last) + 1n) * BigInt(SEGMENT) : 0n;
    const exposedBytes = state.lsn > archivedEnd ? Number(state.lsn - archivedEnd) : 0;
    const firstUnarchived = writes.find((write) => write.lsn > archivedEnd);
    const exposedSeconds = exposedBytes > 0 && firstUnarchived ? state.at - firstUnarchived.at : 0;
    samples.push({ exposedBytes, exposedSeconds, failed: state.failed - before.failed });
    await new Promise((done) => setTimeout(done, 500));
  }
  const after = archiverState(cluster);
  const tps = Number(/tps = ([\d.]+)/.exec(output)?.[1] ?? 0);
  const walBytes = Number(after.lsn - before.lsn);
  const percentile = (values, p) => values.slice().sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0;
  const bytes = samples.map((sample) => sample.exposedBytes);
  const seconds = samples.map((sample) => sample.exposedSeconds);
  return {
    tps,
    walMiBPerSecond: walBytes / duration / 1048576,
    walSegmentsPerSecond: walBytes / duration / SEGMENT,
    archivedSegmentsPerSecond: (after.archived - before.archived) / duration,
    rpoBytesP95: percentile(bytes, 0.95),
    rpoBytesMax: Math.max(...bytes),
    rpoSecondsP95: percentile(seconds, 0.95),
    rpoSecondsMax: Math.max(...seconds),
    failed: after.failed - before.failed,
    samples: samples.length,
  };
}

async function runVariant(variant) {
  const startLoad = os.loadavg()[0];
  const work = pgTempDir('rookery-walbench-');
  sh('chmod', ['0711', work]);
  const cluster = await createCluster(mkPgDir(path.join(work, 'cluster')));
  try {
    const { command } = prepare(variant, cluster, work);
    const drained = await drain(variant, cluster, command);
    const loaded = args['drain-only'] ? null : await load(variant, cluster);
    return { variant: variant.name, drain: drained, load: loaded, loadAverage: [startLoad, os.loadavg()[0]] };
  } finally {
    pgCtlStop(cluster.dataDir, 'immediate');
    if (!args.keep) sh('rm', ['-rf', work]);
  }
}

async function main() {
  if (VARIANTS.some((variant) => variant.tool === 'pgbackrest') && !pgbackrestAvailable()) {
    throw new Error('pgbackrest is not installed: apt-get install -y pgbackrest (or --only rookery)');
  }
  const results = [];
  for (let round = 1; round <= rounds; round++) {
    for (const variant of VARIANTS) {
      const result = await runVariant(variant);
      if (rounds > 1) result.variant = `round ${round}: ${result.variant}`;
      results.push(result);
    }
  }
  const machine = `${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`;
  const lines = [
    `machine: ${machine}; node ${process.version}; ${sh('pgbackrest', ['version'], { allowFail: true }).stdout?.trim() || 'pgbackrest n/a'}`,
    `drain: pgbench -i -s ${scale} backlog; load: pgbench -c ${clients} -j 2 -T ${duration}, archive_timeout ${archiveTimeout} s; fsync on; filesystem repository; zstd level 1`,
    '',
    '| tool | drain backlog (segments) | drain segments/s | load WAL segments/s | load archived segments/s | RPO bytes p95 / max | RPO seconds p95 / max | failed | pgbench tps | load avg (1 min) start / end |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...results.map(({ variant, drain: d, load: l, loadAverage }) =>
      l === null
        ? `| ${variant} | ${d.backlog} | ${d.segmentsPerSecond.toFixed(1)} | - | - | - | - | ${d.failed} | - | ${loadAverage.map((value) => value.toFixed(1)).join(' / ')} |`
        : `| ${variant} | ${d.backlog} | ${d.segmentsPerSecond.toFixed(1)} | ${l.walSegmentsPerSecond.toFixed(2)} | ${l.archivedSegmentsPerSecond.toFixed(2)} | ${(l.rpoBytesP95 / 1048576).toFixed(1)} / ${(l.rpoBytesMax / 1048576).toFixed(1)} MiB | ${l.rpoSecondsP95.toFixed(1)} / ${l.rpoSecondsMax.toFixed(1)} | ${d.failed + l.failed} | ${l.tps.toFixed(0)} | ${loadAverage.map((value) => value.toFixed(1)).join(' / ')} |`,
    ),
  ];
  const report = lines.join('\n');
  console.log(report);
  if (args.out) writeFileSync(String(args.out), `${JSON.stringify(results, null, 2)}\n`);
}

process.on('SIGINT', () => {
  stopAllStarted();
  process.exit(130);
});
main().catch((error) => {
  stopAllStarted();
  console.error(error.stack ?? error.message);
  process.exit(1);
});
