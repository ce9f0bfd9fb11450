#!/usr/bin/env node
// PITR restore benchmark: one throwaway PostgreSQL 15 cluster (fsync on) archives every WAL
// segment to both rookery (wal-push, zstd 1, filesystem repository) and pgBackRest (archive-push,
// zst 1); both take a base backup; pgbench then writes --wal-mb of WAL; a target LSN is taken and
// a little more is written past it. Then each tool restores to that LSN and the clock stops when
// the server is promoted and answers read-write:
//
//   rookery restore --target-lsn L --start --archive-mode off       (waits for promotion itself)
//   pgbackrest restore --type=lsn --target=L --target-action=promote --archive-mode=off
//     + pg_ctl start + wait until pg_is_in_recovery() is false
//
// Both restored servers must hold the same pgbench data (count and sum of pgbench_history).
// Also: how the restored server's "not archived" asks were answered (shell from a prefetcher
// marker, or node), and the time of a wal-get of a segment that is not archived (node path).
//
//   node tools/bench/pitr.mjs [--scale 10] [--wal-mb 512] [--clients 2] [--out FILE] [--keep]
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PGBIN,
  createCluster,
  freePort,
  mkPgDir,
  pgCtlStart,
  pgCtlStop,
  pgTempDir,
  psql,
  stopAllStarted,
  trackStarted,
  waitReadWrite,
  switchAndWaitArchived,
} from './lib/cluster.mjs';
import { STANZA, pgbackrestAvailable, setupPgBackRest } from './lib/pgbackrest.mjs';
import { asPostgres, sh } from './lib/proc.mjs';
import { parseArgs } from './lib/cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOKERY = path.join(ROOT, 'bin', 'rookery.js');

const args = parseArgs(process.argv.slice(2));
const scale = Number(args.scale ?? 10);
const walMb = Number(args['wal-mb'] ?? 512);
const clients = Number(args.clients ?? 2);

function log(message) {
  process.stderr.write(`[pitr-bench] ${message}\n`);
}

