#!/usr/bin/env node
// Memory of the WAL-fetching processes of recovery (issue 17's "peak RSS ≤ 300 MB throughout":
// they run beside `rookery restore --start`), with wal.reuseBuffers on (zstd decoded into one
// reused buffer) and off (the plain stream pipeline), on a filesystem repository with client-side
// encryption and the default compression (zstd):
//
//   npx tsc -p tsconfig.build.json && node tools/bench/wal-get-rss.mjs [--segments 24] [--runs 5]
//                                                                   [--replay-ms 50] [--keep]
//                                                                   [--no-switch]
//  --no-switch: for a checkout without wal.reuseBuffers (before it): one variant, default config.
//
// 1. one `wal-get` of a 16 MiB segment, as PostgreSQL's restore_command starts it without
//    prefetch (bin/rookery-wal-get, which execs node): max RSS from /usr/bin/time -f %M
//    (getrusage's ru_maxrss), --runs times; beside it `rookery --version` and a bare node;
// 2. a replay: what PostgreSQL's startup process asks of `restore_command = bin/rookery-wal-get
//    … wal-get %f %p --tier oltp --prefetch 32` for --segments segments, one after the other (the
//    next timeline's history first, the segment after the archive's end last), each landed file
//    read and removed after --replay-ms; the summed VmRSS of every rookery process of the run
//    (wal-get node processes and the prefetcher they start) sampled every 10 ms, its peak, each
//    role's peak, and how many wal-get calls started node at all (the rest the shell answered).
//
// Segments: a long page header (wal-push checks it) and 8 KiB pages of 1000–6000 random bytes
// then zeros (zstd -1 makes ~1.9:1 of them; real WAL compresses a little better). They are
// pushed once with `rookery wal-push` before the runs.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOKERY, ROOT, parseArgs } from './lib/cli.mjs';

const args = parseArgs(process.argv.slice(2));
const segments = Number(args.segments ?? 24);
const runs = Number(args.runs ?? 5);
const replayMs = Number(args['replay-ms'] ?? 50);
const SEGMENT = 16 * 1024 * 1024;
const WAL_GET = path.join(ROOT, 'bin', 'rookery-wal-get');
const PINNED = path.join(ROOT, 'node_modules', 'node', 'bin', 'node');
const MiB = 1048576;

const log = (message) => process.stderr.write(`[wal-get-rss] ${message}\n`);
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-bench-walget-'));
const repoUrl = `file://${path.join(work, 'repo')}`;
const env = { ...process.env, ROOKERY_ENCRYPTION_KEY: randomBytes(32).toString('hex'), NO_COLOR: '1' };
delete env.ROOKERY_CONFIG;
delete env.ROOKERY_CATALOG_URL;
const configs = {
  reuse: path.join(work, 'reuse.yaml'),
  plain: path.join(work, 'plain.yaml'),
};
writeFileSync(configs.reuse, args['no-switch'] ? '{}\n' : 'wal:\n  reuseBuffers: true\n');
writeFileSync(configs.plain, 'wal:\n  reuseBuffers: false\n');
const variants = args['no-switch'] ? ['reuse'] : ['reuse', 'plain'];

const name = (n) => `00000001000000000000${n.toString(16).toUpperCase().padStart(4, '0')}`;

/** A 16 MiB segment wal-push accepts: PostgreSQL 15's long page header, then compressible pages. */
function segmentBytes(segmentName) {
  const bytes = Buffer.alloc(SEGMENT);
  for (let offset = 0; offset < SEGMENT; offset += 8192) randomBytes(1000 + Math.floor(Math.random() * 5000)).copy(bytes, offset + 40);
  const logId = BigInt(`0x${segmentName.slice(8, 16)}`);
  const segment = BigInt(`0x${segmentName.slice(16, 24)}`);
  bytes.writeUInt16LE(0xd110, 0);
  bytes.writeUInt16LE(0x0002, 2);
  bytes.writeUInt32LE(1, 4);
  bytes.writeBigUInt64LE((logId << 32n) + segment * BigInt(SEGMENT), 8);
  bytes.writeBigUInt64LE(7301234567890123456n, 24);
  bytes.writeUInt32LE(SEGMENT, 32);
  bytes.writeUInt32LE(8192, 36);
  return bytes;
}

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, { env, encoding: 'utf8', ...options });
  if (result.status !== 0 && !options.allowFail)
    throw new Error(`${command} ${commandArgs.join(' ')}: exit ${result.status}: ${result.stderr}`);
  return result;
}

