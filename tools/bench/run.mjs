#!/usr/bin/env node
// rookery benchmark (DESIGN §12, issue item 9): times `rookery backup` / `rookery restore` of one
// throwaway PostgreSQL 15 cluster against pg_basebackup and pgBackRest, all in one run, and prints
// wall time, throughput, stored size, compression ratio and peak RSS for each, then the targets.
//
//   node tools/bench/run.mjs [--scale 50] [--text-mb 200] [--out results.json]
//                            [--only rookery,pgbackrest,pg_basebackup] [--keep] [--repeat 1] [--tablespace]
//
// --tablespace: the same data set with the mail table and pgbench_accounts' primary key (about a
// third of it) in a user tablespace outside the data directory; every restore remaps it into a
// directory of its own beside the restored data directory (rookery and pgBackRest with
// --tablespace-map-all, pg_basebackup's tars by an edited tablespace_map) and is checked to read it
// from there.
//
// Peak RSS: the harness polls /proc/<pid>/status VmRSS of the tool and all its descendants every
// 50 ms and sums them (PostgreSQL server processes excluded: see the server CPU column instead).
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  PGBIN,
  clusterPids,
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
} from './lib/cluster.mjs';
import { TABLESPACE, loadData, moveToTablespace } from './lib/data.mjs';
import {
  backupDir,
  backupLabels,
  enableArchiving,
  pgbackrestArgs,
  pgbackrestAvailable,
  setupPgBackRest,
  STANZA,
} from './lib/pgbackrest.mjs';
import { duBytes, runMonitored, sh, syncTree } from './lib/proc.mjs';
import { printTable, targetChecks, threadSummary } from './lib/report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '../..');
const ROOKERY = path.join(REPO_ROOT, 'bin/rookery.js');

