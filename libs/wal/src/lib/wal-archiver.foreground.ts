import { createHash } from 'node:crypto';
import { FSWatcher, existsSync, watch } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { WalPushInvocation, globalArgsOf, parseWalPushArgs } from './wal.arguments';
import { WAL_LONG_HEADER_BYTES, checkWalFile } from './wal-file.check';
import type { PrefetcherLauncher } from './wal-prefetch';
import { Napper, WalAcknowledgement, WalSpool, fileIdentity, sameIdentity, secondsWithNanos, sha256OfFile } from './wal.spool';

// The foreground of asynchronous archiving (wal.archiveAsync): what `rookery wal-push` does for
// PostgreSQL's archive_command. bin/rookery.js loads this file before anything else, so it uses
// node built-ins and two import-free files only (no @rookery/* import, no YAML, no zod, no SDK): a call for a segment the
// background archiver already made durable costs node's start and a few file reads.

/** What the fast path needs from the configuration, cached by the full CLI after it validated it. */
export interface AsyncArchiveSettings {
  spoolPath: string;
  /** The primary store URL (acknowledgements name it). */
  store: string;
  archiveTimeoutSeconds: number;
}

export interface ArchiverLaunch {
  tier: string;
  /** pg_wal of the server (the directory of %p), absolute. */
  walDirectory: string;
  /** The global options of this invocation (--config, --repo), handed on unchanged: no secret is added to argv. */
  globalArgs: string[];
  logFile: string;
  /**
   * Started before this call read the configuration (see walPushFastPath): the archiver checks
   * wal.archiveAsync itself, writes the settings cache this call waits for, and logs to the spool.
   */
  early?: boolean;
}

/**
 * Starts the background archiver, detached (bin/rookery.js provides it: it knows how to run
 * rookery). May return the archiver's exit, which an early start watches.
 */
export type ArchiverLauncher = (launch: ArchiverLaunch) => { exited: Promise<unknown> } | void;

/**
 * How the WAL commands start their detached helpers, passed down explicitly: bin/rookery.js gives
 * both (it knows how to run rookery). Without an archiver launcher asynchronous wal-push refuses
 * to run; without a prefetcher launcher wal-get --prefetch fetches every file in the foreground.
 */
export interface WalLaunchers {
  archiver?: ArchiverLauncher;
  prefetcher?: PrefetcherLauncher;
}

