import { PgBasebackupDriver } from './pg-basebackup.driver';
import { PgBinaries } from './pg-binaries';
import { PgControlClient } from './pg-control.client';
import { PgCtlDriver } from './pg-ctl.driver';
import { PgDumpDriver } from './pg-dump.driver';
import { PgReceivewalClient } from './pg-receivewal.client';
import { PgReceivewalDriver } from './pg-receivewal.driver';
import { PgRestoreDriver } from './pg-restore.driver';
import { PgSqlClient } from './pg-sql.client';
import { PgVerifybackupDriver } from './pg-verifybackup.driver';
import { PgWaldumpDriver } from './pg-waldump.driver';
import { OsUser, ProcessEnv, ProcessRunner, ProcessUser, lookupOsUser } from './process.runner';
import { RestoredServerDriver } from './restored-server.driver';
import { ScratchCluster, ScratchClusterOptions, createScratchCluster } from './scratch-cluster';
import { TarDriver } from './tar.driver';

export interface PostgresToolkitConfig {
  /** postgres.binDir: where the PostgreSQL programs are; absent, `pg_config --bindir`, then the default (PgBinaries). */
  binDir?: string | null;
  /** The environment children start from (ProcessRunner baseEnv): config hands in process.env. */
  env: ProcessEnv;
  /** application_name of the SQL sessions: 'rookery', 'rookery-validator'. */
  applicationName?: string;
}

/**
 * Everything of PostgreSQL rookery drives, built from one config: one process runner, one
 * PostgreSQL installation, the drivers of its programs, the SQL and control clients, GNU tar, and
 * which account servers run as. The only place that turns the postgres config into these parts
 * (pgBackRest's per-driver helper); composition roots take what they need from it.
 */
export interface PostgresToolkit {
  readonly runner: ProcessRunner;
  readonly binaries: PgBinaries;
  readonly sql: PgSqlClient;
  /** SQL sessions under another application_name (the validator's), for a caller that shares this toolkit. */
  sqlAs(applicationName: string): PgSqlClient;
  /** serverInfo, clusterSize, nextXid: the control queries to the database being backed up. */
  readonly control: PgControlClient;
  readonly basebackup: PgBasebackupDriver;
  readonly pgCtl: PgCtlDriver;
  readonly waldump: PgWaldumpDriver;
  readonly dump: PgDumpDriver;
  readonly restore: PgRestoreDriver;
  readonly verifybackup: PgVerifybackupDriver;
  readonly receivewal: PgReceivewalDriver;
  readonly receivewalClient: PgReceivewalClient;
  readonly tar: TarDriver;
  /** Starts, stops and checks restored data directories' servers as serverUser (isolated ones for drills). */
  readonly restoredServer: RestoredServerDriver;
  /**
   * Whether rookery runs as root. PostgreSQL refuses root: servers, tar and the directories they
   * use then run as the postgres account.
   */
  readonly asRoot: boolean;
  /** Who a server started here runs as: the postgres account as root, else this process's own uid and gid. */
  readonly serverUser: ProcessUser;
  /** The postgres account as root (files handed to servers get its uid and gid), else null. */
  postgresAccount(): Promise<OsUser | null>;
  /** Flushes the file system that holds `path` (sync --file-system: one syncfs). */
  syncFileSystem(path: string): Promise<void>;
  /** A throwaway cluster of this installation (drills restore logical backups into one). */
  scratchCluster(options: Omit<ScratchClusterOptions, 'binDir' | 'baseEnv' | 'tools'>): Promise<ScratchCluster>;
}

export async function createPostgresToolkit(config: PostgresToolkitConfig): Promise<PostgresToolkit> {
  const runner = new ProcessRunner({ baseEnv: config.env });
  const binaries = await PgBinaries.resolve({ binDir: config.binDir ?? undefined, runner });
  const sql = new PgSqlClient(config.applicationName ? { applicationName: config.applicationName } : {});
  const uid = process.getuid?.();
  const asRoot = uid === 0;
  const pgCtl = new PgCtlDriver(runner, binaries);
  const serverUser: ProcessUser = asRoot ? 'postgres' : { uid: uid ?? 0, gid: process.getgid?.() ?? 0 };
  const postgresAccount = async () => (asRoot ? lookupOsUser('postgres') : null);
  return {
    runner,
    binaries,
    sql,
    sqlAs: (applicationName) => new PgSqlClient({ applicationName }),
    control: new PgControlClient(sql),
    basebackup: new PgBasebackupDriver(runner, binaries),
    pgCtl,
    waldump: new PgWaldumpDriver(runner, binaries),
    dump: new PgDumpDriver(runner, binaries),
    restore: new PgRestoreDriver(runner, binaries),
    verifybackup: new PgVerifybackupDriver(runner, binaries),
    receivewal: new PgReceivewalDriver(runner, binaries),
    receivewalClient: new PgReceivewalClient(sql),
    tar: new TarDriver(runner),
    restoredServer: new RestoredServerDriver(pgCtl, serverUser, postgresAccount),
    asRoot,
    serverUser,
    postgresAccount,
    syncFileSystem: async (path) => {
      await runner.run('sync', ['--file-system', path]);
    },
    scratchCluster: (options) => createScratchCluster({ ...options, tools: { runner, binaries } }),
  };
}
