import { chmod, chown, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import { PostgresToolkit, createPostgresToolkit, startReplicationBaseBackup } from '@rookery/postgres';
import { shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository, RepositoryLock } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { EngineContext } from './engine.context';
import { ISOLATED_HBA_FILE, PostgresTools, RESTORED_SERVER_LOG } from './postgres.tools';
import { RookeryEngine } from './rookery.engine';
import { startTarExtraction } from './tar-extraction.factory';
import { primaryStoreUrl, signingKeyringFor, storeOptionsFor } from '@rookery/wal';
import { artifactEncodingFor } from './artifact.codec';
import { logicalToolsOf } from './logical-tools';

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
  /**
   * Wraps the PostgreSQL tools before the engine uses them: specs inject faults or watch at that
   * boundary (an extraction that fails, a restored server's start), the engine stays as built.
   */
  postgres?: (tools: PostgresTools) => PostgresTools;
}

export const ROOKERY_VERSION = '0.1.0';

/**
 * Builds the engine from a validated configuration: opens the primary store, resolves the
 * PostgreSQL programs, parses the encryption key. The only place that turns config into parts.
 */
export async function createEngine(config: RookeryConfig, options: EngineOptions): Promise<RookeryEngine> {
  const primaryUrl = primaryStoreUrl(config);
  const store = createStore(primaryUrl, storeOptionsFor(config));
  const toolkit = await postgresToolkitFor(config);
  const postgres = postgresTools(toolkit, config);
  const encoding = artifactEncodingFor(config);

  const context: EngineContext = {
    config,
    repository: new BackupRepository(store, signingKeyringFor(config)),
    lock: new RepositoryLock(store),
    postgres: options.postgres ? options.postgres(postgres) : postgres,
    encoding,
    primaryRegion: regionOf(primaryUrl),
    actor: options.actor,
    version: options.version ?? ROOKERY_VERSION,
    selfCommand: options.selfCommand,
    restoreCommandEnvironment: restoreCommandEnvironment(processEnvironment(), config.encryptionKeyEnv),
  };
  return new RookeryEngine(context, logicalToolsOf(toolkit), async () => {
    await store.close();
    await Promise.all([shutdownCompressionPool(), shutdownChunkHasher()]);
  });
}

/** The PostgreSQL toolkit of the config: one runner and one PostgreSQL installation for everything. */
export function postgresToolkitFor(config: RookeryConfig, applicationName = 'rookery'): Promise<PostgresToolkit> {
  return createPostgresToolkit({ binDir: config.postgres.binDir, env: processEnvironment(), applicationName });
}

/** The engine's PostgresTools over the toolkit, with the restore settings of the config. */
function postgresTools(toolkit: PostgresToolkit, config: RookeryConfig): PostgresTools {
  const { control, pgCtl, waldump, serverUser: user } = toolkit;
  const idleTimeoutMs = config.postgres.idleTimeoutSeconds * 1000;
  return {
    control: {
      serverInfo: (url) => control.serverInfo(url),
      clusterSize: (url) => control.clusterSize(url),
      nextXid: (url) => control.nextXid(url),
    },
    // A base backup whose server stops sending fails after postgres.idleTimeoutSeconds of silence.
    basebackup: {
      start: (request) => toolkit.basebackup.start({ ...request, idleTimeoutMs }),
      startServerCompressed: (request) => startReplicationBaseBackup({ ...request, idleTimeoutMs }),
    },
    osUser: () => toolkit.postgresAccount(),
    extractTar: (directory, rename, extractOptions = {}) =>
      startTarExtraction(toolkit.tar, directory, rename, {
        ...extractOptions,
        directWrites: config.restore.directWrites,
        ...(toolkit.asRoot ? { tarUser: 'postgres' as const } : {}),
      }),
    syncFileSystem: (path) => toolkit.syncFileSystem(path),
    startRestored: async (dataDirectory, startOptions) => {
      const port = startOptions.port ?? 5432;
      const isolation = startOptions.isolated
        ? await isolatedSettings(dataDirectory, startOptions.isolated.user, await toolkit.postgresAccount())
        : {};
      // The socket goes into the data directory: the one place certain to exist and be writable
      // by the server's owner, whatever the backed-up server's unix_socket_directories said.
      await pgCtl.start(dataDirectory, {
        user,
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
    stopRestored: (dataDirectory) => pgCtl.stop(dataDirectory, 'fast', { user }),
    isRunning: (dataDirectory) => pgCtl.isRunning(dataDirectory, { user }),
    restorePoints: (walDir, dumpOptions) => waldump.restorePoints(walDir, dumpOptions),
  };
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
