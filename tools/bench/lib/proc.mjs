// Process helpers for the benchmark: run a command, time it wall-clock, and sample the whole
// process tree (/proc) every ~50 ms for peak summed RSS and per-process CPU time.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64/arm64
const PAGE = 4096;

/** Read /proc/<pid>/stat: { pid, comm, ppid, utime, stime } (CPU in seconds) or null. */
export function readStat(pid, base = '/proc') {
  let s;
  try {
    s = readFileSync(`${base}/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const open = s.indexOf('(');
  const close = s.lastIndexOf(')');
  const comm = s.slice(open + 1, close);
  const f = s.slice(close + 2).split(' ');
  // f[0] = state (field 3), so field n is f[n - 3]
  return {
    pid: Number(pid),
    comm,
    state: f[0],
    ppid: Number(f[1]),
    utime: Number(f[11]) / CLK_TCK,
    stime: Number(f[12]) / CLK_TCK,
    rssBytes: Number(f[21]) * PAGE,
  };
}

/** All processes: Map pid -> stat. */
export function allProcs() {
  const m = new Map();
  for (const d of readdirSync('/proc')) {
    if (d.charCodeAt(0) < 48 || d.charCodeAt(0) > 57) continue;
    const st = readStat(d);
    if (st) m.set(st.pid, st);
  }
  return m;
}

/** pid plus all descendants, from a process map. */
export function treeOf(root, procs) {
  const kids = new Map();
  for (const p of procs.values()) {
    if (!kids.has(p.ppid)) kids.set(p.ppid, []);
    kids.get(p.ppid).push(p.pid);
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    if (!procs.has(pid)) continue;
    out.push(procs.get(pid));
    for (const k of kids.get(pid) ?? []) stack.push(k);
  }
  return out;
}

/** pid and its descendants via /proc/<pid>/task/<tid>/children (cheap: no full /proc scan). */
export function descendants(root) {
  const out = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    const st = readStat(pid);
    if (!st) continue;
    out.push(st);
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        for (const c of readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ')) if (c) stack.push(Number(c));
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

/** rchar/wchar (all read/write syscalls, pipes included) and block-layer write_bytes of a process. */
export function ioOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rchar: get('rchar'), wchar: get('wchar'), writeBytes: get('write_bytes') };
  } catch {
    return {};
  }
}

/** The process title (PostgreSQL sets it: "postgres: walsender ..."). */
export function procTitle(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .replace(/\0+/g, ' ')
      .trim()
      .replace(/^postgres: /, '')
      .slice(0, 48);
  } catch {
    return String(pid);
  }
}

/** VmRSS from /proc/<pid>/status in bytes (the figure the brief asks for). */
function vmRss(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+) kB/.exec(s);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Per-thread CPU of a process: [{ tid, comm, cpu }]. */
export function threadCpu(pid) {
  const out = [];
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    const st = readStat(t, `/proc/${pid}/task`);
    if (st) out.push({ tid: st.pid, comm: st.comm, state: st.state, cpu: st.utime + st.stime, utime: st.utime, stime: st.stime });
  }
  return out;
}

/**
 * Run a command and monitor its process tree.
 * opts: { env, cwd, input, excludeComm: Set of comm names left out of the RSS sum (e.g. a
 *         postgres server a tool starts), watchPids: () => number[] extra processes whose CPU
 *         delta to record (e.g. the source cluster), threads: true to record per-thread CPU }
 * Returns { code, signal, wallS, peakRssBytes, peakRssSample, cpuS, procCpu, watchCpuS, threads,
 *           stdout, stderr }.
 */
export function runMonitored(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const exclude = opts.excludeComm ?? new Set(['postgres', 'postmaster']);
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (b) => out.push(b));
    child.stderr.on('data', (b) => err.push(b));
    child.on('error', reject);
    if (opts.input != null) child.stdin.end(opts.input);
    else child.stdin.end();

    const cpuByPid = new Map(); // pid -> { comm, cpu }
    const threadsByKey = new Map(); // `${pid}/${tid}` -> { comm, cpu, procComm }
    const watchBefore = new Map();
    const titles = new Map();
    const watchAfter = new Map();
    const snapWatch = (into) => {
      if (!opts.watchPids) return;
      for (const pid of opts.watchPids()) {
        const st = readStat(pid);
        if (st) into.set(pid, st);
      }
    };
    snapWatch(watchBefore);
    let peak = 0;
    let nSample = 0;
    const timeline = [];
    let peakSample = [];
    const sample = () => {
      const tree = descendants(child.pid);
      let sum = 0;
      const parts = [];
      for (const p of tree) {
        const prev = cpuByPid.get(p.pid);
        const cpu = p.utime + p.stime;
        if (!prev || cpu >= prev.cpu) cpuByPid.set(p.pid, { comm: p.comm, cpu });
        if (opts.threads) {
          for (const t of threadCpu(p.pid)) {
            const key = `${p.pid}/${t.tid}`;
            const prev = threadsByKey.get(key);
            const states = prev?.states ?? {};
            states[t.state] = (states[t.state] ?? 0) + 1;
            threadsByKey.set(key, { pid: p.pid, tid: t.tid, main: t.tid === p.pid, procComm: p.comm, comm: t.comm, cpu: t.cpu, states });
          }
        }
        if (exclude.has(p.comm)) continue;
        const r = vmRss(p.pid);
        sum += r;
        parts.push(`${p.comm}:${Math.round(r / 1048576)}`);
      }
      if (opts.timeline && nSample++ % 5 === 0) {
        let treeCpu = 0;
        for (const { cpu } of cpuByPid.values()) treeCpu += cpu;
        const main = readStat(child.pid);
        timeline.push({
          t: +(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(2),
          treeCpu: +treeCpu.toFixed(2),
          mainCpu: main ? +(main.utime + main.stime).toFixed(2) : null,
          ...ioOf(child.pid),
          rssMiB: Math.round(sum / 1048576),
        });
      }
      if (sum > peak) {
        peak = sum;
        peakSample = parts;
      }
      // watched processes that appear during the run (e.g. a walsender) count from zero
      if (opts.watchPids) {
        for (const pid of opts.watchPids()) {
          const st = readStat(pid);
          if (!st) continue;
          if (!watchBefore.has(pid)) watchBefore.set(pid, { ...st, utime: 0, stime: 0 });
          if (!titles.has(pid)) titles.set(pid, procTitle(pid));
          watchAfter.set(pid, st);
        }
      }
    };
    const timer = setInterval(sample, opts.intervalMs ?? 50);
    sample();
    child.on('close', (code, signal) => {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(timer);
      snapWatch(watchAfter);
      let watchCpuS = 0;
      const watchDetail = [];
      for (const [pid, a] of watchAfter) {
        const b = watchBefore.get(pid) ?? { utime: 0, stime: 0 };
        const d = a.utime + a.stime - (b.utime + b.stime);
        watchCpuS += d;
        if (d > 0.05) watchDetail.push({ pid, comm: titles.get(pid) ?? a.comm, cpu: +d.toFixed(2) });
      }
      let cpuS = 0;
      const procCpu = {};
      for (const { comm, cpu } of cpuByPid.values()) {
        cpuS += cpu;
        procCpu[comm] = +((procCpu[comm] ?? 0) + cpu).toFixed(2);
      }
      resolve({
        code,
        signal,
        wallS,
        peakRssBytes: peak,
        peakRssSample: peakSample,
        cpuS,
        procCpu,
        watchCpuS,
        watchDetail,
        threads: opts.threads ? [...threadsByKey.values()] : undefined,
        timeline: opts.timeline ? timeline : undefined,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
  });
}

/** spawnSync that throws with the command's stderr on failure. */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}${r.signal ? ` (${r.signal})` : ''}\n${(r.stderr || '').slice(-4000)}${(r.stdout || '').slice(-2000)}`,
    );
  }
  return r;
}

/** Run as the postgres OS user. */
export function asPostgres(cmd, args, opts = {}) {
  return sh('runuser', ['-u', 'postgres', '--', cmd, ...args], opts);
}

export function duBytes(path) {
  const r = sh('du', ['-sb', path]);
  return Number(r.stdout.split(/\s+/)[0]);
}

/** fsync every file and directory under path (GNU sync with file operands fsyncs each one). */
export function syncTree(path) {
  // A running restored server may remove files meanwhile (wal-get's prefetch spool): not an error.
  sh('find', [
    path,
    '-ignore_readdir_race',
    '(',
    '-type',
    'f',
    '-o',
    '-type',
    'd',
    ')',
    '-exec',
    'sh',
    '-c',
    'sync -- "$@" 2>/dev/null || true',
    'sync',
    '{}',
    '+',
  ]);
}
