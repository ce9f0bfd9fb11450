import { openSync, writeSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { Command } from 'commander';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import { ConfigError, RookeryError, TierName, parseWalFileName } from '@rookery/core';
import {
  AsyncArchiveSettings,
  ForegroundFailure,
  WalArchiverDaemon,
  WalEngine,
  WalPrefetcher,
  WalPushInvocation,
  WalLaunchers,
  WalSpool,
  awaitAcknowledgement,
  clearPrefetchSpool,
  createWalEngine,
  globalArgsOf,
  prefetchSpoolFor,
  requestPrefetch,
  requireWalFile,
  takePrefetched,
  writeCachedSettings,
} from '@rookery/wal';
import { GlobalOptions, configFor, parseTier } from '../cli.config';

// No import of the engine's index or cli.context here: these commands also run from wal.main.ts,
// which loads only WAL transfer (see createWalEngine).

/**
 * wal-get exits 1 only when the file is not in the archive: that is how PostgreSQL's recovery
 * learns the archive has ended. Any other failure (store unreachable, damaged object, wrong key)
 * exits with this status, which PostgreSQL treats as fatal (> 125): recovery stops instead of
 * promoting at a point short of the target with WAL still in the archive.
 */
export const WAL_GET_ABORT_RECOVERY = 128;

export class WalGetFailedError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

export function walPushCommand(launchers: WalLaunchers = {}): Command {
  return new Command('wal-push')
    .description("archive one WAL file (archive_command = 'rookery wal-push %p --tier T')")
    .argument('<path>', 'the WAL file to archive (%p)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const config = configFor(command, { events: false });
      if (config.wal.archiveAsync) {
        await pushAsynchronously(command, config, tier, path, launchers);
        return;
      }
      const result = await withWalEngine(config, (engine) => engine.wal.push(tier, path), { oneShot: true });
      if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}

/**
 * wal.archiveAsync: the background archiver pushes, this call waits for its acknowledgement. The
 * full CLI comes here only when bin/rookery.js's fast path had no valid settings cache (first call,
 * config file changed): it validated the configuration, so it refreshes the cache for the next calls.
 */
async function pushAsynchronously(
  command: Command,
  config: RookeryConfig,
  tier: TierName,
  path: string,
  { archiver: launcher }: WalLaunchers,
): Promise<void> {
  // Not a WAL file name: a usage error (exit 2), as in the synchronous push; the archiver would never push it.
  requireWalFile(basename(path));
  const globals = command.optsWithGlobals<GlobalOptions>();
  if (!launcher) {
    throw new ConfigError('asynchronous WAL archiving needs the rookery command (bin/rookery.js)', ['wal']);
  }
  const invocation: WalPushInvocation = {
    path,
    tier,
    configFile: globals.config,
    repositories: globals.repo ?? [],
    json: Boolean(globals.json),
  };
  const settings = asyncArchiveSettings(config);
  await writeCachedSettings(invocation, settings, processEnvironment(), process.cwd());
  try {
    const result = await awaitAcknowledgement(invocation, settings, launcher);
    if (invocation.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    if (error instanceof ForegroundFailure) throw new RookeryError('WAL_PUSH_FAILED', 'storage', error.message, { retryable: true });
    throw error;
  }
}

/** What wal-push's fast path needs of the configuration (and caches): spool, store, timeout. */
function asyncArchiveSettings(config: RookeryConfig): AsyncArchiveSettings & { spoolPath: string } {
  if (!config.wal.spoolPath || !config.repositories[0]) {
    throw new ConfigError('asynchronous WAL archiving needs wal.spoolPath and a repository', ['wal']);
  }
  return { spoolPath: config.wal.spoolPath, store: config.repositories[0], archiveTimeoutSeconds: config.wal.archiveTimeoutSeconds };
}

/**
 * The background archiver of wal.archiveAsync, started detached by wal-push (not for people: it
 * is hidden from --help). It exits at once when another archiver holds the spool, else after
 * wal.archiverIdleSeconds without ready files, or on SIGTERM/SIGINT after its pushes in flight.
 *
 * --early: started by a wal-push that had not read the configuration yet (walPushFastPath). It
 * refuses to run unless wal.archiveAsync is on, writes the settings cache that call is waiting
 * for, and appends its log lines to the spool's archiver.log itself.
 */
export function walArchiverCommand(): Command {
  return new Command('wal-archiver')
    .description('background archiver of asynchronous wal-push (started by wal-push)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .requiredOption('--wal-dir <dir>', "the server's pg_wal directory")
    .option('--early', 'started by wal-push before it read the configuration')
    .action(async (options: GlobalOptions & { walDir: string; early?: boolean }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const controller = new AbortController();
      const stop = () => controller.abort(new Error('archiver stopped by signal'));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      const config = configFor(command, { events: false });
      const settings = asyncArchiveSettings(config);
      const spool = WalSpool.forTier(settings.spoolPath, tier);
      let log: (line: string) => void = (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
      if (options.early) {
        if (!config.wal.archiveAsync)
          throw new ConfigError('the background WAL archiver runs only with wal.archiveAsync', ['wal.archiveAsync']);
        await spool.prepare();
        log = spoolLog(spool.logPath());
        const globals = command.optsWithGlobals<GlobalOptions>();
        const invocation = { configFile: globals.config, repositories: globals.repo ?? [] };
        await writeCachedSettings({ ...invocation, path: '', tier, json: false }, settings, processEnvironment(), process.cwd());
      }
      await withWalEngine(config, (engine) =>
        new WalArchiverDaemon(engine.wal).run({
          tier,
          walDirectory: resolve(options.walDir),
          spool,
          store: settings.store,
          processMax: config.wal.processMax,
          batchMax: config.wal.batchMax,
          idleMs: config.wal.archiverIdleSeconds * 1000,
          signal: controller.signal,
          log,
        }),
      );
    });
}

/** Log lines appended to `path` (the spool's archiver.log), in order. */
function spoolLog(path: string): (line: string) => void {
  const descriptor = openSync(path, 'a', 0o600);
  return (line) => {
    try {
      writeSync(descriptor, `${new Date().toISOString()} ${line}\n`);
    } catch {
      // A full disk must not stop archiving; the records in the spool still tell what happened.
    }
  };
}

export function walGetCommand(launchers: WalLaunchers = {}): Command {
  return new Command('wal-get')
    .description("fetch one WAL file for recovery (restore_command = 'rookery wal-get %f %p --tier T')")
    .argument('<name>', 'the WAL file name (%f)')
    .argument('<destination>', 'where to put it (%p)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .option(
      '--prefetch <segments>',
      'fetch up to this many next segments in the background into <dir of %p>/rookery-prefetch (0: off)',
      parseCount,
      0,
    )
    .action(async (name: string, destination: string, options: GlobalOptions & { prefetch: number }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      try {
        if (options.prefetch > 0 && (await servedWithPrefetch(command, tier, name, destination, options.prefetch, launchers))) return;
        await withWalEngine(configFor(command, { events: false }), (engine) => engine.wal.get(tier, name, destination));
        // A timeline history file found: recovery may take another timeline, and what the
        // prefetcher fetched may be for the wrong one. One not archived changes no timeline.
        if (options.prefetch > 0 && parseWalFileName(name)?.kind === 'history') await clearPrefetchSpool(prefetchSpoolFor(destination));
      } catch (error) {
        if (error instanceof RookeryError && error.code === 'WAL_NOT_FOUND') throw error;
        throw new WalGetFailedError(error);
      }
    });
}

/**
 * wal-get --prefetch: true when the prefetcher already fetched (and verified) this segment. A
 * miss tells the prefetcher where recovery is (starting one if none runs) and returns false: the
 * caller fetches the file itself, so nothing waits for the prefetcher. A history file is fetched in
 * the foreground (and, found, drops the spool: see walGetCommand).
 */
async function servedWithPrefetch(
  command: Command,
  tier: TierName,
  name: string,
  destination: string,
  depth: number,
  { prefetcher: launcher }: WalLaunchers,
): Promise<boolean> {
  const spoolDirectory = prefetchSpoolFor(destination);
  const file = parseWalFileName(name);
  if (file?.kind !== 'segment') return false;
  if (await takePrefetched(spoolDirectory, name, destination)) return true;
  if (launcher) {
    const globals = command.optsWithGlobals<GlobalOptions>();
    await requestPrefetch(
      { tier, spoolDirectory, depth, globalArgs: globalArgsOf({ configFile: globals.config, repositories: globals.repo ?? [] }) },
      name,
      launcher,
    );
  }
  return false;
}

/**
 * The prefetcher of wal-get --prefetch, started detached by wal-get (hidden from --help). Exits
 * at once when another one holds the spool, else when idle (see WalPrefetcher) or on SIGTERM/SIGINT.
 */
export function walPrefetcherCommand(): Command {
  return new Command('wal-prefetcher')
    .description('background prefetcher of wal-get --prefetch (started by wal-get)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .requiredOption('--spool <dir>', 'the prefetch spool')
    .option('--depth <segments>', 'segments to hold ahead', parseCount, 32)
    .option('--idle-seconds <seconds>', 'exit after this long without activity (default wal.archiverIdleSeconds)', parseCount)
    .action(async (options: GlobalOptions & { spool: string; depth: number; idleSeconds?: number }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const controller = new AbortController();
      const stop = () => controller.abort(new Error('prefetcher stopped by signal'));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      await withWalEngine(configFor(command, { events: false }), (engine) =>
        new WalPrefetcher(engine.wal).run({
          tier,
          spoolDirectory: resolve(options.spool),
          depth: options.depth,
          processMax: engine.config.wal.processMax,
          idleMs: (options.idleSeconds ?? engine.config.wal.archiverIdleSeconds) * 1000,
          signal: controller.signal,
          log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
        }),
      );
    });
}

function parseCount(value: string): number {
  const count = Number(value);
  if (!Number.isSafeInteger(count) || count < 0) throw new ConfigError(`'${value}' is not a count`, ['--prefetch']);
  return count;
}

async function withWalEngine<T>(
  config: RookeryConfig,
  work: (engine: WalEngine) => Promise<T>,
  options: { oneShot?: boolean } = {},
): Promise<T> {
  const engine = createWalEngine(config, options);
  try {
    return await work(engine);
  } finally {
    await engine.close();
  }
}
