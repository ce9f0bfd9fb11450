import { RookeryConfig, processEnvironment } from '@rookery/config';
import { PostgresToolkit, createPostgresToolkit, startReplicationBaseBackup } from '@rookery/postgres';
import { shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository, RepositoryLock } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { EngineContext } from './engine.context';
import { PostgresTools } from './postgres.tools';
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
  /**
   * Wraps the PostgreSQL tools before the engine uses them: specs inject faults or watch at that
   * boundary (an extraction that fails, a restored server's start), the engine stays as built.
   */
  postgres?: (tools: PostgresTools) => PostgresTools;
  /**
   * The process's PostgreSQL toolkit when the caller built it already, from the same
   * postgres settings as `config` (the demo starts its source cluster before it has a config);
   * default: built here (postgresToolkitFor).
   */
  toolkit?: PostgresToolkit;
}

export const ROOKERY_VERSION = '0.1.0';

/**
 * Builds the engine from a validated configuration: opens the primary store, resolves the
 * PostgreSQL programs, parses the encryption key. The only place that turns config into parts.
 */
export async function createEngine(config: RookeryConfig, options: EngineOptions): Promise<RookeryEngine> {
  const primaryUrl = primaryStoreUrl(config);
  const store = createStore(primaryUrl, storeOptionsFor(config));
  const toolkit = options.toolkit ?? (await postgresToolkitFor(config));
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
  return new RookeryEngine(context, toolkit, async () => {
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
  const { control, restoredServer, waldump } = toolkit;
  const idleTimeoutMs = config.postgres.idleTimeoutSeconds * 1000;
  return {
    control: {
      serverInfo: (url) => control.serverInfo(url),
      clusterSize: (url) => control.clusterSize(url),
      nextXid: (url) => control.nextXid(url),
      tablespaces: (url) => control.tablespaces(url),
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
    startRestored: (dataDirectory, startOptions) => restoredServer.start(dataDirectory, startOptions),
    stopRestored: (dataDirectory) => restoredServer.stop(dataDirectory),
    isRunning: (dataDirectory) => restoredServer.isRunning(dataDirectory),
    restorePoints: (walDir, dumpOptions) => waldump.restorePoints(walDir, dumpOptions),
  };
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
