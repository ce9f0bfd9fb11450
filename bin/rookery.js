#!/usr/bin/env node
// The `rookery` command: the compiled CLI (built by `npm install` through the prepare script),
// with the workspace's @rookery/* libraries resolved to their compiled output.

const path = require('node:path');

/**
 * The node rookery runs on: this checkout's pinned `node` dependency (package.json), the one npm ci
 * built the native modules for. npm scripts and npx run on it already (npm puts node_modules/.bin
 * first on PATH); a global link (`#!/usr/bin/env node`) or `node bin/rookery.js` may start the
 * machine's node instead, which then runs the same command on the pinned one and ends as it did.
 * Node built-ins only, in this file: the wal-push fast path loads nothing else before its answer.
 */
function runOnPinnedNode() {
  const fs = require('node:fs');
  const pinned = path.join(__dirname, '..', 'node_modules', 'node', 'bin', 'node');
  if (!fs.existsSync(pinned) || fs.realpathSync(pinned) === fs.realpathSync(process.execPath)) return;
  const args = [...process.execArgv, __filename, ...process.argv.slice(2)];
  // eslint-disable-next-line no-restricted-syntax -- the second documented exception (eslint.config.mjs): the same command on the pinned node
  const result = require('node:child_process').spawnSync(pinned, args, { stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`rookery: cannot start the pinned node ${pinned}: ${result.error.message}\n`);
    // A failure for every command: never 1, which wal-get answers for "not archived".
    process.exit(128);
  }
  if (result.signal) process.kill(process.pid, result.signal);
  process.exit(result.status ?? 128 + require('node:os').constants.signals[result.signal]);
}
runOnPinnedNode();

/**
 * V8's code cache of the modules this command loads (Node 22's module.enableCompileCache): a
 * command that archive_command or restore_command starts once per WAL segment, and every other,
 * compiles less at start (`rookery info` 0.32 → 0.27 s of CPU here). The cache is in this account's
 * own cache directory, never a shared one under /tmp: a cache another account could write would be
 * code this one runs. Where it cannot be created the command runs without it (Node reports that
 * in the returned status, nothing is thrown); NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
function enableCompileCache() {
  const { enableCompileCache: enable } = require('node:module');
  if (typeof enable !== 'function') return;
  const base = process.env.XDG_CACHE_HOME || path.join(require('node:os').homedir(), '.cache');
  enable(path.join(base, 'rookery', 'node-compile-cache'));
}
enableCompileCache();

// The WAL side of @rookery/wal that runs before anything else is loaded: its public entry for bin/,
// at this fixed path (libs/wal/README.md). Node built-ins only.
const wal = require('../dist/libs/wal/src/bin.js');

// Failures print one line on stderr; the AWS SDK's notice about future Node versions is not one.
const emitWarning = process.emitWarning;
process.emitWarning = function filteredWarning(warning, ...rest) {
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0] && rest[0].type;
  if (type === 'NodeVersionSupportWarning' || String(warning && (warning.name || warning)).includes('NodeVersionSupportWarning')) return;
  return emitWarning.call(process, warning, ...rest);
};

/**
 * A reader that stops early (`rookery info | head -1`) closes the pipe: what is left to print has
 * nowhere to go, which is not the command's failure. The command runs on and ends with its own
 * exit status; what it still writes is dropped (a stream destroyed by EPIPE ignores writes).
 */
function dropOutputOnClosedPipe(stream) {
  stream.on('error', (error) => {
    if (error && error.code === 'EPIPE') return;
    throw error;
  });
}
dropOutputOnClosedPipe(process.stdout);
dropOutputOnClosedPipe(process.stderr);

/**
 * `--env-file=PATH`, which the restore_command and archive_command of a restored server pass
 * (rookery restore writes them): the store's credentials and the encryption key, kept out of the
 * server's environment, come from that JSON file instead. It must be a regular file of this
 * account's that no one else can read or write; the argument is removed before parsing.
 */