/** Max RSS (KiB → MiB) of one command from /usr/bin/time -f %M. */
function maxRssMiB(command, commandArgs) {
  const result = run('/usr/bin/time', ['-f', 'maxrss %M', command, ...commandArgs], { allowFail: true });
  const match = /maxrss (\d+)/.exec(result.stderr);
  if (!match) throw new Error(`no max RSS for ${command}: ${result.stderr}`);
  return { mib: Number(match[1]) / 1024, status: result.status };
}

const stats = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1) };
};
const fmt = ({ median, min, max }) => `${median.toFixed(1)} (${min.toFixed(1)}–${max.toFixed(1)})`;

/** VmRSS of every process whose command line names this run's repository. */
function rookeryProcesses() {
  const found = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmdline.includes(repoUrl)) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      found.push({
        pid: Number(entry),
        comm,
        role: cmdline.includes('wal-prefetcher') ? 'prefetcher' : 'wal-get',
        rss: rss ? Number(rss[1]) * 1024 : 0,
      });
    } catch {
      // gone
    }
  }
  return found;
}

/** restore_command, run as PostgreSQL does (system(): sh -c). Resolves with its exit status. */
function restoreCommand(config, file, destination) {
  const command = [WAL_GET, '--config', config, '--repo', repoUrl, 'wal-get', file, destination, '--tier', 'oltp', '--prefetch', '32'];
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command.map((part) => `'${part}'`).join(' ')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function replay(variant) {
  const pgWal = path.join(work, `pg_wal-${variant}`);
  mkdirSync(pgWal, { mode: 0o700 });
  const destination = path.join(pgWal, 'RECOVERYXLOG');
  const peaks = { sum: 0, prefetcher: 0, walGet: 0, sample: '' };
  const nodePids = new Set();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const processes = rookeryProcesses();
      let sum = 0;
      for (const proc of processes) {
        sum += proc.rss;
        if (proc.role === 'prefetcher') peaks.prefetcher = Math.max(peaks.prefetcher, proc.rss);
        else if (proc.comm === 'node') {
          peaks.walGet = Math.max(peaks.walGet, proc.rss);
          nodePids.add(proc.pid);
        }
      }
      if (sum > peaks.sum) {
        peaks.sum = sum;
        peaks.sample = processes.map((proc) => `${proc.role}/${proc.comm}:${Math.round(proc.rss / MiB)}`).join(' + ');
      }
      await sleep(10);
    }
  })();
  const started = Date.now();
  const asks = [['00000002.history', 1], ...Array.from({ length: segments }, (_, index) => [name(index + 1), 0]), [name(segments + 1), 1]];
  for (const [file, expected] of asks) {
    const { code, stderr } = await restoreCommand(configs[variant], file, destination);
    if (code !== expected) throw new Error(`wal-get ${file} (${variant}) exited ${code}, expected ${expected}: ${stderr}`);
    if (code === 0) {
      readFileSync(destination);
      await sleep(replayMs);
      rmSync(destination);
    }
  }
  const wallS = (Date.now() - started) / 1000;
  // Recovery ends (the restore removes the spool): the prefetcher sees it gone and exits.
  rmSync(path.join(pgWal, 'rookery-prefetch'), { recursive: true, force: true });
  for (let waited = 0; rookeryProcesses().length > 0; waited += 50) {
    if (waited > 30_000) throw new Error('the prefetcher did not exit');
    await sleep(50);
  }
  sampling = false;
  await sampler;
  return { ...peaks, nodeWalGets: nodePids.size, asks: asks.length, wallS };
}

