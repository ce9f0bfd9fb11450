import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import {
  PgBasebackupDriver,
  PgBinaries,
  PgControlClient,
  PgCtlDriver,
  PgSqlClient,
  PgWaldumpDriver,
  ProcessRunner,
  lookupOsUser,
  startReplicationBaseBackup,
} from '@rookery/postgres';
import { shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository, RepositoryLock } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { EngineContext } from './engine.context';
import { ISOLATED_HBA_FILE, PostgresTools, RESTORED_SERVER_LOG } from './postgres.tools';
import { RookeryEngine } from './rookery.engine';
import { startTarExtraction } from './tar-extraction.factory';
import { primaryStoreUrl, signingKeyringFor, storeOptionsFor } from '@rookery/wal';
import { artifactEncodingFor } from './artifact.codec';

export interface EngineOptions {
  /** Who runs the engine: 'cli', 'oltp-backup service'. */
  actor: string;
  version?: string;
  /**
   * How a restored server runs this rookery (argv, before the command name): the restore_command
   * it writes is `<selfCommand…> wal-get %f %p --tier T`. The CLI passes its node binary, its
   * script and the --config/--repo it was given. Without it, a restore writes no recovery
   * settings and only latest (crash recovery to the backup's end) is possible.
   */
  selfCommand?: readonly string[];
}

export const ROOKERY_VERSION = '0.1.0';

/**
 * Builds the engine from a validated configuration: opens the primary store, resolves the
 * PostgreSQL programs, parses the encryption key. The only place that turns config into parts.
 */
export async function createEngine(config: RookeryConfig, options: EngineOptions): Promise<RookeryEngine> {
  const primaryUrl = primaryStoreUrl(config);
  const store = createStore(primaryUrl, storeOptionsFor(config));
  const runner = new ProcessRunner({ baseEnv: processEnvironment() });
  const binaries = await PgBinaries.resolve({ binDir: config.postgres.binDir, runner });
  const sql = new PgSqlClient();
  const control = new PgControlClient(sql);
  const basebackup = new PgBasebackupDriver(runner, binaries);
  const pgCtl = new PgCtlDriver(runner, binaries);
  const waldump = new PgWaldumpDriver(runner, binaries);
  const idleTimeoutMs = config.postgres.idleTimeoutSeconds * 1000;

  // Servers run as the postgres account when rookery runs as root (PostgreSQL refuses root).
  const owner = process.getuid?.() === 0 ? ('postgres' as const) : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const lookupOwner = async () => (process.getuid?.() === 0 ? lookupOsUser('postgres') : null);
  const postgres: PostgresTools = {
    control: {
      serverInfo: (url) => control.serverInfo(url),
      clusterSize: async (url) => {
        const rows = await sql.query<{ size: string }>(url, 'select sum(pg_database_size(oid))::text as size from pg_database');
        return Number(rows[0]?.size ?? 0);
      },
      nextXid: async (url) => {
        const rows = await sql.query<{ next: string }>(url, 'select pg_snapshot_xmax(pg_current_snapshot())::text as next');
        return String(rows[0]?.next);
      },
    },
    // A base backup whose server stops sending fails after postgres.idleTimeoutSeconds of silence.
    basebackup: {
      start: (request) => basebackup.start({ ...request, idleTimeoutMs }),
      startServerCompressed: (request) => startReplicationBaseBackup({ ...request, idleTimeoutMs }),
    },
    osUser: lookupOwner,
    extractTar: (directory, rename, extractOptions = {}) =>
      startTarExtraction(runner, directory, rename, {
        ...extractOptions,
        directWrites: config.restore.directWrites,
        ...(process.getuid?.() === 0 ? { tarUser: 'postgres' as const } : {}),
      }),
    syncFileSystem: async (path) => {
      await runner.run('sync', ['--file-system', path]);
    },
    startRestored: async (dataDirectory, startOptions) => {
      const port = startOptions.port ?? 5432;
      const isolation = startOptions.isolated ? await isolatedSettings(dataDirectory, startOptions.isolated.user, await lookupOwner()) : {};
      // The socket goes into the data directory: the one place certain to exist and be writable
      // by the server's owner, whatever the backed-up server's unix_socket_directories said.
      await pgCtl.start(dataDirectory, {
        user: owner,
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
        // No secret: the restore_command reads what it needs from a 0600 file (RESTORE_ENV_FILE).
        timeoutMs: startOptions.timeoutMs,
      });
      return port;
    },
    stopRestored: (dataDirectory) => pgCtl.stop(dataDirectory, 'fast', { user: owner }),
    isRunning: (dataDirectory) => pgCtl.isRunning(dataDirectory, { user: owner }),
    restorePoints: (walDir, dumpOptions) => waldump.restorePoints(walDir, dumpOptions),
  };

  const encoding = artifactEncodingFor(config);

  const context: EngineContext = {
    config,
    repository: new BackupRepository(store, signingKeyringFor(config)),
    lock: new RepositoryLock(store),
    postgres,
    encoding,
    primaryRegion: regionOf(primaryUrl),
    actor: options.actor,
    version: options.version ?? ROOKERY_VERSION,
    selfCommand: options.selfCommand,
    restoreCommandEnvironment: restoreCommandEnvironment(processEnvironment(), config.encryptionKeyEnv),
  };
  return new RookeryEngine(context, async () => {
    await store.close();
    await Promise.all([shutdownCompressionPool(), shutdownChunkHasher()]);
  });
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

function regionOf(url: string): string {
  if (url.startsWith('s3://')) return new URL(url).searchParams.get('region') ?? 'primary';
  return 'local';
}

/**
 * What a restored server's restore_command needs from our environment: the AWS SDK chain's
 * variables (the store's credentials, region, endpoint settings) and rookery's own (config file,
 * encryption key). Handed to the server's environment, never to argv or its configuration files.
 */
function restoreCommandEnvironment(env: NodeJS.ProcessEnv, keyEnv: string | undefined): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => (/^(AWS_|ROOKERY_)/.test(entry[0]) || entry[0] === keyEnv) && entry[1] !== undefined,
    ),
  );
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