function loadEnvironmentFile() {
  const index = process.argv.findIndex((arg) => arg.startsWith('--env-file='));
  if (index < 0) return;
  const file = process.argv[index].slice('--env-file='.length);
  process.argv.splice(index, 1);
  const fs = require('node:fs');
  const refuse = () => {
    process.stderr.write(
      `rookery: environment file '${file}' must be a regular file of this account's with mode 0600 (hint: chmod 600 it)\n`,
    );
    process.exit(2);
  };
  // Opened once, and checked through that descriptor: what is read is what was checked, whatever
  // happens to the path meanwhile. No symbolic link (O_NOFOLLOW), and no wait on a FIFO (O_NONBLOCK).
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return refuse();
  }
  let text;
  try {
    const stat = fs.fstatSync(fd);
    const uid = process.getuid ? process.getuid() : stat.uid;
    if (!stat.isFile() || stat.uid !== uid || (stat.mode & 0o077) !== 0) return refuse();
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  for (const [key, value] of Object.entries(JSON.parse(text))) {
    if (typeof value === 'string' && process.env[key] === undefined) process.env[key] = value;
  }
}
loadEnvironmentFile();

/**
 * Starts the background WAL archiver of asynchronous wal-push: this same rookery, detached, in the
 * caller's working directory and environment (where the store's credentials come from), with only
 * the --config/--repo PostgreSQL's archive_command already passed: no secret is added to argv.
 * Returns its exit, which a first call that started it early watches (walPushFastPath).
 */
function launchArchiver({ tier, walDirectory, globalArgs, logFile, early }) {
  const child = spawnDetached(
    [...globalArgs, 'wal-archiver', '--tier', tier, '--wal-dir', walDirectory, ...(early ? ['--early'] : [])],
    logFile,
  );
  return { exited: new Promise((done) => child.once('exit', done).once('error', done)) };
}

/**
 * This rookery with `args`, detached, output appended to `logFile`. One of the two processes bin/
 * starts itself (lint allows them alone, see eslint.config.mjs): the background archiver and the
 * prefetcher must outlive this call, and PostgreSQL's archive_command/restore_command cannot wait
 * for libs/postgres to load to start them.
 */
function spawnDetached(args, logFile) {
  // eslint-disable-next-line no-restricted-syntax -- the documented exception above (eslint.config.mjs)
  const { spawn } = require('node:child_process');
  const fs = require('node:fs');
  const log = fs.openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(process.execPath, [__filename, ...args], {
      detached: true,
      stdio: ['ignore', log, log],
      env: process.env,
      cwd: process.cwd(),
    });
    child.on('error', () => undefined);
    child.unref();
    return child;
  } finally {
    fs.closeSync(log);
  }
}

/**
 * Starts the WAL prefetcher of `wal-get --prefetch`: detached, same working directory and
 * environment, with only the --config/--repo options restore_command already passed. Returns its
 * pid (requestPrefetch takes the spool's lock for it).
 */
function launchPrefetcher({ tier, spoolDirectory, depth, globalArgs, logFile }) {
  return spawnDetached([...globalArgs, 'wal-prefetcher', '--tier', tier, '--spool', spoolDirectory, '--depth', String(depth)], logFile).pid;
}

/** How the WAL commands start their detached helpers, passed to them explicitly. */
const launchers = { archiver: launchArchiver, prefetcher: launchPrefetcher };

function runCli(args) {
  require('../tools/runtime/register-aliases.cjs');
  // A process per WAL file: the WAL commands start without the rest of the CLI and engine.
  if (wal.WAL_COMMANDS.has(wal.commandOf(args))) return require('../dist/apps/cli/src/wal.main.js').walMain(process.argv, launchers);
  return require('../dist/apps/cli/src/main.js').main(process.argv);
}

async function run() {
  const args = process.argv.slice(2);
  if (args.includes('wal-push')) {
    // Asynchronous archiving's fast path: node built-ins only, before any library is loaded.
    const output = { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) };
    const code = await wal.walPushFastPath(args, process.env, process.cwd(), output, launchArchiver);
    if (code !== null) return code;
  }
  return runCli(args);
}

const running = run();
// A command whose promise never settled must not end as exit 0 when the event loop drains.
require('../dist/apps/cli/src/cli.drain.js').failWhenDrained(wal.commandOf(process.argv.slice(2)) ?? 'rookery', running);
running.then((code) => {
  // The one exit status: runProgram's (commands report an incomplete run to it, never set this).
  process.exitCode = code;
});