function seconds(start) {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function lsnBytes(text) {
  const [high, low] = text.split('/');
  return Number((BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`));
}

function fingerprint(conn) {
  return psql(
    conn,
    "select count(*) || ':' || coalesce(sum(delta), 0) || ':' || (select sum(abalance) from pgbench_accounts) from pgbench_history",
  );
}

async function main() {
  if (!pgbackrestAvailable()) throw new Error('pgbackrest is not installed: apt-get install -y pgbackrest');
  const root = pgTempDir('rookery-bench-pitr-');
  chmodSync(root, 0o711);
  const results = { machine: { cpus: os.cpus().length, node: process.version }, scale, walMb, clients };
  try {
    const cluster = await createCluster(mkPgDir(path.join(root, 'src')));
    const pb = setupPgBackRest(root, cluster);
    const repoDir = mkPgDir(path.join(root, 'rookery-repo'), 0o755);
    const repo = `file://${repoDir}`;
    // Every segment to both archives: the same WAL volume, archived once.
    const archive = [
      `${process.execPath} ${ROOKERY} wal-push %p --tier oltp --repo ${repo}`,
      `pgbackrest --config=${pb.conf} --stanza=${STANZA} --compress-type=zst --compress-level=1 archive-push %p`,
    ].join(' && ');
    psql(cluster.conn, `ALTER SYSTEM SET archive_command = '${archive}'`);
    psql(cluster.conn, 'SELECT pg_reload_conf()');
    asPostgres('pgbackrest', [`--config=${pb.conf}`, `--stanza=${STANZA}`, 'stanza-create']);

    log(`pgbench -i -s ${scale}`);
    sh(`${PGBIN}/pgbench`, [
      '-i',
      '-q',
      '-s',
      String(scale),
      '-h',
      cluster.conn.host,
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      'postgres',
    ]);
    switchAndWaitArchived(cluster.conn);

    log('base backups');
    sh(process.execPath, [ROOKERY, 'backup', '--tier', 'oltp', '--repo', repo, '--pg-url', cluster.url]);
    asPostgres('pgbackrest', [
      `--config=${pb.conf}`,
      `--stanza=${STANZA}`,
      '--type=full',
      '--start-fast',
      '--compress-type=zst',
      '--compress-level=1',
      'backup',
    ]);
    const startLsn = psql(cluster.conn, 'select pg_current_wal_lsn()');

    log(`pgbench until ${walMb} MiB of WAL`);
    while (lsnBytes(psql(cluster.conn, 'select pg_current_wal_lsn()')) - lsnBytes(startLsn) < walMb * 1024 * 1024) {
      sh(`${PGBIN}/pgbench`, [
        '-n',
        '-c',
        String(clients),
        '-j',
        String(clients),
        '-T',
        '5',
        '-h',
        cluster.conn.host,
        '-p',
        String(cluster.port),
        '-U',
        'postgres',
        'postgres',
      ]);
    }
    const target = psql(cluster.conn, 'select pg_current_wal_lsn()');
    results.walBytesToTarget = lsnBytes(target) - lsnBytes(startLsn);
    sh(`${PGBIN}/pgbench`, ['-n', '-c', '1', '-T', '2', '-h', cluster.conn.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres']);
    switchAndWaitArchived(cluster.conn);
    results.target = target;
    log(`target LSN ${target}, ${(results.walBytesToTarget / 1048576).toFixed(0)} MiB of WAL after the backups`);
    pgCtlStop(cluster.dataDir);

    // rookery: one command restores, replays and waits for promotion.
    const rookeryParent = mkPgDir(path.join(root, 'restore-rookery'), 0o755);
    const rookeryData = path.join(rookeryParent, 'data');
    const rookeryPort = await freePort();
    trackStarted(rookeryData);
    log('rookery restore --target-lsn');
    // Shared machine: the 1/5/15-minute load average before each restore goes into the results.
    results.loadAverage = { beforeRookery: os.loadavg().map((value) => Number(value.toFixed(2))) };
    let t = process.hrtime.bigint();
    sh(process.execPath, [
      ROOKERY,
      'restore',
      '--tier',
      'oltp',
      '--to',
      rookeryData,
      '--target-lsn',
      target,
      '--start',
      '--port',
      String(rookeryPort),
      '--archive-mode',
      'off',
      '--repo',
      repo,
    ]);
    waitReadWrite({ host: '127.0.0.1', port: rookeryPort });
    results.rookeryS = seconds(t);
    // "Not archived" answers to the restored server's restore_command: by bin/rookery-wal-get from
    // a prefetcher marker (no node started) or by node (the marker had aged, or there was none).
    const serverLog = readFileSync(path.join(rookeryData, 'rookery-start.log'), 'utf8');
    const notArchived = serverLog.split('\n').filter((line) => /is not in the archive/.test(line));
    results.notArchivedAnswers = {
      shell: notArchived.filter((line) => line.includes('(checked by the prefetcher)')).length,
      node: notArchived.filter((line) => !line.includes('(checked by the prefetcher)')).length,
    };
    const rookeryData1 = fingerprint({ host: '127.0.0.1', port: rookeryPort });
    pgCtlStop(rookeryData);

    // pgBackRest: restore with the same target, then start and wait for promotion.
    const pgbrData = mkPgDir(path.join(root, 'restore-pgbackrest'));
    const pgbrPort = await freePort();
    const sock = mkPgDir(path.join(root, 'sock-pgbr'), 0o755);
    log('pgbackrest restore --type=lsn');
    results.loadAverage.beforePgBackRest = os.loadavg().map((value) => Number(value.toFixed(2)));
    t = process.hrtime.bigint();
    asPostgres('pgbackrest', [
      `--config=${pb.conf}`,
      `--stanza=${STANZA}`,
      `--pg1-path=${pgbrData}`,
      '--process-max=2',
      '--type=lsn',
      `--target=${target}`,
      '--target-action=promote',
      '--archive-mode=off',
      'restore',
    ]);
    pgCtlStart(pgbrData, pgbrPort, sock, {}, path.join(root, 'restore-pgbackrest.log'));
    waitReadWrite({ host: sock, port: pgbrPort });
    results.pgbackrestS = seconds(t);
    const pgbrData1 = fingerprint({ host: sock, port: pgbrPort });
    pgCtlStop(pgbrData);

    // wal-get of a segment that is not archived: recovery probes past the archive's end this way
    // (a node process each when no prefetcher marker answers). A fail-fast answer; its time, once a
    // bound in apps/cli/src/wal.int-spec.ts, is measured here (median of 5 calls).
    const missingMs = [];
    for (let call = 0; call < 5; call++) {
      const began = process.hrtime.bigint();
      const run = sh(
        process.execPath,
        [ROOKERY, 'wal-get', '0000007F00000000000000FE', path.join(root, 'missing-segment'), '--tier', 'oltp', '--repo', repo],
        { allowFail: true },
      );
      if (run.status !== 1) throw new Error(`wal-get of a segment not archived exited ${run.status}, expected 1: ${run.stderr}`);
      missingMs.push(seconds(began) * 1000);
    }
    results.walGetMissingMs = missingMs.sort((a, b) => a - b)[2];

    results.sameData = rookeryData1 === pgbrData1;
    results.fingerprints = { rookery: rookeryData1, pgbackrest: pgbrData1 };
    results.ratio = results.rookeryS / results.pgbackrestS;
    const mib = results.walBytesToTarget / 1048576;
    console.log(
      [
        `WAL replayed to the target: ${mib.toFixed(0)} MiB (${Math.ceil(mib / 16)} segments), scale ${scale}`,
        `rookery restore --target-lsn --start:     ${results.rookeryS.toFixed(1)} s  (${(mib / results.rookeryS).toFixed(1)} MiB WAL/s)`,
        `pgbackrest restore --type=lsn + start:    ${results.pgbackrestS.toFixed(1)} s  (${(mib / results.pgbackrestS).toFixed(1)} MiB WAL/s)`,
        `rookery / pgBackRest: ${results.ratio.toFixed(2)}x; same data: ${results.sameData} (${rookeryData1})`,
        `wal-get of a segment not archived (node, no prefetch): ${results.walGetMissingMs.toFixed(0)} ms (median of 5)`,
        `"not archived" answers during rookery's restore: ${results.notArchivedAnswers.shell} by the shell from a marker, ${results.notArchivedAnswers.node} by node`,
        `load average before the restores: rookery ${results.loadAverage.beforeRookery.join(' / ')}, pgBackRest ${results.loadAverage.beforePgBackRest.join(' / ')}`,
      ].join('\n'),
    );
    if (args.out) writeFileSync(path.resolve(String(args.out)), `${JSON.stringify(results, null, 2)}\n`);
    if (!results.sameData) process.exitCode = 1;
  } finally {
    stopAllStarted();
    if (!args.keep) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error) => {
  stopAllStarted();
  console.error(error);
  process.exit(1);
});
