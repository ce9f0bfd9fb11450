import { ScratchCluster, ScratchClusterOptions, createScratchCluster } from '@rookery/postgres';

export interface StartClusterOptions {
  /** Extra server settings; they override the defaults. */
  settings?: Readonly<Record<string, string>>;
  /** Shows up in the directory name, to tell clusters apart in `ps` and /tmp. */
  name?: string;
  /** Keep fsync on (demo and benchmarks); tests default to off. */
  fsync?: boolean;
  /** pg_hba.conf lines placed before the trust rules (e.g. a password-only user). */
  hbaLines?: readonly string[];
  binDir?: string;
}

/** A throwaway cluster: see createScratchCluster in @rookery/postgres. */
export type TestCluster = ScratchCluster;

const running = new Set<ScratchCluster>();
let exitHookInstalled = false;

/**
 * A throwaway PostgreSQL 15 cluster for tests and the demo: a free loopback port, fsync off unless
 * asked, wal_level=replica with WAL senders, data checksums, trust for local and 127.0.0.1. Every
 * cluster still running when the process exits is shut down (immediate) as a safety net; tests
 * still stop theirs in afterAll.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const scratchOptions: ScratchClusterOptions = {
    name: options.name ?? 'test',
    settings: options.settings,
    fsync: options.fsync ?? false,
    hbaLines: options.hbaLines,
    binDir: options.binDir,
    baseEnv: process.env,
    // jest runs specs in a sandbox whose process exit hooks never fire: a watcher process is the
    // safety net that also survives a killed test run.
    removeWhenOrphaned: true,
  };
  installExitHook();
  const cluster = await createScratchCluster(scratchOptions);
  running.add(cluster);
  return tracked(cluster);
}

/** Every harness cluster of this process not yet destroyed. */
export function runningClusters(): readonly TestCluster[] {
  return [...running];
}

/** Destroys every cluster this process started and has not destroyed: for global teardown. */
export async function destroyAllClusters(): Promise<void> {
  await Promise.all([...running].map((cluster) => cluster.destroy()));
  running.clear();
}

/** The same cluster, forgotten by the exit hook once destroyed. */
function tracked(cluster: ScratchCluster): ScratchCluster {
  const destroy = cluster.destroy.bind(cluster);
  return Object.assign(cluster, {
    destroy: async () => {
      await destroy();
      running.delete(cluster);
    },
  });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const cluster of running) cluster.killNow();
    running.clear();
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}