async function main() {
  if (!existsSync('/usr/bin/time')) throw new Error('needs /usr/bin/time (GNU time) for max RSS');
  log(`work directory ${work}; pushing ${segments} segments`);
  const source = path.join(work, 'source');
  mkdirSync(source);
  for (let n = 1; n <= segments; n++) {
    const file = path.join(source, name(n));
    writeFileSync(file, segmentBytes(name(n)));
    run(process.execPath, [ROOKERY, '--repo', repoUrl, 'wal-push', file, '--tier', 'oltp']);
    rmSync(file);
  }
  const walDirectory = path.join(repoUrl.slice('file://'.length), 'oltp', 'wal', '00000001');
  const stored = readdirSync(walDirectory).map((entry) => entry);
  const storedMiB = stored.reduce((sum, entry) => sum + Number(run('stat', ['-c', '%s', path.join(walDirectory, entry)]).stdout), 0) / MiB;
  log(`stored ${stored.length} objects, ${(storedMiB / stored.length).toFixed(1)} MiB each (${stored[0]})`);

  const oneShot = { reuse: [], plain: [] };
  const baseline = { version: [], node: [] };
  for (let round = 0; round < runs; round++) {
    for (const variant of variants) {
      const out = path.join(work, `out-${variant}`);
      rmSync(out, { force: true });
      const { mib, status } = maxRssMiB(WAL_GET, [
        '--config',
        configs[variant],
        '--repo',
        repoUrl,
        'wal-get',
        name(1 + (round % segments)),
        out,
        '--tier',
        'oltp',
      ]);
      if (status !== 0) throw new Error(`wal-get (${variant}) exited ${status}`);
      oneShot[variant].push(mib);
    }
    baseline.version.push(maxRssMiB(PINNED, [ROOKERY, '--version']).mib);
    baseline.node.push(maxRssMiB(PINNED, ['-e', '0']).mib);
  }

  const replays = {};
  for (const variant of variants) {
    log(`replay of ${segments} segments, wal.reuseBuffers ${variant === 'reuse'}`);
    replays[variant] = await replay(variant);
  }

  const lines = [
    `wal-get of one 16 MiB segment (encrypted, zstd; ${(storedMiB / stored.length).toFixed(1)} MiB stored), max RSS MiB, median (min–max) of ${runs}:`,
    `  ${args['no-switch'] ? 'default config (no switch)      ' : 'wal.reuseBuffers true (default)  '} ${fmt(stats(oneShot.reuse))}`,
    ...(args['no-switch'] ? [] : [`  wal.reuseBuffers false (plain)    ${fmt(stats(oneShot.plain))}`]),
    `  rookery --version                 ${fmt(stats(baseline.version))}`,
    `  node -e 0 (the pinned node)       ${fmt(stats(baseline.node))}`,
    `replay of ${segments} segments (${replays.reuse.asks} restore_command calls, --prefetch 32, replay ${replayMs} ms a segment), peak VmRSS MiB:`,
  ];
  for (const [variant, result] of Object.entries(replays)) {
    lines.push(
      `  ${variant === 'reuse' ? 'reuseBuffers true ' : 'reuseBuffers false'}  sum ${(result.sum / MiB).toFixed(0)} [${result.sample}], prefetcher ${(result.prefetcher / MiB).toFixed(0)}, wal-get node ${(result.walGet / MiB).toFixed(0)}; ${result.nodeWalGets} of ${result.asks} calls started node; ${result.wallS.toFixed(1)} s`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (args.out)
    writeFileSync(String(args.out), JSON.stringify({ segments, runs, replayMs, storedMiB, oneShot, baseline, replays }, null, 2));
}

main()
  .catch((error) => {
    process.stderr.write(`${error.stack ?? error}\n`);
    process.exitCode = 1;
  })
  .finally(() => {
    if (!args.keep) rmSync(work, { recursive: true, force: true });
    else log(`kept ${work}`);
  });
