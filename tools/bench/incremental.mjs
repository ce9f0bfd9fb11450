#!/usr/bin/env node
// Block-level incrementals benchmark (issue 17, Done-when second bullet), one run of each, on the
// benchmark data set of run.mjs (pgbench -s --scale plus the mail table of --text-mb MiB) in a
// throwaway PostgreSQL 15 cluster that archives every WAL segment to rookery (wal-push) and to
// pgBackRest (archive-push, two repositories: repo1 file-level, repo2 bundle + block incremental).
//
//   full backups      rookery F0, pg_basebackup (server-zstd:level=3,workers=2, as run.mjs's
//                     reference), pgBackRest full on repo1 and repo2 (zst level 1, process-max 2)
//   6 "hours"         each: pgbench transactions touching about --change-pct % of the pages, then
//                     `rookery backup --type incremental` (I1..I6); after the first, pgBackRest
//                     --type=incr on both repositories (the same change)
//   F7                a rookery full of the same data as I6 (the "same final data size" reference)
//   "now"             a quarter of an hour's pgbench more, WAL archived, source stopped
//
// Then restores, files only unless said (CLI wall time, which includes rookery's fsync):
//   F0 and I1         not compared; their directories give the changed pages exactly (pages of I1's
//                     restore that differ from F0's, new files whole), zstd'ed as one stream
//   F7 vs I6          a full's restore vs full + 6 incrementals combined
//   --start           I6 + the short WAL since vs F0 + all WAL since, until the server answers
//                     read-write; both must hold the source's data at "now"
//   --delta           one hour of drift both ways, vs F7's full restore: I5 restored with --delta into
//                     F7's restore (a copy rolled back), F7 with --delta into I5's restore (a copy
//                     caught up); skipped with a note if the CLI has no --delta
//
// Peak RSS: the summed VmRSS of the rookery process tree, polled every 50 ms (lib/proc.mjs), of
// every rookery command run here (wal-push runs from the server's archive_command, not counted).
// Stored bytes of a backup: its manifest's artifacts (every kind, page indexes included); of a
// pgBackRest backup: its directory. Neither holds WAL (both tools archive it, the same segments).
//
//   node tools/bench/incremental.mjs [--scale 50] [--text-mb 200] [--change-pct 3] [--rounds 6]
//                                    [--out FILE] [--keep]
import { closeSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync, chownSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  PGBIN,
  clusterPids,
  createCluster,
  freePort,
  mkPgDir,
  pgCtlStart,
  pgCtlStop,
  pgTempDir,
  postgresIds,
  psql,
  stopAllStarted,
  trackStarted,
  waitReadWrite,
  switchAndWaitArchived,
} from './lib/cluster.mjs';
import { loadData } from './lib/data.mjs';
import { STANZA, pgbackrestArgs, pgbackrestAvailable, setupPgBackRest } from './lib/pgbackrest.mjs';
import { asPostgres, duBytes, runMonitored, sh } from './lib/proc.mjs';
import { ROOKERY, parseArgs } from './lib/cli.mjs';

const args = parseArgs(process.argv.slice(2));
const scale = Number(args.scale ?? 50);
const textMb = Number(args['text-mb'] ?? 200);
const changePct = Number(args['change-pct'] ?? 3);
const rounds = Number(args.rounds ?? 6);
const MiB = 1048576;
const PAGE = 8192;

