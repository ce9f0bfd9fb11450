import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  PgBinaries,
  PgCtlDriver,
  PgSqlClient,
  ProcessRunner,
  SqlParams,
  lookupOsUser,
  readPostmasterStatus,
} from '@rookery/postgres';
import { ToolFailedError } from '@rookery/core';

export interface StartClusterOptions {
  /** Extra server settings; they override the harness defaults. */
  settings?: Readonly<Record<string, string>>;
  /** Shows up in the directory name, to tell clusters apart in `ps` and /tmp. */
  name?: string;
  /** Keep fsync on (demo and benchmarks); tests default to off. */
  fsync?: boolean;
  /** pg_hba.conf lines placed before the harness's trust rules (e.g. a password-only user). */
  hbaLines?: readonly string[];
  /** Explicit PostgreSQL bin directory; default: PgBinaries.resolve(). */
  binDir?: string;
}

export interface TestCluster {
  readonly name: string;
  readonly port: number;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  urlFor(database: string): string;
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: SqlParams,
    database?: string,
  ): Promise<Row[]>;
  /** Starts it again after stop() (same port and settings). */
  start(): Promise<void>;
  /** Fast shutdown; does nothing when already stopped. */
  stop(): Promise<void>;
  /** Immediate shutdown and removal of every file of the cluster. */
  destroy(): Promise<void>;
}

const PORT_ATTEMPTS = 8;
const running = new Set<ClusterHandle>();
let exitHookInstalled = false;

/**
 * A throwaway PostgreSQL 15 cluster on a free loopback port, owned by the `postgres` OS user,
 * with its socket and files in one temporary directory. Clusters still running when the process
 * exits are shut down (immediate) as a safety net; tests still stop theirs in afterAll.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<TestCluster> {
  const name = (options.name ?? 'cluster').replace(/[^a-zA-Z0-9_-]/g, '-');
  const runner = new ProcessRunner({ baseEnv: process.env });
  const binaries = await PgBinaries.resolve({ binDir: options.binDir, runner });
  const ctl = new PgCtlDriver(runner, binaries);
  const owner = lookupOsUser('postgres');

  // mkdtemp makes a 0700 root directory: the server account must own it to create data and socket.
  const baseDir = await mkdtemp(join(tmpdir(), `rookery-pg-${name}-`));
  await chown(baseDir, owner.uid, owner.gid);
  await chmod(baseDir, 0o700);
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'postgresql.log');
  const fsync = options.fsync ?? false;

  try {
    await ctl.initdb(dataDir, {
      user: 'postgres',
      authLocal: 'trust',
      authHost: 'trust',
      dataChecksums: true,
      noSync: !fsync,
    });
    const hba = [
      ...(options.hbaLines ?? []),
      'local all all trust',
      'local replication all trust',
      'host all all 127.0.0.1/32 trust',
      'host replication all 127.0.0.1/32 trust',
      '',
    ].join('\n');
    await writeFile(join(dataDir, 'pg_hba.conf'), hba, { mode: 0o600 });
    await chown(join(dataDir, 'pg_hba.conf'), owner.uid, owner.gid);
    await writeFile(logFile, '', { mode: 0o640 });
    await chown(logFile, owner.uid, owner.gid);

    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      wal_level: 'replica',
      max_wal_senders: '10',
      max_replication_slots: '10',
      max_connections: '40',
      shared_buffers: '64MB',
      fsync: fsync ? 'on' : 'off',
      synchronous_commit: fsync ? 'on' : 'off',
      full_page_writes: 'on',
      logging_collector: 'off',
      log_min_messages: 'warning',
      ...options.settings,
    };

    const handle = new ClusterHandle(name, baseDir, dataDir, logFile, ctl, settings);
    await handle.startOnFreePort();
    return handle;
  } catch (error) {
    await ctl.stop(dataDir, 'immediate', { user: 'postgres' }).catch(() => undefined);
    await rm(baseDir, { recursive: true, force: true });
    throw error;
  }
}

class ClusterHandle implements TestCluster {
  port = 0;
  readonly socketDir: string;
  private readonly sql = new PgSqlClient({ applicationName: 'rookery-testing' });

  constructor(
    readonly name: string,
    readonly baseDir: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly ctl: PgCtlDriver,
    private readonly settings: Record<string, string>,
  ) {
    this.socketDir = baseDir;
  }

  get url(): string {
    return this.urlFor('postgres');
  }

  urlFor(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${encodeURIComponent(database)}`;
  }

  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params: SqlParams = [],
    database = 'postgres',
  ): Promise<Row[]> {
    return this.sql.query<Row>(this.urlFor(database), sql, params);
  }

  /** Picks a free port; another process may grab it before the server binds, so retry. */
  async startOnFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freeLoopbackPort();
      try {
        await this.start();
        return;
      } catch (error) {
        const portTaken =
          error instanceof ToolFailedError && /could not (bind|create any TCP\/IP)|already in use/i.test(error.stderrTail);
        if (!portTaken || attempt >= PORT_ATTEMPTS) throw error;
      }
    }
  }

  async start(): Promise<void> {
    installExitHook();
    running.add(this);
    try {
      await this.ctl.start(this.dataDir, {
        user: 'postgres',
        port: this.port,
        socketDir: this.socketDir,
        logFile: this.logFile,
        settings: this.settings,
      });
    } catch (error) {
      running.delete(this);
      throw error;
    }
  }

  async stop(): Promise<void> {
    await this.ctl.stop(this.dataDir, 'fast', { user: 'postgres' });
    running.delete(this);
  }

  async destroy(): Promise<void> {
    await this.ctl.stop(this.dataDir, 'immediate', { user: 'postgres' }).catch(() => undefined);
    running.delete(this);
    await rm(this.baseDir, { recursive: true, force: true });
  }

  /** Synchronous last resort at process exit: SIGQUIT is PostgreSQL's immediate shutdown. */
  killNow(): void {
    const status = readPostmasterStatus(this.dataDir);
    if (!status) return;
    try {
      process.kill(status.pid, 'SIGQUIT');
    } catch {
      // Already gone.
    }
    try {
      rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The server may still be writing its last files; /tmp is cleaned eventually.
    }
  }
}

/** Every harness cluster this process has started and not stopped. */
export function runningClusters(): readonly TestCluster[] {
  return [...running];
}

/** Stops (immediate) and removes every cluster this process started: for global teardown. */
export async function destroyAllClusters(): Promise<void> {
  await Promise.all([...running].map((cluster) => cluster.destroy()));
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
    const onSignal = () => {
      killAll();
      // Keep the default behaviour (terminate) unless someone else handles the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The server log, for assertion messages when a test fails. */
export function clusterLog(cluster: TestCluster): string {
  try {
    return readFileSync(cluster.logFile, 'utf8');
  } catch {
    return '';
  }
}
