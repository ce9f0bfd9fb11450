import { readFileSync, rmSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { PgCtlDriver, readPostmasterStatus } from './pg-ctl.driver';
import { PgSqlClient, SqlParams } from './pg-sql.client';
import { ProcessEnv, ProcessRunner, lookupOsUser } from './process.runner';

export interface ScratchClusterOptions {
  /** Part of the directory name, to tell clusters apart in `ps` and the temp directory. */
  name?: string;
  /** Where the cluster's directory is created; default os.tmpdir(). */
  parentDir?: string;
  /** Server settings; they override the defaults below. */
  settings?: Readonly<Record<string, string>>;
  /** fsync on (default) for anything whose timings matter; off for throwaway test clusters. */
  fsync?: boolean;
  /** pg_hba.conf lines placed before the trust rules for local and 127.0.0.1 (incl. replication). */
  hbaLines?: readonly string[];
  binDir?: string;
  /** The runner and programs to use (a PostgresToolkit's); default: built from binDir and baseEnv. */
  tools?: { runner: ProcessRunner; binaries: PgBinaries };
  /** The environment children inherit PATH, HOME, LANG from. */
  baseEnv?: ProcessEnv;
  /**
   * Shut the server down (immediate) and remove its directory when this process dies without
   * destroying it: for tests and the demo, never for a restore the operator keeps.
   */
  removeWhenOrphaned?: boolean;
}

export interface ScratchCluster {
  readonly name: string;
  readonly port: number;
  readonly baseDir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  readonly logFile: string;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  readonly url: string;
  urlFor(database: string): string;
  query<Row extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: SqlParams, database?: string): Promise<Row[]>;
  /** Starts it again after stop() (same port and settings). */
  start(): Promise<void>;
  /** Fast shutdown; does nothing when already stopped. */
  stop(): Promise<void>;
  /** Immediate shutdown and removal of every file of the cluster. */
  destroy(): Promise<void>;
  /** Synchronous immediate shutdown (SIGQUIT) and removal, for process-exit hooks. */
  killNow(): void;
  /** The server log so far. */
  log(): string;
}

const PORT_ATTEMPTS = 8;

/**
 * A local PostgreSQL cluster in its own temporary directory on a free loopback port: what restore
 * drills and tests restore into. Owned by the `postgres` OS user (initdb refuses root), socket in
 * its directory, listening on 127.0.0.1 only, trust for local and loopback connections.
 */
export async function createScratchCluster(options: ScratchClusterOptions = {}): Promise<ScratchCluster> {
  const name = (options.name ?? 'scratch').replace(/[^a-zA-Z0-9_-]/g, '-');
  const runner = options.tools?.runner ?? new ProcessRunner({ baseEnv: options.baseEnv });
  const binaries = options.tools?.binaries ?? (await PgBinaries.resolve({ binDir: options.binDir, runner, requiredTool: 'initdb' }));
  const ctl = new PgCtlDriver(runner, binaries);
  const owner = lookupOsUser('postgres');

  // mkdtemp makes a 0700 directory owned by us: the server account must own it to create its
  // data directory and socket there.
  const baseDir = await mkdtemp(join(options.parentDir ?? tmpdir(), `rookery-pg-${name}-`));
  await chown(baseDir, owner.uid, owner.gid);
  await chmod(baseDir, 0o700);
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'postgresql.log');
  const fsync = options.fsync ?? true;

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
    await writeOwned(join(dataDir, 'pg_hba.conf'), hba, 0o600, owner);
    await writeOwned(logFile, '', 0o640, owner);

    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      wal_level: 'replica',
      max_wal_senders: '10',
      max_replication_slots: '10',
      max_connections: '40',
      shared_buffers: '64MB',
      fsync: fsync ? 'on' : 'off',
      synchronous_commit: fsync ? 'on' : 'off',
      logging_collector: 'off',
      ...options.settings,
    };
    const guard = options.removeWhenOrphaned ? runner : undefined;
    const cluster = new LocalScratchCluster(name, baseDir, dataDir, logFile, ctl, settings, guard);
    await cluster.startOnFreePort();
    return cluster;
  } catch (error) {
    await ctl.stop(dataDir, 'immediate', { user: 'postgres' }).catch(() => undefined);
    await rm(baseDir, { recursive: true, force: true });
    throw error;
  }
}

class LocalScratchCluster implements ScratchCluster {
  port = 0;
  readonly socketDir: string;
  private readonly sql = new PgSqlClient({ applicationName: 'rookery-scratch' });

  constructor(
    readonly name: string,
    readonly baseDir: string,
    readonly dataDir: string,
    readonly logFile: string,
    private readonly ctl: PgCtlDriver,
    private readonly settings: Record<string, string>,
    private readonly guard?: ProcessRunner,
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

  /** A free port now may be taken before the server binds it (parallel runs): try another. */
  async startOnFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.port = await freeLoopbackPort();
      try {
        await this.start();
        return;
      } catch (error) {
        const portTaken = error instanceof ToolFailedError && /could not (bind|create any TCP\/IP)|already in use/i.test(error.stderrTail);
        if (!portTaken || attempt >= PORT_ATTEMPTS) throw error;
      }
    }
  }

  async start(): Promise<void> {
    const { pid } = await this.ctl.start(this.dataDir, {
      user: 'postgres',
      port: this.port,
      socketDir: this.socketDir,
      logFile: this.logFile,
      settings: this.settings,
    });
    this.guard?.startOrphanGuard({ watchPid: process.pid, targetPid: pid, signal: 'SIGQUIT', removeDir: this.baseDir });
  }

  async stop(): Promise<void> {
    await this.ctl.stop(this.dataDir, 'fast', { user: 'postgres' });
  }

  async destroy(): Promise<void> {
    await this.ctl.stop(this.dataDir, 'immediate', { user: 'postgres' }).catch(() => undefined);
    await rm(this.baseDir, { recursive: true, force: true });
  }

  killNow(): void {
    const status = readPostmasterStatus(this.dataDir);
    if (status) {
      try {
        // SIGQUIT is PostgreSQL's immediate shutdown.
        process.kill(status.pid, 'SIGQUIT');
      } catch {
        // Already gone.
      }
    }
    try {
      rmSync(this.baseDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // The server may still be writing its last files; the temp directory is cleaned eventually.
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }
}

async function writeOwned(path: string, content: string, mode: number, owner: { uid: number; gid: number }): Promise<void> {
  await writeFile(path, content, { mode });
  await chown(path, owner.uid, owner.gid);
}

/** A port the OS just gave out on 127.0.0.1 (and we released). */
export async function freeLoopbackPort(): Promise<number> {
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