function parseArgs(argv) {
  const o = { scale: 50, textMb: 200, out: null, only: null, keep: false, repeat: 1, tablespace: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--scale') o.scale = Number(val());
    else if (a === '--text-mb') o.textMb = Number(val());
    else if (a === '--out') o.out = path.resolve(val());
    else if (a === '--only')
      o.only = val()
        .split(',')
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
    else if (a === '--keep') o.keep = true;
    else if (a === '--repeat') o.repeat = Math.max(1, Number(val()));
    else if (a === '--tablespace') o.tablespace = true;
    else if (a === '--help' || a === '-h') {
      console.log(
        'usage: node tools/bench/run.mjs [--scale N] [--text-mb N] [--out FILE] [--only rookery,pgbackrest,pg_basebackup] [--keep] [--repeat N] [--tablespace]',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  if (!(o.scale >= 0) || !(o.textMb >= 0)) throw new Error('--scale and --text-mb must be numbers >= 0');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
/** --only matches a tool name ("rookery") or a tool prefix ("pg_base", "pgbackrest"). */
const want = (tool) => !opts.only || opts.only.some((w) => tool.toLowerCase().startsWith(w) || w.startsWith(tool.toLowerCase()));

const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const results = [];
let root;
let cluster;

function cleanup() {
  stopAllStarted();
  if (root && !opts.keep) rmSync(root, { recursive: true, force: true });
  else if (root) log(`kept ${root}`);
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    log(`${sig}: stopping servers`);
    cleanup();
    process.exit(130);
  });
}

/**
 * Keep the fastest of --repeat runs (wall), the highest peak RSS, and a restore's data check of
 * every round: one round's mismatch marks the row, whichever round was fastest.
 */
function record(r) {
  const same = results.find((x) => x.tool === r.tool && x.variant === r.variant && x.op === r.op);
  if (!same) {
    r.runs = [r.wallS];
    results.push(r);
    return;
  }
  same.runs.push(r.wallS);
  const peak = Math.max(same.peakRssBytes, r.peakRssBytes);
  const mismatch = [same, r].find((x) => x.dataOk === false)?.check;
  if (r.wallS < same.wallS) Object.assign(same, r, { runs: same.runs });
  same.peakRssBytes = peak;
  if (mismatch) Object.assign(same, { dataOk: false, check: mismatch });
}

function fail(tool, variant, op, res, extra = '') {
  const msg = `${tool} ${variant} ${op} failed (exit ${res.code}${res.signal ? ` ${res.signal}` : ''}) ${extra}\n${res.stderr.slice(-3000)}\n${res.stdout.slice(-1000)}`;
  log(msg);
  results.push({ tool, variant, op, failed: true, error: msg.slice(0, 4000) });
}

const srcWatch = () => clusterPids(cluster.dataDir);

/** Row counts and a content hash, compared between the source and every restored server. */
const FINGERPRINT_SQL = `SELECT (SELECT count(*) FROM mail) || '/' || (SELECT coalesce(sum(hashtext(body)::bigint), 0) FROM mail) || '/' ||
  (SELECT count(*) FROM pgbench_accounts) || '/' || (SELECT coalesce(sum(abalance), 0) FROM pgbench_accounts)`;
/** With --tablespace, also pgbench_accounts counted through its primary key (an index-only scan of the tablespace's index). */
const INDEX_COUNT_SQL = 'SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM pgbench_accounts';
let sourceFingerprint = null;
let tablespace = null; // --tablespace: { name, oid, location, bytes, relations }
function fingerprint(conn) {
  const rows = psql(conn, FINGERPRINT_SQL, { allowFail: true });
  return tablespace ? `${rows}/${psql(conn, INDEX_COUNT_SQL, { allowFail: true })}` : rows;
}
/**
 * The restored server's data against the source's; with --tablespace, also that it reads the
 * tablespace from under tsDir (a link back to the source's directory would pass the data check).
 */
function checkRestored(conn, tsDir) {
  const got = fingerprint(conn);
  if (got !== sourceFingerprint) return `DATA MISMATCH: restored ${got} vs source ${sourceFingerprint}`;
  if (!tablespace) return `data OK (${got})`;
  const at = psql(conn, `SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = '${TABLESPACE}'`, { allowFail: true });
  if (!at?.startsWith(`${tsDir}/`)) return `TABLESPACE MISPLACED: ${TABLESPACE} at ${at}, expected under ${tsDir}`;
  return `data OK (${got}), ${TABLESPACE} at ${at}`;
}
/** With --tablespace, the (empty) directory a restore puts the tablespaces under; null without. */
const tablespaceDir = (base) => (tablespace ? mkPgDir(`${base}-ts`) : null);
const slug = (v) => v.replace(/[^a-z0-9]+/gi, '_');
const removeUnlessKept = (dir) => {
  if (!opts.keep) rmSync(dir, { recursive: true, force: true });
};

// ---------------------------------------------------------------- pg_basebackup
const labels = {}; // pgBackRest variant -> newest backup label
const pgbbDirs = {}; // pg_basebackup variant -> directory of its newest backup
const repos = {}; // rookery variant -> repository of its newest backup

async function runPgBasebackup(dbBytes, rep) {
  const variants = [
    ['none', []],
    ['client-lz4', ['--compress=client-lz4']],
    ['server-zstd:level=3,workers=2', ['--compress=server-zstd:level=3,workers=2']],
  ];
  for (const [variant, extra] of variants) {
    {
      const dir = path.join(root, 'pgbb', variant.replace(/[^a-z0-9]+/gi, '_'));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(path.dirname(dir), { recursive: true });
      log(`pg_basebackup ${variant}`);
      const res = await runMonitored(
        `${PGBIN}/pg_basebackup`,
        ['-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-Ft', '-X', 'fetch', '--checkpoint=fast', '-D', dir, ...extra],
        { watchPids: srcWatch },
      );
      if (res.code !== 0) {
        fail('pg_basebackup', variant, 'backup', res);
        continue;
      }
      record({ tool: 'pg_basebackup', variant, op: 'backup', ...pick(res), storedBytes: duBytes(dir), dbBytes });
      pgbbDirs[variant] = dir;
    }
  }
  // Restores of the uncompressed and the server-zstd backup, as an operator would do them.
  for (const variant of rotate(['none', 'server-zstd:level=3,workers=2'], rep)) {
    if (pgbbDirs[variant]) await restorePgBasebackup(variant, pgbbDirs[variant], dbBytes, rep);
  }
  for (const [variant, dir] of Object.entries(pgbbDirs)) {
    if (variant !== 'none') rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Extracts a pg_basebackup -Ft backup as the postgres user: base.tar[.zst|.lz4] into the data
 * directory, each <oid>.tar into $2/<oid>, and a tablespace_map naming those directories in
 * place of the archive's one (-T remaps only plain-format backups; with tar format, PostgreSQL
 * makes pg_tblspc's links from tablespace_map when it starts). GNU tar recognises the codec.
 */
const PGBB_EXTRACT = `set -e
data=$1; ts=$2; shift 2
tar -xf "$1" -C "$data"; shift
for archive in "$@"; do
  oid=$(basename "$archive"); oid=\${oid%%.*}
  case $oid in ''|*[!0-9]*) echo "unexpected archive $archive" >&2; exit 1 ;; esac
  mkdir -m 700 "$ts/$oid"
  tar -xf "$archive" -C "$ts/$oid"
  printf '%s %s\\n' "$oid" "$ts/$oid" >> "$data/tablespace_map.new"
done
if [ -e "$data/tablespace_map.new" ]; then mv "$data/tablespace_map.new" "$data/tablespace_map"; fi`;

async function restorePgBasebackup(variant, dir, dbBytes, rep) {
  const archives = readdirSync(dir).filter((f) => /\.tar(\.zst|\.lz4)?$/.test(f));
  const base = archives.find((f) => f.startsWith('base.'));
  const others = archives.filter((f) => f !== base);
  log(`pg_basebackup restore ${variant} (${archives.join(', ')})`);
  // pg_basebackup ran as root; the postgres user restores (not counted)
  sh('chown', ['-R', 'postgres:postgres', dir]);
  const target = mkPgDir(path.join(root, `restore-pgbb-${slug(variant)}-${rep}`));
  const tsDir = tablespaceDir(target);
  const res = await runMonitored('runuser', [
    '-u',
    'postgres',
    '--',
    'sh',
    '-c',
    PGBB_EXTRACT,
    'sh',
    target,
    tsDir ?? '',
    ...[base, ...others].map((f) => path.join(dir, f)),
  ]);
  await startRestored({ tool: 'pg_basebackup', variant, rep, res, target, tsDir, dbBytes });
}

function pick(res) {
  return {
    wallS: res.wallS,
    peakRssBytes: res.peakRssBytes,
    peakRssSample: res.peakRssSample,
    cpuS: res.cpuS,
    procCpu: res.procCpu,
    serverCpuS: res.watchCpuS,
    serverDetail: res.watchDetail,
  };
}

// ---------------------------------------------------------------- codec CPU reference
/**
 * zstd / lz4 CLIs over the uncompressed pg_basebackup tar (page cache) to /dev/null: the CPU's
 * codec speed. With --tablespace, over base.tar and the tablespace's tar, one after the other.
 */
async function runCodecReference(dbBytes) {
  const dir = path.join(root, 'pgbb', 'none');
  if (!existsSync(path.join(dir, 'base.tar'))) return;
  const tars = readdirSync(dir)
    .filter((f) => f.endsWith('.tar'))
    .map((f) => path.join(dir, f));
  sh('sh', ['-c', 'cat "$@" > /dev/null', 'sh', ...tars]);
  const input = tars.length === 1 ? '-c "$1"' : '-c "$@"';
  const variants = [
    ['zstd-cli', '-1 -T1', `zstd -q -1 -T1 ${input} | wc -c`],
    ['zstd-cli', '-1 -T2', `zstd -q -1 -T2 ${input} | wc -c`],
    ['zstd-cli', '-3 -T2', `zstd -q -3 -T2 ${input} | wc -c`],
    ['lz4-cli', '-1', tars.length === 1 ? 'lz4 -q -1 -c "$1" | wc -c' : 'cat "$@" | lz4 -q -1 -c | wc -c'],
  ];
  for (const [tool, variant, cmd] of variants) {
    log(`${tool} ${variant} (reference)`);
    const res = await runMonitored('sh', ['-c', cmd, 'sh', ...tars]);
    if (res.code !== 0) {
      fail(tool, variant, 'compress tar', res);
      continue;
    }
    record({ tool, variant, op: 'compress tar', ...pick(res), serverCpuS: null, storedBytes: Number(res.stdout.trim()), dbBytes });
  }
}

// ---------------------------------------------------------------- pgBackRest
async function runPgBackRest(pb, dbBytes, rep) {
  const variants = [];
  for (const type of ['lz4', 'zst']) for (const pmax of [1, 2]) variants.push({ type, pmax });
  for (const v of variants) {
    const variant = `${v.type} pmax=${v.pmax}`;
    {
      log(`pgbackrest backup ${variant}`);
      const before = new Set(backupLabels(pb));
      const res = await runMonitored(
        'runuser',
        pgbackrestArgs(pb, 'backup', ['--type=full', '--start-fast', `--compress-type=${v.type}`, `--process-max=${v.pmax}`]),
        { watchPids: srcWatch },
      );
      if (res.code !== 0) {
        fail('pgbackrest', variant, 'backup', res);
        continue;
      }
      const label = backupLabels(pb).find((l) => !before.has(l));
      const storedBytes = duBytes(backupDir(pb, label)) + walBytesFor(pb, label);
      labels[variant] = label;
      record({ tool: 'pgbackrest', variant, op: 'backup', ...pick(res), storedBytes, dbBytes, label });
    }
  }
  // Restores: zst and lz4 with process-max 2 (both cores), and zst with 1.
  for (const variant of rotate(['zst pmax=2', 'lz4 pmax=2', 'zst pmax=1'], rep)) {
    if (!labels[variant]) continue;
    const pmax = variant.endsWith('2') ? 2 : 1;
    {
      log(`pgbackrest restore ${variant}`);
      const target = mkPgDir(path.join(root, `restore-pgbr-${slug(variant)}-${rep}`));
      const tsDir = tablespaceDir(target);
      const res = await runMonitored(
        'runuser',
        pgbackrestArgs(pb, 'restore', [
          `--set=${labels[variant]}`,
          `--pg1-path=${target}`,
          ...(tsDir ? [`--tablespace-map-all=${tsDir}`] : []),
          `--process-max=${pmax}`,
          '--type=immediate',
          '--target-action=promote',
          '--archive-mode=off',
        ]),
      );
      await startRestored({ tool: 'pgbackrest', variant, rep, res, target, tsDir, dbBytes });
    }
  }
}

/**
 * The rest of a restore whose tool wrote files only (pgBackRest, pg_basebackup's tars), all
 * counted: fsync every file and directory (cheap when the tool already synced them), start the
 * server on a free port with archiving off, wait until it answers read-write. Then, not counted,
 * its data against the source's; the row records the three parts.
 */
async function startRestored({ tool, variant, rep, res, target, tsDir, dbBytes }) {
  const removeTarget = () => {
    rmSync(target, { recursive: true, force: true });
    if (tsDir) rmSync(tsDir, { recursive: true, force: true });
  };
  if (res.code !== 0) {
    fail(tool, variant, 'restore', res);
    removeTarget();
    return;
  }
  let t = process.hrtime.bigint();
  syncTree(target);
  if (tsDir) syncTree(tsDir);
  const syncS = Number(process.hrtime.bigint() - t) / 1e9;
  t = process.hrtime.bigint();
  const name = `restore-${slug(tool)}-${slug(variant)}-${rep}`;
  const sock = mkPgDir(path.join(root, `sock-${name}`), 0o755);
  const port = await freePort();
  try {
    pgCtlStart(target, port, sock, { archive_mode: 'off' }, path.join(root, `${name}.log`));
    waitReadWrite({ host: sock, port });
  } catch (e) {
    pgCtlStop(target, 'immediate');
    results.push({ tool, variant, op: 'restore', failed: true, error: e.message });
    removeTarget();
    return;
  }
  const startS = Number(process.hrtime.bigint() - t) / 1e9;
  const ok = checkRestored({ host: sock, port }, tsDir);
  pgCtlStop(target);
  record({
    tool,
    variant,
    op: 'restore',
    ...pick(res),
    wallS: res.wallS + syncS + startS,
    parts: { restoreS: +res.wallS.toFixed(2), syncS: +syncS.toFixed(2), startS: +startS.toFixed(2) },
    storedBytes: null,
    dbBytes,
    check: ok,
    dataOk: ok.startsWith('data OK'),
  });
  if (!opts.keep) removeTarget();
}

/** Bytes of archived WAL the backup needs (its start..stop segments), from backup.manifest via info. */
function walBytesFor(pb, label) {
  const r = sh('runuser', pgbackrestArgs(pb, 'info', ['--output=json', `--set=${label}`]), { allowFail: true });
  if (r.status !== 0) return 0;
  try {
    const info = JSON.parse(r.stdout)[0];
    const b = info.backup.find((x) => x.label === label);
    const start = b.archive.start;
    const stop = b.archive.stop;
    const archiveRoot = path.join(pb.repo, 'archive', STANZA);
    const out = sh('sh', ['-c', `find "$1" -type f -name '0000*' -printf '%f %s\\n'`, 'sh', archiveRoot]).stdout;
    let sum = 0;
    for (const line of out.split('\n')) {
      const [name, size] = line.split(' ');
      if (!name) continue;
      const seg = name.slice(0, 24);
      if (seg >= start && seg <= stop) sum += Number(size);
    }
    return sum;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- rookery
function rookeryEnv() {
  const env = { ...process.env };
  delete env.ROOKERY_CONFIG;
  delete env.ROOKERY_CATALOG_URL;
  env.NO_COLOR = '1';
  return env;
}

/** The phases `rookery restore --json` reports (seconds), or nothing when its output is not that. */
function restorePhases(stdout) {
  try {
    const { planMs, extractMs, syncMs, startMs } = JSON.parse(stdout).timings;
    return { planS: planMs / 1000, extractS: extractMs / 1000, syncS: syncMs / 1000, startS: startMs / 1000 };
  } catch {
    return {};
  }
}

/** `list` starting at its `by`-th element (round-robin order per round). */
function rotate(list, by) {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}

async function runRookery(dbBytes, rep) {
  const variants = [
    // The default: zstd level 1 compressed by the server (PostgreSQL 15+) while it sends.
    { variant: 'default config', compression: null },
    { variant: 'zstd level=3 server', compression: { codec: 'zstd', level: 3, location: 'server' } },
    { variant: 'zstd level=1 client', compression: { codec: 'zstd', level: 1, location: 'client' } },
    { variant: 'zstd level=3 client', compression: { codec: 'zstd', level: 3, location: 'client' } },
    { variant: 'lz4', compression: { codec: 'lz4' } },
  ];
  for (const v of rotate(variants, rep)) {
    {
      const dir = path.join(root, 'rookery', v.variant.replace(/[^a-z0-9]+/gi, '_'));
      rmSync(dir, { recursive: true, force: true });
      const repoDir = path.join(dir, 'repo');
      mkdirSync(repoDir, { recursive: true });
      const args = [ROOKERY, 'backup', '--tier', 'oltp', '--repo', `file://${repoDir}`, '--pg-url', cluster.url, '--json'];
      if (v.compression) {
        const conf = path.join(dir, 'rookery.yaml');
        const lines = ['compression:', ...Object.entries(v.compression).map(([k, x]) => `  ${k}: ${x}`), ''];
        writeFileSync(conf, lines.join('\n'));
        args.push('--config', conf);
      }
      log(`rookery backup ${v.variant}`);
      const res = await runMonitored(process.execPath, args, {
        cwd: dir,
        env: rookeryEnv(),
        watchPids: srcWatch,
        threads: true,
        timeline: true,
      });
      if (res.code !== 0) {
        fail('rookery', v.variant, 'backup', res);
        continue;
      }
      let manifest = null;
      try {
        manifest = JSON.parse(res.stdout);
      } catch {
        /* not JSON */
      }
      if (!manifest?.id) {
        fail('rookery', v.variant, 'backup', res, `exit 0 but stdout is not the backup's JSON (stored ${duBytes(repoDir)} bytes)`);
        continue;
      }
      repos[v.variant] = { dir, repoDir, conf: v.compression ? path.join(dir, 'rookery.yaml') : null };
      record({
        tool: 'rookery',
        variant: v.variant,
        op: 'backup',
        ...pick(res),
        threads: threadSummary(res.threads, res.timeline, res.wallS),
        storedBytes: duBytes(repoDir),
        dbBytes,
        manifestBytes: manifest?.bytes ?? null,
      });
    }
  }
  // The order rotates per round: the first restore of a round ran slower than the same code later
  // in it (tar's CPU 1.4-2.0 s vs 0.4 s), which had made whichever variant came first look worst.
  for (const variant of rotate(['default config', 'zstd level=3 server', 'zstd level=1 client', 'lz4'], rep)) {
    const r = repos[variant];
    if (!r) continue;
    {
      const parent = mkPgDir(path.join(root, `restore-rookery-${slug(variant)}-${rep}`), 0o755);
      const target = path.join(parent, 'data');
      const tsDir = tablespaceDir(target);
      const port = await freePort();
      trackStarted(target);
      const args = [
        ROOKERY,
        'restore',
        '--tier',
        'oltp',
        '--backup',
        'latest',
        '--to',
        target,
        '--start',
        '--port',
        String(port),
        '--repo',
        `file://${r.repoDir}`,
        '--json',
      ];
      if (r.conf) args.push('--config', r.conf);
      if (tsDir) args.push('--tablespace-map-all', tsDir);
      log(`rookery restore ${variant}`);
      const res = await runMonitored(process.execPath, args, { cwd: r.dir, env: rookeryEnv(), threads: true, timeline: true });
      if (res.code !== 0) {
        fail('rookery', variant, 'restore', res);
        pgCtlStop(target, 'immediate');
        rmSync(parent, { recursive: true, force: true });
        continue;
      }
      // count until it answers read-write on the port (the CLI says it waited for connections)
      let t = process.hrtime.bigint();
      let readyS;
      try {
        waitReadWrite({ host: '127.0.0.1', port }, 120);
        readyS = Number(process.hrtime.bigint() - t) / 1e9;
      } catch (e) {
        results.push({
          tool: 'rookery',
          variant,
          op: 'restore',
          failed: true,
          error: `${e.message}\n${res.stdout}\n${res.stderr.slice(-2000)}`,
        });
        pgCtlStop(target, 'immediate');
        rmSync(parent, { recursive: true, force: true });
        continue;
      }
      const ok = checkRestored({ host: '127.0.0.1', port }, tsDir);
      // durability check, not counted: how long an fsync of every file takes after the CLI
      // returned (≈0 when rookery already synced what it wrote)
      t = process.hrtime.bigint();
      syncTree(target);
      if (tsDir) syncTree(tsDir);
      const postSyncS = Number(process.hrtime.bigint() - t) / 1e9;
      pgCtlStop(target);
      record({
        tool: 'rookery',
        variant,
        op: 'restore',
        ...pick(res),
        wallS: res.wallS + readyS,
        parts: {
          cliS: +res.wallS.toFixed(2),
          ...restorePhases(res.stdout),
          readyAfterCliS: +readyS.toFixed(2),
          postSyncNotCountedS: +postSyncS.toFixed(2),
        },
        threads: threadSummary(res.threads, res.timeline, res.wallS),
        storedBytes: null,
        dbBytes,
        check: ok,
        dataOk: ok.startsWith('data OK'),
      });
      removeUnlessKept(parent);
    }
  }
}

// ---------------------------------------------------------------- main
async function main() {
  const t0 = Date.now();
  root = pgTempDir('rookery-bench-');
  log(`work dir ${root}`);
  const src = mkPgDir(path.join(root, 'src'), 0o755);
  cluster = await createCluster(src);
  log(`source cluster on 127.0.0.1:${cluster.port}`);
  const loaded = loadData(cluster, { scale: opts.scale, textMb: opts.textMb, log });
  // outside the data directory (src/data), as PostgreSQL wants it
  if (opts.tablespace) tablespace = moveToTablespace(cluster, mkPgDir(path.join(src, 'tablespace')), { log });
  const dbBytes = Number(psql(cluster.conn, 'SELECT sum(pg_database_size(datname)) FROM pg_database'));
  const mailBytes = Number(psql(cluster.conn, "SELECT pg_total_relation_size('mail')"));
  sourceFingerprint = fingerprint(cluster.conn);
  log(`source fingerprint (mail rows/body hash/accounts/abalance sum${tablespace ? '/accounts by index' : ''}): ${sourceFingerprint}`);
  log(`database size ${(dbBytes / 1048576).toFixed(0)} MiB (mail ${(mailBytes / 1048576).toFixed(0)} MiB, ${loaded.mailRows} rows)`);
  if (tablespace) {
    tablespace.share = +(tablespace.bytes / dbBytes).toFixed(3);
    log(`in tablespace ${tablespace.name}: ${(tablespace.bytes / 1048576).toFixed(0)} MiB = ${(tablespace.share * 100).toFixed(1)} %`);
  }

  let pb = null;
  if (want('pgbackrest')) {
    if (!pgbackrestAvailable()) {
      log('pgbackrest missing: apt-get install -y pgbackrest');
      sh('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest'], { stdio: 'inherit' });
    }
    pb = setupPgBackRest(root, cluster);
    enableArchiving(pb, cluster);
  }
  psql(cluster.conn, 'CHECKPOINT');

  // Repeats go round-robin over the tools so that a noisy stretch hits everyone alike.
  for (let rep = 0; rep < opts.repeat; rep++) {
    if (opts.repeat > 1) log(`round ${rep + 1} of ${opts.repeat}`);
    if (want('pg_basebackup')) await runPgBasebackup(dbBytes, rep);
    if (rep === 0 && want('zstd-cli')) await runCodecReference(dbBytes);
    if (pb) await runPgBackRest(pb, dbBytes, rep);
    if (want('rookery')) await runRookery(dbBytes, rep);
  }

  const meta = {
    command: `node tools/bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    date: new Date().toISOString(),
    scale: opts.scale,
    textMb: opts.textMb,
    repeat: opts.repeat,
    dbBytes,
    mailBytes,
    mailRows: loaded.mailRows,
    tablespace,
    tarBytes: results.find((r) => r.tool === 'pg_basebackup' && r.variant === 'none' && !r.failed)?.storedBytes ?? null,
    machine: {
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
      kernel: os.release(),
      node: process.version,
      postgres: sh(`${PGBIN}/postgres`, ['--version']).stdout.trim(),
      pgbackrest: pb ? sh('pgbackrest', ['version']).stdout.trim() : null,
    },
    totalS: 0,
  };
  meta.totalS = (Date.now() - t0) / 1000;
  const checks = targetChecks(results);
  printTable(meta, results, checks);
  if (opts.out) writeFileSync(opts.out, JSON.stringify({ meta, results, checks }, null, 2));
  return checks;
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
  cleanup();
}
process.exitCode = exitCode;
