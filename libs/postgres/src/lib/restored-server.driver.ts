import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PgCtlDriver } from './pg-ctl.driver';
import { ProcessUser } from './process.runner';

/** rookery's own pg_hba.conf of an isolated restored server (relative to its data directory). */
export const ISOLATED_HBA_FILE = 'rookery-hba.conf';

/** Where a server started by RestoredServerDriver logs (relative to its data directory). */
export const RESTORED_SERVER_LOG = 'rookery-start.log';

export interface RestoredServerStartOptions {
  /** Default 5432. */
  port?: number;
  timeoutMs?: number;
  /**
   * A drill's or DR check's server: no TCP listener, socket in the data directory, and rookery's
   * own pg_hba (ISOLATED_HBA_FILE) that lets only `user` in, locally.
   */
  isolated?: { user: string };
}

/**
 * Starts, stops and checks the server of a restored data directory: a server rookery did not
 * initdb, whose configuration came from the backed-up server. Its socket and log go into the data
 * directory, its log is in English, and it runs as the server account of the toolkit.
 */
export class RestoredServerDriver {
  constructor(
    private readonly pgCtl: Pick<PgCtlDriver, 'start' | 'stop' | 'isRunning'>,
    /** Who the server runs as (PostgresToolkit.serverUser). */
    private readonly user: ProcessUser,
    /** The postgres account as root, else null: the isolated pg_hba file is given to it. */
    private readonly owner: () => Promise<{ uid: number; gid: number } | null>,
  ) {}

  /** Starts the server and resolves with its port once it accepts connections. */
  async start(dataDirectory: string, options: RestoredServerStartOptions = {}): Promise<number> {
    const port = options.port ?? 5432;
    const isolation = options.isolated ? await isolatedSettings(dataDirectory, options.isolated.user, await this.owner()) : {};
    // The socket goes into the data directory: the one place certain to exist and be writable
    // by the server's owner, whatever the backed-up server's unix_socket_directories said.
    await this.pgCtl.start(dataDirectory, {
      user: this.user,
      port,
      socketDir: dataDirectory,
      logFile: join(dataDirectory, RESTORED_SERVER_LOG),
      // The restore reads the recovery outcome from this log: keep it here and in English,
      // whatever logging the backed-up server was configured with.
      settings: {
        logging_collector: 'off',
        log_destination: 'stderr',
        lc_messages: 'C',
        ...(await startSyncSetting(dataDirectory)),
        ...isolation,
      },
      // No secret: the restore_command reads what it needs from a 0600 file (the engine's RESTORE_ENV_FILE).
      timeoutMs: options.timeoutMs,
    });
    return port;
  }

  /** Fast shutdown of a server started by start(). */
  stop(dataDirectory: string): Promise<void> {
    return this.pgCtl.stop(dataDirectory, 'fast', { user: this.user });
  }

  /** True while a server runs on the data directory. */
  isRunning(dataDirectory: string): Promise<boolean> {
    return this.pgCtl.isRunning(dataDirectory, { user: this.user });
  }
}

/**
 * A restored server starts as after a crash, and first fsyncs every file of its data directory
 * one by one (time that grows with the number of files). The restore has just synced
 * the whole file system (syncfs), so on Linux with PostgreSQL 14+ the server's own pass is one
 * syncfs too (recovery_init_sync_method): the same guarantee rookery's own sync relies on.
 */
async function startSyncSetting(dataDirectory: string): Promise<Record<string, string>> {
  if (process.platform !== 'linux') return {};
  const major = Number((await readFile(join(dataDirectory, 'PG_VERSION'), 'utf8').catch(() => '')).trim());
  return major >= 14 ? { recovery_init_sync_method: 'syncfs' } : {};
}

/**
 * A drill's or DR check's server: no TCP listener (its socket is in the private data directory)
 * and an authentication file of rookery's own, which lets only `user` in through that socket,
 * whatever the backed-up server's listen_addresses and pg_hba.conf said.
 */
async function isolatedSettings(
  dataDirectory: string,
  user: string,
  owner: { uid: number; gid: number } | null,
): Promise<Record<string, string>> {
  const hbaFile = join(dataDirectory, ISOLATED_HBA_FILE);
  await writeFile(
    hbaFile,
    `# rookery: an isolated restored server, reachable only through its socket in ${dataDirectory}\nlocal all ${hbaName(user)} trust\n`,
    { mode: 0o600 },
  );
  await chmod(hbaFile, 0o600);
  if (owner) await chown(hbaFile, owner.uid, owner.gid);
  return { listen_addresses: '', hba_file: hbaFile };
}

/** A role name in pg_hba.conf: quoted unless plain. */
function hbaName(user: string): string {
  return /^[A-Za-z0-9_]+$/.test(user) ? user : `"${user.replace(/"/g, '""')}"`;
}