const log = (msg) => process.stderr.write(`[incr-bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join('/');
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;

let root;
let cluster;
let repoUrl;
let confPath;
/** Every measured step: { name, wallS, peakRssBytes?, storedBytes?, load, note? }. */
const rows = [];
const results = { scale, textMb, changePct, rounds, notes: [] };

function rookeryEnv() {
  const env = { ...process.env };
  delete env.ROOKERY_CONFIG;
  delete env.ROOKERY_CATALOG_URL;
  env.NO_COLOR = '1';
  return env;
}

/** A rookery command on the bench's repository and config, monitored (wall, peak RSS of its tree). */
async function rookery(name, cmdArgs, { allowFail = false, config = confPath } = {}) {
  const before = load();
  const res = await runMonitored(process.execPath, [ROOKERY, ...cmdArgs, '--repo', repoUrl, '--config', config], {
    cwd: root,
    env: rookeryEnv(),
    watchPids: () => (cluster ? clusterPids(cluster.dataDir) : []),
  });
  if (res.code !== 0 && !allowFail) {
    throw new Error(`rookery ${name} exited ${res.code}: ${res.stderr.slice(-3000)}${res.stdout.slice(-1000)}`);
  }
  const row = {
    tool: 'rookery',
    name,
    wallS: res.wallS,
    peakRssBytes: res.peakRssBytes,
    peakRssSample: res.peakRssSample.join(','),
    cpuS: res.cpuS,
    serverCpuS: res.watchCpuS,
    load: before,
  };
  if (res.code === 0) rows.push(row);
  return { res, row };
}

/** Stored bytes of a manifest by artifact kind, and the incremental's pages. */
function manifestSummary(m) {
  const byKind = {};
  let pagesRead = 0;
  let pagesStored = 0;
  let wholeFiles = 0;
  for (const a of m.artifacts) {
    byKind[a.kind] = (byKind[a.kind] ?? 0) + a.storedBytes;
    if (a.incremental) {
      pagesRead += a.incremental.pagesRead;
      pagesStored += a.incremental.pagesStored;
      wholeFiles += a.incremental.wholeFiles;
    }
  }
  const storedBytes = m.artifacts.reduce((s, a) => s + a.storedBytes, 0);
  return { id: m.id, type: m.type, parent: m.parent, storedBytes, byKind, pagesRead, pagesStored, wholeFiles, stopLsn: m.stopLsn };
}

async function rookeryBackup(name, type) {
  log(`rookery backup --type ${type} (${name})`);
  const { res, row } = await rookery(`backup ${name}`, ['backup', '--tier', 'oltp', '--type', type, '--json']);
  const m = JSON.parse(res.stdout);
  const s = manifestSummary(m);
  if (s.type !== type) results.notes.push(`${name}: asked for ${type}, rookery took a ${s.type}`);
  row.storedBytes = s.storedBytes;
  if (s.pagesRead) row.note = `${s.pagesStored}/${s.pagesRead} pages = ${((100 * s.pagesStored) / s.pagesRead).toFixed(2)} %`;
  log(
    `  ${s.id} ${s.type} ${row.wallS.toFixed(1)} s, stored ${(s.storedBytes / MiB).toFixed(1)} MiB ${JSON.stringify(s.byKind)} ${row.note ?? ''}`,
  );
  return s;
}

function pgbench(transactions) {
  const clients = 2;
  const perClient = Math.max(1, Math.ceil(transactions / clients));
  sh(`${PGBIN}/pgbench`, [
    '-n',
    '-c',
    String(clients),
    '-j',
    String(clients),
    '-t',
    String(perClient),
    '-h',
    cluster.conn.host,
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    'postgres',
  ]);
  return perClient * clients;
}

const FINGERPRINT_SQL = `SELECT (SELECT count(*) FROM mail) || '/' || (SELECT coalesce(sum(hashtext(body)::bigint), 0) FROM mail) || '/' ||
  (SELECT count(*) FROM pgbench_accounts) || '/' || (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts) || '/' ||
  (SELECT count(*) FROM pgbench_history) || '/' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)`;
const fingerprint = (conn) => psql(conn, FINGERPRINT_SQL, { allowFail: true });

// ---------------------------------------------------------------- pgBackRest
/** The lib's stanza config plus repo2 with bundling and block incremental (2.45 has repo-block, as a beta feature). */
function setupPgBackRestTwoRepos() {
  const pb = setupPgBackRest(root, cluster);
  pb.repo2 = mkPgDir(path.join(pb.dir, 'repo2'));
  const text = readFileSync(pb.conf, 'utf8').replace(
    '[global]\n',
    [
      '[global]',
      `repo2-path=${pb.repo2}`,
      'repo2-retention-full=100',
      'repo2-bundle=y',
      'repo2-block=y',
      'beta=y',
      'compress-type=zst',
      'compress-level=1',
      '',
    ].join('\n'),
  );
  writeFileSync(pb.conf, text);
  return pb;
}

function pbLabels(repoDir) {
  try {
    return readdirSync(path.join(repoDir, 'backup', STANZA))
      .filter((d) => /^\d{8}-\d{6}F/.test(d))
      .sort();
  } catch {
    return [];
  }
}

async function pgbackrestBackup(pb, repo, type) {
  const repoDir = repo === 1 ? pb.repo : pb.repo2;
  const variant = repo === 1 ? 'file-level' : 'block incremental (repo-bundle + repo-block)';
  log(`pgbackrest backup --type=${type} repo${repo} (${variant})`);
  const before = new Set(pbLabels(repoDir));
  const loadBefore = load();
  const res = await runMonitored(
    'runuser',
    pgbackrestArgs(pb, 'backup', [`--repo=${repo}`, `--type=${type}`, '--start-fast', '--process-max=2']),
    { watchPids: () => clusterPids(cluster.dataDir) },
  );
  if (res.code !== 0) {
    results.notes.push(`pgbackrest ${type} repo${repo} failed: ${res.stderr.slice(-500)}`);
    log(`  FAILED ${res.stderr.slice(-1500)}`);
    return null;
  }
  const label = pbLabels(repoDir).find((l) => !before.has(l));
  // the backup's directory only: rookery's backups hold no WAL either (both archive it)
  const dirBytes = duBytes(path.join(repoDir, 'backup', STANZA, label));
  const row = {
    tool: 'pgbackrest',
    name: `backup ${type} repo${repo} ${variant}`,
    wallS: res.wallS,
    peakRssBytes: res.peakRssBytes,
    storedBytes: dirBytes,
    peakRssSample: res.peakRssSample.join(','),
    cpuS: res.cpuS,
    serverCpuS: res.watchCpuS,
    load: loadBefore,
    note: label,
  };
  rows.push(row);
  log(`  ${label} ${res.wallS.toFixed(1)} s, ${row.note}`);
  return { label, ...row };
}

// ---------------------------------------------------------------- changed pages
/** Regular files under dir (relative paths), following pg_tblspc's links. */
function walk(dir, rel = '', out = []) {
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory() || (e.isSymbolicLink() && statSync(path.join(dir, r)).isDirectory())) walk(dir, r, out);
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/**
 * The pages of `after` (a restored data directory) that differ from `before`'s (the parent's
 * restore): every 8 KiB block of a relation file (base/, global/, pg_tblspc/) that differs or lies
 * past the old end, new files whole. Written to one file and compressed as one stream with the
 * zstd CLI (-1 as rookery's default server-side level, and -3): the ideal an incremental of this
 * change could store, without any map.
 */
function changedPages(before, after) {
  const out = path.join(root, 'changed-pages.bin');
  const fd = openSync(out, 'w');
  let pages = 0;
  let totalPages = 0;
  let newFiles = 0;
  for (const rel of walk(after)) {
    if (!/^(base|global|pg_tblspc)\//.test(rel)) continue;
    const a = readFileSync(path.join(after, rel));
    totalPages += Math.ceil(a.length / PAGE);
    let b = null;
    try {
      b = readFileSync(path.join(before, rel));
    } catch {
      newFiles++;
    }
    for (let off = 0; off < a.length; off += PAGE) {
      const pa = a.subarray(off, off + PAGE);
      if (b && off + PAGE <= b.length && pa.equals(b.subarray(off, off + PAGE))) continue;
      writeSync(fd, pa);
      pages++;
    }
  }
  closeSync(fd);
  const z = (level) => Number(sh('sh', ['-c', `zstd -q ${level} -T1 -c "$1" | wc -c`, 'sh', out]).stdout.trim());
  const r = { pages, totalPages, newFiles, rawBytes: statSync(out).size, zstd1: z('-1'), zstd3: z('-3') };
  rmSync(out);
  return r;
}

// ---------------------------------------------------------------- restores
/** A files-only restore of backup id into a new directory (CLI wall, fsync included). */
async function restoreFiles(name, id, extra = [], { config } = {}) {
  const parent = mkPgDir(path.join(root, `restore-${name}`), 0o755);
  const target = path.join(parent, 'data');
  log(`rookery restore --backup ${id} (${name})`);
  const { res, row } = await rookery(`restore ${name}`, ['restore', '--tier', 'oltp', '--backup', id, '--to', target, '--json', ...extra], {
    config,
  });
  try {
    const { planMs, extractMs, syncMs } = JSON.parse(res.stdout).timings;
    row.note = `plan ${(planMs / 1000).toFixed(1)} s, extract ${(extractMs / 1000).toFixed(1)} s, sync ${(syncMs / 1000).toFixed(1)} s`;
  } catch {
    /* no timings */
  }
  log(`  ${row.wallS.toFixed(1)} s ${row.note ?? ''}`);
  return { target, row };
}

/** restore --start of backup id (archive off) until the server answers read-write; data at "now" checked. */
async function restoreToNow(name, id, nowFingerprint) {
  const parent = mkPgDir(path.join(root, `restore-${name}`), 0o755);
  const target = path.join(parent, 'data');
  const port = await freePort();
  trackStarted(target);
  log(`rookery restore --backup ${id} --start (${name})`);
  const t0 = process.hrtime.bigint();
  const { res, row } = await rookery(`restore ${name}`, [
    'restore',
    '--tier',
    'oltp',
    '--backup',
    id,
    '--to',
    target,
    '--start',
    '--port',
    String(port),
    '--archive-mode',
    'off',
    '--json',
  ]);
  waitReadWrite({ host: '127.0.0.1', port }, 1200);
  row.wallS = seconds(t0);
  const got = fingerprint({ host: '127.0.0.1', port });
  row.dataOk = got === nowFingerprint;
  try {
    const t = JSON.parse(res.stdout).timings;
    row.note = `extract ${(t.extractMs / 1000).toFixed(1)} s, start+replay ${(t.startMs / 1000).toFixed(1)} s`;
  } catch {
    /* no timings */
  }
  row.note = `${row.note ?? ''}; data ${row.dataOk ? 'OK' : `MISMATCH ${got} vs ${nowFingerprint}`}`;
  log(`  ${row.wallS.toFixed(1)} s ${row.note}`);
  pgCtlStop(target);
  rmSync(parent, { recursive: true, force: true });
  return row;
}

/**
 * restore --delta of backup id into target (an existing restored directory, not running). Then,
 * not counted, the directory is started: it replays to the end of the archive and must hold the
 * source's data at "now".
 */
async function deltaRestore(name, id, target, nowFingerprint) {
  log(`rookery ${name} (--backup ${id})`);
  const { res, row } = await rookery(name, ['restore', '--tier', 'oltp', '--backup', id, '--to', target, '--delta', '--json'], {
    allowFail: true,
  });
  if (res.code !== 0) {
    results.notes.push(`${name} failed (exit ${res.code}): ${res.stderr.slice(-800)}`);
    log(`  FAILED ${res.stderr.slice(-1500)}`);
    return null;
  }
  const bits = [];
  try {
    const d = JSON.parse(res.stdout).delta;
    if (d) {
      bits.push(
        `${d.filesKept} files kept, ${d.filesRewritten} rewritten (${d.pagesRewritten} pages), ${d.filesCreated} created, ${d.entriesRemoved} removed, ${(d.bytesWritten / MiB).toFixed(1)} MiB written`,
      );
    }
  } catch {
    /* no delta figures */
  }
  const slug = name.replace(/[^a-z0-9]+/gi, '_');
  const sock = mkPgDir(path.join(root, `sock-${slug}`), 0o755);
  const port = await freePort();
  try {
    pgCtlStart(target, port, sock, { archive_mode: 'off' }, path.join(root, `${slug}.log`));
    waitReadWrite({ host: sock, port }, 1200);
    const got = fingerprint({ host: sock, port });
    bits.push(`data after replay ${got === nowFingerprint ? 'OK' : `MISMATCH ${got} vs ${nowFingerprint}`}`);
  } catch (e) {
    bits.push(`started server: ${e.message.split('\n')[0]}`);
  }
  pgCtlStop(target);
  row.note = bits.join('; ');
  log(`  ${row.wallS.toFixed(1)} s ${row.note}`);
  return row;
}

// ---------------------------------------------------------------- main
async function main() {
  const t0 = Date.now();
  if (!pgbackrestAvailable()) throw new Error('pgbackrest is not installed: apt-get install -y pgbackrest');
  root = pgTempDir('rookery-bench-incr-');
  sh('chmod', ['711', root]);
  log(`work dir ${root}, load ${load()}`);
  cluster = await createCluster(mkPgDir(path.join(root, 'src'), 0o755));
  const loaded = loadData(cluster, { scale, textMb, log });
  const dbBytes = Number(psql(cluster.conn, 'SELECT sum(pg_database_size(datname)) FROM pg_database'));
  results.dbBytes = dbBytes;
  results.mailRows = loaded.mailRows;
  log(`database ${(dbBytes / MiB).toFixed(0)} MiB`);

  // rookery's repository (wal-push writes oltp/wal as postgres) and its config: chains not cut short
  const repoDir = mkPgDir(path.join(root, 'rookery-repo'), 0o755);
  mkPgDir(path.join(repoDir, 'oltp'), 0o755);
  mkPgDir(path.join(repoDir, 'oltp', 'wal'), 0o755);
  repoUrl = `file://${repoDir}`;
  confPath = path.join(root, 'rookery.yaml');
  writeFileSync(
    confPath,
    [
      'tiers:',
      '  oltp:',
      `    pgUrl: ${cluster.url}`,
      '    policy:',
      '      physical:',
      '        incremental:',
      '          maxChainFraction: 10',
      '',
    ].join('\n'),
  );
  const { uid, gid } = postgresIds();
  chownSync(confPath, uid, gid);

  const pb = setupPgBackRestTwoRepos();
  const archive = [
    `${process.execPath} ${ROOKERY} wal-push %p --tier oltp --repo ${repoUrl} --config ${confPath}`,
    `pgbackrest --config=${pb.conf} --stanza=${STANZA} archive-push %p`,
  ].join(' && ');
  psql(cluster.conn, `ALTER SYSTEM SET archive_command = '${archive}'`);
  psql(cluster.conn, 'SELECT pg_reload_conf()');
  asPostgres('pgbackrest', [`--config=${pb.conf}`, `--stanza=${STANZA}`, 'stanza-create']);
  psql(cluster.conn, 'CHECKPOINT');
  switchAndWaitArchived(cluster.conn);

  // ---- fulls
  {
    const dir = path.join(root, 'pgbb');
    log('pg_basebackup server-zstd:level=3,workers=2');
    const loadBefore = load();
    const res = await runMonitored(
      `${PGBIN}/pg_basebackup`,
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(cluster.port),
        '-U',
        'postgres',
        '-Ft',
        '-X',
        'fetch',
        '--checkpoint=fast',
        '-D',
        dir,
        '--compress=server-zstd:level=3,workers=2',
      ],
      { watchPids: () => clusterPids(cluster.dataDir) },
    );
    if (res.code !== 0) throw new Error(`pg_basebackup failed: ${res.stderr}`);
    rows.push({
      tool: 'pg_basebackup',
      name: 'backup full server-zstd:level=3,workers=2',
      wallS: res.wallS,
      cpuS: res.cpuS,
      serverCpuS: res.watchCpuS,
      storedBytes: duBytes(dir),
      load: loadBefore,
    });
    rmSync(dir, { recursive: true, force: true });
  }
  const f0 = await rookeryBackup('F0', 'full');
  const pbFull1 = await pgbackrestBackup(pb, 1, 'full');
  const pbFull2 = await pgbackrestBackup(pb, 2, 'full');

  // ---- 6 "hours": a change of about changePct % of the pages, then an incremental
  const pages = dbBytes / PAGE;
  let txPerRound = Math.max(50, Math.round(((changePct / 100) * pages) / 2.5));
  const chain = [];
  const fingerprints = [];
  let pbIncr1 = null;
  let pbIncr2 = null;
  for (let k = 1; k <= rounds; k++) {
    const t = process.hrtime.bigint();
    const n = pgbench(txPerRound);
    log(`hour ${k}: pgbench ${n} transactions in ${seconds(t).toFixed(1)} s`);
    fingerprints.push(fingerprint(cluster.conn));
    const inc = await rookeryBackup(`I${k}`, 'incremental');
    inc.transactions = n;
    chain.push(inc);
    if (k === 1) {
      pbIncr1 = pbFull1 && (await pgbackrestBackup(pb, 1, 'incr'));
      pbIncr2 = pbFull2 && (await pgbackrestBackup(pb, 2, 'incr'));
      // later hours aim at changePct from the first hour's measured fraction
      const frac = inc.pagesRead ? (100 * inc.pagesStored) / inc.pagesRead : changePct;
      txPerRound = Math.round(Math.min(5, Math.max(0.2, changePct / Math.max(frac, 0.01))) * txPerRound);
    }
  }
  const f7 = await rookeryBackup('F7', 'full');
  results.chain = chain;
  results.fulls = { f0, f7 };

  // ---- "now": a quarter of an hour's load more, archived; the source stops
  pgbench(Math.round(txPerRound / 4));
  const nowFingerprint = fingerprint(cluster.conn);
  const nowLsn = psql(cluster.conn, 'select pg_current_wal_lsn()');
  switchAndWaitArchived(cluster.conn);
  results.walSinceF0MiB = Number(psql(cluster.conn, `select pg_wal_lsn_diff('${nowLsn}', '${f0.stopLsn}')`)) / MiB;
  results.walSinceI6MiB = Number(psql(cluster.conn, `select pg_wal_lsn_diff('${nowLsn}', '${chain[chain.length - 1].stopLsn}')`)) / MiB;
  pgCtlStop(cluster.dataDir);
  cluster = null;
  log(
    `now: ${nowFingerprint}; WAL since F0 ${results.walSinceF0MiB.toFixed(0)} MiB, since I${rounds} ${results.walSinceI6MiB.toFixed(0)} MiB`,
  );

  // ---- the changed pages of hour 1, from restores of F0 and I1
  const rF0 = await restoreFiles('F0', f0.id);
  const rI1 = await restoreFiles('I1', chain[0].id);
  log('changed pages I1 vs F0');
  results.changed = changedPages(rF0.target, rI1.target);
  log(`  ${JSON.stringify(results.changed)}`);
  rmSync(path.dirname(rF0.target), { recursive: true, force: true });
  rmSync(path.dirname(rI1.target), { recursive: true, force: true });

  // ---- a full's restore vs full + 6 incrementals
  const rF7 = await restoreFiles('F7 (full)', f7.id);
  const rI6 = await restoreFiles(`I${rounds} (full + ${rounds} incrementals)`, chain[rounds - 1].id);
  rmSync(path.dirname(rI6.target), { recursive: true, force: true });
  // The same chain by the plain path (restore.chainInPlace off: the full's tar through the combiner).
  const plainConf = path.join(root, 'rookery-plain-chain.yaml');
  writeFileSync(plainConf, `${readFileSync(confPath, 'utf8')}restore:\n  chainInPlace: false\n`);
  const rI6plain = await restoreFiles(`I${rounds} combined (restore.chainInPlace off)`, chain[rounds - 1].id, [], { config: plainConf });
  rmSync(path.dirname(rI6plain.target), { recursive: true, force: true });

  // ---- restore --delta at one hour of drift, both ways: I5 (a chain) into F7's restore (a copy
  // rolled back an hour), then F7 (a full) into I5's restore (a copy an hour behind caught up)
  const help = sh(process.execPath, [ROOKERY, 'restore', '--help'], { env: rookeryEnv() }).stdout;
  if (!help.includes('--delta')) {
    results.notes.push('restore --delta: not in this CLI (rookery restore --help has no --delta); not measured');
    log('restore --delta: not available, skipped');
    rmSync(path.dirname(rF7.target), { recursive: true, force: true });
  } else {
    const prev = chain[rounds - 2];
    await deltaRestore(`restore --delta I${rounds - 1} into F7's restore`, prev.id, rF7.target, nowFingerprint);
    rmSync(path.dirname(rF7.target), { recursive: true, force: true });
    const rI5 = await restoreFiles(`I${rounds - 1} (the copy for the next delta)`, prev.id);
    await deltaRestore(`restore --delta F7 into I${rounds - 1}'s restore`, f7.id, rI5.target, nowFingerprint);
    rmSync(path.dirname(rI5.target), { recursive: true, force: true });
  }

  // ---- time to a started server at "now"
  results.nowChain = await restoreToNow(`I${rounds} + WAL to now`, chain[rounds - 1].id, nowFingerprint);
  results.nowFull = await restoreToNow('F0 + WAL to now', f0.id, nowFingerprint);

  // ---- report
  results.rows = rows;
  results.pb = { pbFull1, pbFull2, pbIncr1, pbIncr2 };
  results.fingerprints = fingerprints;
  results.totalS = (Date.now() - t0) / 1000;
  report({ chain, rF7: rF7.row, rI6: rI6.row, rI6plain: rI6plain.row, pbIncr1, pbIncr2 });
}

