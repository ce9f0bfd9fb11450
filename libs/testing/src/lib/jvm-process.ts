import { ChildProcess, spawn } from 'node:child_process';

/**
 * Lifetime of the JVM servers the test harness starts (S3Proxy, Kafka): each runs in its own
 * process group, is killed when this process exits, and is watched by a detached guard process
 * that kills it and removes its data when this process dies without cleaning up (jest sandboxes
 * never fire exit hooks; a killed run fires none). Self-contained: the jest global setup loads
 * these files without the workspace's path mapping.
 */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

const ORPHAN_GUARD_SCRIPT = `
const { rmSync } = require('node:fs');
const [watchPid, targetPid, removeDir] = process.argv.slice(1).map(String);
const alive = (pid) => { try { process.kill(Number(pid), 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(() => {
  if (!alive(targetPid)) process.exit(0);
  if (alive(watchPid)) return;
  clearInterval(timer);
  try { process.kill(-Number(targetPid), 'SIGKILL'); } catch {}
  const deadline = Date.now() + 10000;
  const wait = setInterval(() => {
    if (alive(targetPid) && Date.now() < deadline) return;
    clearInterval(wait);
    try { rmSync(removeDir, { recursive: true, force: true }); } catch {}
    process.exit(0);
  }, 100);
}, 500);
`;

export function startOrphanGuard(watchPid: number, targetPid: number, removeDir: string): void {
  const guard = spawn(process.execPath, ['-e', ORPHAN_GUARD_SCRIPT, String(watchPid), String(targetPid), removeDir], {
    detached: true,
    stdio: 'ignore',
    env: {},
  });
  guard.on('error', () => undefined);
  guard.unref();
}

export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort when the test process exits without teardown: never leave a JVM behind.
    process.once('exit', () => {
      for (const proc of running) signalGroup(proc, 'SIGKILL');
    });
  }
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

export async function killGroup(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