const WAL_FILE_NAME = /^[0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?$|^[0-9A-F]{8}\.history$/;

/**
 * The names parseWalFileName (@rookery/core, not loaded here) accepts with the default 16 MiB
 * segments: no timeline 0, a segment part below 0x100. The background archiver pushes only those;
 * any other name goes to the full CLI, which refuses it as the synchronous push does (exit 2)
 * instead of waiting archiveTimeoutSeconds for a push that never comes.
 */
export function isWalFileName(name: string): boolean {
  if (!WAL_FILE_NAME.test(name) || name.startsWith('00000000')) return false;
  return name.endsWith('.history') || Number.parseInt(name.slice(16, 24), 16) < 0x100;
}

const CACHE_VERSION = 1;

/**
 * The config file loadConfig would read (--config, else $ROOKERY_CONFIG, else ./rookery.yaml),
 * or null when it would use the built-in defaults (archiveAsync is never on then).
 */
function configPathFor(invocation: WalPushInvocation, env: NodeJS.ProcessEnv, cwd: string): string | null {
  const path = invocation.configFile ?? env['ROOKERY_CONFIG'];
  if (path) return resolve(cwd, path);
  const candidate = resolve(cwd, 'rookery.yaml');
  return existsSync(candidate) ? candidate : null;
}

interface CachedSettings extends AsyncArchiveSettings {
  version: number;
  configPath: string;
  configIdentity: { ino: string; size: string; mtimeNs: string };
}

/**
 * The settings cache: a small JSON file per (working directory, config file, --repo) in a
 * directory of this account's own under the temporary directory. It holds no secret (spool path,
 * store URL, timeout) and is honoured only while the config file keeps its inode, size and
 * modification time; the full CLI rewrites it after validating the file.
 */
function cacheFileFor(invocation: WalPushInvocation, configPath: string, cwd: string, env: NodeJS.ProcessEnv): string {
  const key = createHash('sha256')
    .update(JSON.stringify([cwd, configPath, invocation.repositories]))
    .digest('hex')
    .slice(0, 20);
  return join(cacheDirectory(env), `wal-push-${key}.json`);
}

function cacheDirectory(env: NodeJS.ProcessEnv): string {
  return join(env['TMPDIR'] || tmpdir(), `rookery-${process.getuid?.() ?? 'user'}`);
}

/** A directory that is ours alone: not a symlink, owned by this account, mode 0700. */
async function privateDirectory(path: string): Promise<boolean> {
  try {
    const stats = await lstat(path);
    return stats.isDirectory() && (process.getuid === undefined || stats.uid === process.getuid()) && (stats.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

async function configIdentity(path: string): Promise<CachedSettings['configIdentity']> {
  const stats = await stat(path, { bigint: true });
  return { ino: String(stats.ino), size: String(stats.size), mtimeNs: String(stats.mtimeNs) };
}

export async function readCachedSettings(
  invocation: WalPushInvocation,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<AsyncArchiveSettings | null> {
  const configPath = configPathFor(invocation, env, cwd);
  if (!configPath) return null;
  const file = cacheFileFor(invocation, configPath, cwd, env);
  try {
    if (!(await privateDirectory(dirname(file)))) return null;
    const cached = JSON.parse(await readFile(file, 'utf8')) as CachedSettings;
    const now = await configIdentity(configPath);
    const same =
      cached.version === CACHE_VERSION && cached.configPath === configPath && JSON.stringify(cached.configIdentity) === JSON.stringify(now);
    return same ? { spoolPath: cached.spoolPath, store: cached.store, archiveTimeoutSeconds: cached.archiveTimeoutSeconds } : null;
  } catch {
    return null;
  }
}

/** Called by the full CLI once the configuration is validated and says archiveAsync. Best effort. */
export async function writeCachedSettings(
  invocation: WalPushInvocation,
  settings: AsyncArchiveSettings,
  env: NodeJS.ProcessEnv,
  cwd: string,
): Promise<void> {
  const configPath = configPathFor(invocation, env, cwd);
  if (!configPath) return;
  const file = cacheFileFor(invocation, configPath, cwd, env);
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    if (!(await privateDirectory(dirname(file)))) return;
    const cached: CachedSettings = { version: CACHE_VERSION, configPath, configIdentity: await configIdentity(configPath), ...settings };
    await replaceFile(file, JSON.stringify(cached));
    const shellCache = shellCacheLines(invocation, configPath, cached);
    if (shellCache) await replaceFile(join(dirname(file), `wal-push-sh-${await shellCacheKey(cwd, configPath)}`), shellCache);
  } catch {
    // Without the cache every call takes the full CLI: slower, still correct.
  }
}

async function replaceFile(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await rename(temporary, path);
}

/**
 * bin/rookery-wal-push finds its cache by the device and inode of its working directory and of the
 * config file, which the one `stat` it runs per call prints anyway (no hashing process to start).
 */
async function shellCacheKey(cwd: string, configPath: string): Promise<string> {
  const [directory, config] = await Promise.all([stat(cwd, { bigint: true }), stat(configPath, { bigint: true })]);
  return `${directory.dev}-${directory.ino}-${config.dev}-${config.ino}`;
}

/**
 * The shell fast path's cache: three lines it reads with `read` and compares with `stat -c
 * '%i %s %.9Y'` of the config file: the config file's identity, the spool path, the store URL.
 * Only for invocations without --repo, and only for values that are one line each.
 */
function shellCacheLines(invocation: WalPushInvocation, configPath: string, cached: CachedSettings): string | null {
  if (invocation.repositories.length > 0) return null;
  const { ino, size, mtimeNs } = cached.configIdentity;
  const lines = [`${ino} ${size} ${secondsWithNanos(mtimeNs)}`, cached.spoolPath, cached.store];
  if (lines.some((line) => /[\n\r]/.test(line)) || /\s/.test(cached.store) || configPath.includes('\n')) return null;
  return `${lines.join('\n')}\n`;
}

export interface ForegroundOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export class ForegroundFailure extends Error {}

const POLL_MS = 100;
const LAUNCH_RETRY_MS = 3_000;

/**
 * archive_command in asynchronous mode: exit 0 once the background archiver has acknowledged this
 * very content of the file as durable in this store; 1 at once with the archiver's reason when its
 * push failed, or when no acknowledgement came within archiveTimeoutSeconds. Starts the archiver
 * (again) whenever none is alive. PostgreSQL keeps the file and retries on any non-zero exit.
 */
export async function archiveInForeground(
  invocation: WalPushInvocation,
  settings: AsyncArchiveSettings,
  launcher: ArchiverLauncher,
  output: ForegroundOutput,
  options: { launchedAt?: number } = {},
): Promise<number> {
  try {
    const result = await awaitAcknowledgement(invocation, settings, launcher, options);
    if (invocation.json) output.stdout(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    output.stderr(`rookery: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

export interface ForegroundResult {
  name: string;
  status: 'acknowledged';
  sha256: string;
  /** True when the file had to be hashed (its identity differed from the acknowledged one). */
  hashed: boolean;
  waitedMs: number;
}

/** The wait itself: resolves with the acknowledgement, rejects with a ForegroundFailure (reason, or timeout). */
export async function awaitAcknowledgement(
  invocation: WalPushInvocation,
  settings: AsyncArchiveSettings,
  launcher: ArchiverLauncher,
  /** launchedAt: when this call already started an archiver (Date.now()); none is started again within LAUNCH_RETRY_MS. */
  options: { launchedAt?: number } = {},
): Promise<ForegroundResult> {
  const started = Date.now();
  const name = basename(invocation.path);
  if (!isWalFileName(name)) {
    throw new ForegroundFailure(`'${name}' is not a WAL file name (hint: archive_command must pass %p)`);
  }
  const path = resolve(invocation.path);
  await requireTrueWalFile(name, path);
  const spool = WalSpool.forTier(settings.spoolPath, invocation.tier);
  const deadline = started + settings.archiveTimeoutSeconds * 1000;
  let launchedAt = options.launchedAt ?? 0;
  let watcher: FSWatcher | null = null;
  const napper = new Napper();
  try {
    for (;;) {
      const verdict = await verdictFor(spool, name, path, settings.store);
      if (verdict.acknowledged)
        return {
          name,
          status: 'acknowledged',
          sha256: verdict.acknowledged.sha256,
          hashed: verdict.hashed,
          waitedMs: Date.now() - started,
        };
      if (verdict.failure) throw new ForegroundFailure(verdict.failure);
      if (Date.now() > deadline) {
        throw new ForegroundFailure(
          `WAL file '${name}' was not archived by the background archiver within ${settings.archiveTimeoutSeconds} s (hint: see ${spool.logPath()})`,
        );
      }
      if (Date.now() - launchedAt > LAUNCH_RETRY_MS && (await spool.archiverPid()) === null) {
        await spool.prepare();
        launcher({ tier: invocation.tier, walDirectory: dirname(path), globalArgs: globalArgsOf(invocation), logFile: spool.logPath() });
        launchedAt = Date.now();
      }
      watcher ??= watchDirectory(spool.directory, napper.wake);
      await napper.nap(POLL_MS);
    }
  } finally {
    watcher?.close();
  }
}

/**
 * Refuses at once a file that is not the WAL segment its name says (size, page header): the
 * background archiver would refuse it too. Whether it comes from the tier's database system only
 * the archiver can tell (it reads the repository's record).
 */
async function requireTrueWalFile(name: string, path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(WAL_LONG_HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const check = checkWalFile(name, size, head.subarray(0, bytesRead));
    if (check.problem !== null) throw new ForegroundFailure(`${check.problem}; nothing was stored`);
  } finally {
    await handle.close();
  }
}

function watchDirectory(directory: string, onChange: () => void): FSWatcher | null {
  try {
    const watcher = watch(directory, { persistent: false }, onChange);
    watcher.on('error', () => undefined);
    return watcher;
  } catch {
    return null; // Polling alone still works.
  }
}

interface Verdict {
  acknowledged?: WalAcknowledgement;
  hashed: boolean;
  failure?: string;
}

/**
 * Is this file's content acknowledged? The recorded identity (inode, size, times; see
 * WalFileIdentity) proves it without reading 16 MiB; when the identity differs (a copy, a
 * restored file) the file is hashed and only the same sha256 counts. An acknowledgement for other
 * content, or another store, is dropped so the archiver pushes this file (and reports a conflict).
 * A failure record is consumed: reported once, then PostgreSQL's retry makes the archiver try again.
 */
async function verdictFor(spool: WalSpool, name: string, path: string, store: string): Promise<Verdict> {
  const acknowledgement = await spool.acknowledgement(name);
  if (acknowledgement) {
    if (acknowledgement.store === store) {
      if (sameIdentity(acknowledgement.identity, await fileIdentity(path))) return { acknowledged: acknowledgement, hashed: false };
      if (acknowledgement.sha256 === (await sha256OfFile(path))) return { acknowledged: acknowledgement, hashed: true };
    }
    await spool.forget(name, 'ok');
  }
  const failure = await spool.failure(name);
  if (failure) {
    await spool.forget(name, 'error');
    return { hashed: false, failure: failure.message.replace(/^rookery: /, '') };
  }
  return { hashed: false };
}

/**
 * The whole fast path for bin/rookery.js: null when this is not an asynchronous wal-push the cache
 * vouches for (the full CLI runs instead), else the exit status.
 *
 * Without a valid cache (the first call after installing, a reboot, or a change of the config
 * file) the full CLI would load the configuration, write the cache and only then start the
 * archiver, which loads it all again: two node starts in a row before the first push. When the
 * config file's text asks for archiveAsync, this call starts the archiver at once instead (early):
 * the archiver validates the configuration, refuses to run without archiveAsync, and writes the
 * cache; this call waits for that cache and goes on as the fast path. When the archiver exits
 * without writing it (an invalid configuration, archiveAsync off after all), or nothing comes
 * within EARLY_START_MS, the full CLI takes over and decides, as it always did.
 */
export async function walPushFastPath(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  output: ForegroundOutput,
  launcher: ArchiverLauncher,
): Promise<number | null> {
  const invocation = parseWalPushArgs(args);
  if (!invocation || !isWalFileName(basename(invocation.path))) return null;
  const settings = await readCachedSettings(invocation, env, cwd);
  if (settings) return archiveInForeground(invocation, settings, launcher, output);
  const configPath = configPathFor(invocation, env, cwd);
  if (!configPath || !(await asksForArchiveAsync(configPath))) return null;
  const launchedAt = Date.now();
  const launched = launcher({
    tier: invocation.tier,
    walDirectory: dirname(resolve(cwd, invocation.path)),
    globalArgs: globalArgsOf(invocation),
    logFile: await earlyLogFile(env),
    early: true,
  });
  const validated = await settingsFromEarlyArchiver(invocation, env, cwd, launched?.exited);
  if (!validated) return null;
  return archiveInForeground(invocation, validated, launcher, output, { launchedAt });
}

/** How long a first call waits for an archiver started early to validate the configuration. */
const EARLY_START_MS = 5_000;
const EARLY_POLL_MS = 5;

/**
 * A cheap look at the config file's text (no YAML parser here): `archiveAsync: true` somewhere.
 * Only decides whether to start the archiver early; the archiver's validated configuration decides
 * everything else, so a wrong guess costs a process start, never a wrong push.
 */
async function asksForArchiveAsync(configPath: string): Promise<boolean> {
  try {
    return /\barchiveAsync['"]?\s*:\s*(true|True|TRUE)\b/.test(await readFile(configPath, 'utf8'));
  } catch {
    return false;
  }
}

/** Where an early archiver's own output goes until it has read the configuration (then it logs to the spool). */
async function earlyLogFile(env: NodeJS.ProcessEnv): Promise<string> {
  const directory = cacheDirectory(env);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  if (!(await privateDirectory(directory))) return '/dev/null';
  return join(directory, 'wal-archiver-start.log');
}

/** The settings the early archiver cached once it validated the configuration, or null (it exited, or took too long). */
async function settingsFromEarlyArchiver(
  invocation: WalPushInvocation,
  env: NodeJS.ProcessEnv,
  cwd: string,
  exited: Promise<unknown> | undefined,
): Promise<AsyncArchiveSettings | null> {
  let gone = false;
  exited?.then(
    () => (gone = true),
    () => (gone = true),
  );
  const deadline = Date.now() + EARLY_START_MS;
  for (;;) {
    const settings = await readCachedSettings(invocation, env, cwd);
    if (settings) return settings;
    // It may have written the cache just before leaving (another archiver held the spool).
    if (gone || Date.now() > deadline) return readCachedSettings(invocation, env, cwd);
    await new Promise((done) => setTimeout(done, EARLY_POLL_MS));
  }
}