function report({ chain, rF7, rI6, rI6plain, pbIncr1, pbIncr2 }) {
  const L = [];
  const mib = (b) => (b / MiB).toFixed(1);
  L.push(
    `database ${mib(results.dbBytes)} MiB (pgbench scale ${scale} + mail ${textMb} MiB); ${os.cpus().length} cores (${os.cpus()[0]?.model}); ` +
      `${sh(`${PGBIN}/postgres`, ['--version']).stdout.trim()}; ${sh('pgbackrest', ['version']).stdout.trim()}; node ${process.version}`,
  );
  L.push(`command: node tools/bench/incremental.mjs ${process.argv.slice(2).join(' ')}`.trim());
  L.push('');
  L.push('| tool | step | wall s | tool CPU s | server CPU s | stored MiB | peak RSS MiB | load 1/5/15 before | note |');
  L.push('|---|---|--:|--:|--:|--:|--:|---|---|');
  for (const r of rows) {
    L.push(
      `| ${r.tool} | ${r.name} | ${r.wallS.toFixed(1)} | ${r.cpuS == null ? '' : r.cpuS.toFixed(1)} | ${r.serverCpuS ? r.serverCpuS.toFixed(1) : ''} | ${r.storedBytes == null ? '' : mib(r.storedBytes)} | ${r.peakRssBytes == null ? '' : (r.peakRssBytes / MiB).toFixed(0)} | ${r.load} | ${r.note ?? ''} |`,
    );
  }
  L.push('');
  const i1 = chain[0];
  const ch = results.changed;
  const checks = [];
  const add = (name, value, limit, detail) => checks.push({ name, value, limit, pass: value == null ? null : value <= limit, detail });
  L.push(
    `hour 1 change: ${i1.transactions} pgbench transactions; rookery: ${i1.pagesStored} of ${i1.pagesRead} pages stored = ${((100 * i1.pagesStored) / i1.pagesRead).toFixed(2)} %, ${i1.wholeFiles} files whole; ` +
      `restores F0 vs I1: ${ch.pages} of ${ch.totalPages} relation pages differ = ${((100 * ch.pages) / ch.totalPages).toFixed(2)} % (${ch.newFiles} new files), ` +
      `${mib(ch.rawBytes)} MiB raw, zstd -1 ${mib(ch.zstd1)} MiB, zstd -3 ${mib(ch.zstd3)} MiB`,
  );
  L.push(
    `hours 2..${rounds}: ${chain
      .slice(1)
      .map((c) => `${((100 * c.pagesStored) / c.pagesRead).toFixed(2)} %`)
      .join(', ')} of pages stored`,
  );
  L.push(`I1 stored by kind: ${JSON.stringify(Object.fromEntries(Object.entries(i1.byKind).map(([k, v]) => [k, +mib(v)])))} MiB`);
  L.push(`WAL since F0 ${results.walSinceF0MiB.toFixed(0)} MiB, since I${rounds} ${results.walSinceI6MiB.toFixed(0)} MiB`);
  L.push('');
  if (pbIncr1)
    add(
      'I1 stored / pgBackRest incr (file-level)',
      i1.storedBytes / pbIncr1.storedBytes,
      0.2,
      `${mib(i1.storedBytes)} / ${mib(pbIncr1.storedBytes)} MiB`,
    );
  if (pbIncr2)
    checks.push({
      name: 'I1 stored / pgBackRest incr (block incremental, not a target)',
      value: i1.storedBytes / pbIncr2.storedBytes,
      limit: null,
      pass: null,
      detail: `${mib(i1.storedBytes)} / ${mib(pbIncr2.storedBytes)} MiB`,
    });
  add('I1 stored / changed pages zstd -1', i1.storedBytes / ch.zstd1, 1.3, `${mib(i1.storedBytes)} / ${mib(ch.zstd1)} MiB`);
  const i1Pages = i1.byKind['base-incremental'] ?? 0;
  checks.push({
    name: 'I1 base-incremental artifact alone (no page index, no backup_manifest) / changed pages zstd -1',
    value: i1Pages / ch.zstd1,
    limit: null,
    pass: null,
    detail: `${mib(i1Pages)} / ${mib(ch.zstd1)} MiB`,
  });
  const f0Row = rows.find((r) => r.name === 'backup F0');
  const i1Row = rows.find((r) => r.name === 'backup I1');
  const pgbb = rows.find((r) => r.tool === 'pg_basebackup');
  add(
    'I1 backup time / F0 backup time',
    i1Row.wallS / f0Row.wallS,
    1,
    `${i1Row.wallS.toFixed(1)} / ${f0Row.wallS.toFixed(1)} s (pg_basebackup ${pgbb.wallS.toFixed(1)} s)`,
  );
  add(
    `restore I${rounds} (full + ${rounds}) / restore F7 (full)`,
    rI6.wallS / rF7.wallS,
    1.2,
    `${rI6.wallS.toFixed(1)} / ${rF7.wallS.toFixed(1)} s`,
  );
  checks.push({
    name: `(plain path, not a target) restore I${rounds} combined (restore.chainInPlace off) / restore F7 (full)`,
    value: rI6plain.wallS / rF7.wallS,
    limit: null,
    pass: null,
    detail: `${rI6plain.wallS.toFixed(1)} / ${rF7.wallS.toFixed(1)} s`,
  });
  checks.push({
    name: `to "now": I${rounds} + WAL / F0 + WAL (no target)`,
    value: results.nowChain.wallS / results.nowFull.wallS,
    limit: null,
    pass: null,
    detail: `${results.nowChain.wallS.toFixed(1)} / ${results.nowFull.wallS.toFixed(1)} s`,
  });
  const deltas = rows.filter((r) => r.name.startsWith('restore --delta'));
  if (deltas.length === 0) add('restore --delta / restore F7 (full)', null, 0.25, 'not measured');
  for (const d of deltas)
    add(`${d.name} / restore F7 (full)`, d.wallS / rF7.wallS, 0.25, `${d.wallS.toFixed(1)} / ${rF7.wallS.toFixed(1)} s`);
  const rook = rows.filter((r) => r.tool === 'rookery');
  const peak = Math.max(...rook.map((r) => r.peakRssBytes));
  add('rookery peak RSS MB (10^6)', peak / 1e6, 300, rook.find((r) => r.peakRssBytes === peak).name);
  L.push('target checks:');
  for (const c of checks) {
    const v = c.pass == null ? (c.limit == null ? 'info' : 'n/a ') : c.pass ? 'PASS' : 'FAIL';
    L.push(
      `  ${v}  ${c.name}: ${c.value == null ? 'n/a' : c.value.toFixed(3)}${c.limit == null ? '' : ` (target <= ${c.limit})`} — ${c.detail}`,
    );
  }
  for (const n of results.notes) L.push(`note: ${n}`);
  L.push(`total ${results.totalS.toFixed(0)} s`);
  results.checks = checks;
  console.log(L.join('\n'));
  if (args.out) writeFileSync(path.resolve(String(args.out)), `${JSON.stringify(results, null, 2)}\n`);
}

// Killed: stop every server this run started (the source and restored ones) before going.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`${sig}: stopping servers`);
    if (cluster) pgCtlStop(cluster.dataDir, 'immediate');
    stopAllStarted();
    if (root && !args.keep) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  });
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  log(`FAILED: ${e.stack ?? e}`);
  exitCode = 1;
} finally {
  try {
    if (cluster) pgCtlStop(cluster.dataDir);
  } catch (e) {
    log(`stop source: ${e.message}`);
  }
  stopAllStarted();
  if (root && !args.keep) rmSync(root, { recursive: true, force: true });
  else if (root) log(`kept ${root}`);
}
process.exitCode = exitCode;
