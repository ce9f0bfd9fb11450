import { ChildProcess, spawnSync, spawn as spawnChild } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { ConfigError, ToolFailedError } from '@rookery/core';
import { IdleTimeout } from './idle-timeout';

/** How much of a tool's stderr is kept for error messages and result parsing. */
export const STDERR_TAIL_BYTES = 64 * 1024;

/** Environment variables a child may inherit from the caller's environment (never secrets). */
export const INHERITED_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'TZ', 'TMPDIR'] as const;

export type ProcessEnv = Readonly<Record<string, string | undefined>>;

/** An OS account to run a child as: the name 'postgres' or explicit ids. */
export type ProcessUser = 'postgres' | { uid: number; gid: number };

export interface SpawnOptions {
  /** Added on top of the runner's base env; `undefined` removes an inherited key. */
  env?: ProcessEnv;
  cwd?: string;
  /** Aborting kills the child's whole process group (SIGTERM, then SIGKILL after a grace period). */
  signal?: AbortSignal;
  user?: ProcessUser;
  /**
   * Bytes fed to the child's stdin; default: none (stdin is /dev/null). A StdinWriter is handed
   * the child's stdin to write to itself.
   */
  stdin?: Readable | string | Buffer | StdinWriter;
  /** Called with each complete stderr line, for progress and verbose output. */
  onStderrLine?: (line: string) => void;
  /**
   * Fails a child that writes nothing to stdout for timeoutMs while its stdout is read (time the
   * consumer's backpressure keeps stdout paused does not count): its process group is killed and
   * result rejects with error({ bytes }), bytes being the stdout bytes it wrote before going quiet.
   */
  stdoutIdle?: { timeoutMs: number; error: (seen: { bytes: number }) => Error };
}

/** Writes a child's stdin itself (e.g. to learn when each chunk reached the kernel). */
export interface StdinWriter {
  attach(stdin: NodeJS.WritableStream): void;
}

export interface ProcessResult {
  exitCode: number;
  stderrTail: string;
}

export interface SpawnedProcess {
  /**
   * The child's stdout. It ends only after the child exited with status 0; on any other exit it
   * is destroyed with the same error the result rejects with, so a stream pipeline never mistakes
   * a truncated output for a complete one.
   */
  stdout: Readable;
  pid: number | undefined;
  /** The last STDERR_TAIL_BYTES of stderr so far. */
  stderrTail(): string;
  /**
   * Resolves when the child exited 0 and its stdio closed. Rejects with ToolFailedError on a
   * non-zero exit or death by signal, ConfigError when the command cannot be started, and the
   * signal's reason when aborted.
   */
  result: Promise<ProcessResult>;
}

export interface DaemonOptions {
  env?: ProcessEnv;
  cwd?: string;
  user?: ProcessUser;
  /** File descriptor that receives the daemon's stdout and stderr. */
  outputFd: number;
}

export interface DaemonProcess {
  pid: number;
  /** Resolves with the exit code (null when killed by a signal) when the daemon exits. */
  exited: Promise<number | null>;
}

export interface ProcessRunnerOptions {
  /**
   * The environment children start from; only INHERITED_ENV_KEYS are taken from it. Config hands
   * in process.env; tests may hand in nothing, and children then get a minimal PATH.
   */
  baseEnv?: ProcessEnv;
  /** How long an aborted child has between SIGTERM and SIGKILL. */
  killGraceMs?: number;
}

const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin';

const ORPHAN_GUARD_SCRIPT = `
const { rmSync } = require('node:fs');
const [watchPid, targetPid, signal, removeDir] = process.argv.slice(1);
const alive = (pid) => { try { process.kill(Number(pid), 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const timer = setInterval(() => {
  if (!alive(targetPid)) process.exit(0);
  if (alive(watchPid)) return;
  clearInterval(timer);
  try { process.kill(Number(targetPid), signal); } catch {}
  const deadline = Date.now() + 15000;
  const wait = setInterval(() => {
    if (alive(targetPid) && Date.now() < deadline) return;
    clearInterval(wait);
    if (removeDir) { try { rmSync(removeDir, { recursive: true, force: true }); } catch {} }
    process.exit(0);
  }, 100);
}, 500);
`;

/**
 * The one place rookery starts child processes: argv arrays only (never a shell), an explicit
 * environment, an optional OS user, abort by signal, exit code and a bounded stderr tail.
 */
export class ProcessRunner {
  private readonly baseEnv: Record<string, string>;
  private readonly killGraceMs: number;

  constructor(options: ProcessRunnerOptions = {}) {
    this.baseEnv = pickInheritedEnv(options.baseEnv ?? {});
    this.baseEnv['PATH'] ??= FALLBACK_PATH;
    this.killGraceMs = options.killGraceMs ?? 5_000;
  }

  spawn(command: string, args: readonly string[], options: SpawnOptions = {}): SpawnedProcess {
    const tool = toolName(command);
    const stderr = new StderrTail(STDERR_TAIL_BYTES, options.onStderrLine);
    const signal = options.signal;
    const output = new Transform({
      transform(chunk, _encoding, callback) {
        callback(null, chunk);
      },
      flush: (callback) => {
        // Hold back the end of stdout until the exit status is known.
        result.then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
    });

    // The result promise is the authoritative failure channel; pipelines still see the stream's
    // error, but a caller that ignores stdout must not crash on an unhandled 'error' event.
    output.on('error', () => undefined);

    if (signal?.aborted) {
      const reason = abortReason(signal);
      const result = Promise.reject(reason);
      result.catch(() => undefined);
      output.destroy(reason);
      return { stdout: output, pid: undefined, stderrTail: () => '', result };
    }

    let child: ChildProcess;
    try {
      child = spawnChild(command, [...args], {
        env: this.childEnv(options.env, options.user),
        cwd: options.cwd,
        stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        // Its own process group, so an abort reaches the tool's children too.
        detached: true,
        ...resolveUser(options.user),
      });
    } catch (error) {
      const failure = new ConfigError(`cannot run '${command}': ${(error as Error).message}`, [], {
        cause: error,
      });
      const result = Promise.reject(failure);
      result.catch(() => undefined);
      output.destroy(failure);
      return { stdout: output, pid: undefined, stderrTail: () => '', result };
    }

    let stdoutBytes = 0;
    let idleFailure: Error | undefined;
    const idle = options.stdoutIdle
      ? new IdleTimeout(options.stdoutIdle.timeoutMs, () => {
          idleFailure = options.stdoutIdle?.error({ bytes: stdoutBytes });
          killGroup(child, this.killGraceMs);
        })
      : undefined;

    const result = new Promise<ProcessResult>((resolve, reject) => {
      let spawnError: Error | undefined;
      child.once('error', (error) => {
        spawnError = error;
      });
      child.once('close', (code, killedBy) => {
        signal?.removeEventListener('abort', onAbort);
        idle?.stop();
        stderr.finish();
        const tail = stderr.text();
        if (signal?.aborted) reject(abortReason(signal));
        else if (idleFailure) reject(idleFailure);
        else if (spawnError) {
          reject(
            new ConfigError(`cannot run '${command}': ${spawnError.message}`, [], {
              cause: spawnError,
              hint: 'check the PostgreSQL bin directory (postgres.binDir) and the OS user',
            }),
          );
        } else if (code === 0) resolve({ exitCode: 0, stderrTail: tail });
        else reject(new ToolFailedError(tool, killedBy ? null : code, tail));
      });
    });
    result.catch(() => undefined);

    const onAbort = () => killGroup(child, this.killGraceMs);
    signal?.addEventListener('abort', onAbort, { once: true });

    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.stdout?.pipe(output);
    if (idle && child.stdout) {
      // The pipe pauses stdout while the consumer is behind and resumes it when it caught up.
      child.stdout.on('data', (chunk: Buffer) => {
        stdoutBytes += chunk.length;
        idle.touch();
      });
      child.stdout.on('pause', () => idle.pause()).on('resume', () => idle.resume());
      idle.start();
    }
    if (options.stdin !== undefined && child.stdin) {
      child.stdin.on('error', () => undefined);
      if (options.stdin instanceof Readable) options.stdin.pipe(child.stdin);
      else if (Buffer.isBuffer(options.stdin) || typeof options.stdin === 'string') child.stdin.end(options.stdin);
      else options.stdin.attach(child.stdin);
    }
    // A consumer that gives up on stdout no longer wants the process either.
    output.once('close', () => {
      if (!output.writableFinished && child.exitCode === null) killGroup(child, this.killGraceMs);
    });

    return { stdout: output, pid: child.pid, stderrTail: () => stderr.text(), result };
  }

  /** Runs to completion and resolves with stdout as text: for tools with small output (pg_config, pg_ctl). */
  async run(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<ProcessResult & { stdout: string }> {
    const child = this.spawn(command, args, options);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdout.on('error', () => undefined);
    const outcome = await child.result;
    await new Promise<void>((resolve) => {
      if (child.stdout.readableEnded || child.stdout.destroyed) resolve();
      else child.stdout.once('end', resolve).once('close', resolve);
    });
    return { ...outcome, stdout: Buffer.concat(chunks).toString('utf8') };
  }

  /**
   * Runs to completion, blocking the event loop, and returns stdout as text, or undefined when the
   * program could not run or exited non-zero: for a lookup a synchronous caller needs once
   * (`pg_config --bindir`, PgBinaries).
   */
  runSync(command: string, args: readonly string[], options: { timeoutMs?: number } = {}): string | undefined {
    const child = spawnSync(command, [...args], {
      env: this.childEnv(),
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
      timeout: options.timeoutMs ?? 10_000,
    });
    return child.status === 0 ? child.stdout : undefined;
  }

  /**
   * Starts a long-running server (postgres) that outlives this call: output goes to a file, the
   * child is in its own session and unreferenced, so neither a terminal's Ctrl-C nor our event loop
   * is tied to it. Stopping it is the caller's job (pg_ctl stop).
   */
  startDaemon(command: string, args: readonly string[], options: DaemonOptions): DaemonProcess {
    const child = spawnChild(command, [...args], {
      env: this.childEnv(options.env, options.user),
      cwd: options.cwd,
      stdio: ['ignore', options.outputFd, options.outputFd],
      detached: true,
      ...resolveUser(options.user),
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', (error) => reject(new ConfigError(`cannot run '${command}': ${error.message}`, [], { cause: error })));
      child.once('exit', (code) => resolve(code));
    });
    exited.catch(() => undefined);
    child.unref();
    if (child.pid === undefined) {
      // spawn failures surface through 'error' on the next tick; the exited promise carries them.
      return { pid: -1, exited };
    }
    return { pid: child.pid, exited };
  }

  /**
   * A small detached watcher that sends `signal` to `targetPid` (and then removes `removeDir`) when
   * `watchPid` dies, and exits by itself when the target exits first. It is the safety net for
   * throwaway servers: it works even when the watched process is killed with SIGKILL, or runs in a
   * sandbox (jest) whose process exit hooks never fire.
   */
  startOrphanGuard(options: { watchPid: number; targetPid: number; signal?: NodeJS.Signals; removeDir?: string }): void {
    const child = spawnChild(
      process.execPath,
      [
        '-e',
        ORPHAN_GUARD_SCRIPT,
        String(options.watchPid),
        String(options.targetPid),
        options.signal ?? 'SIGQUIT',
        options.removeDir ?? '',
      ],
      { env: {}, stdio: 'ignore', detached: true },
    );
    child.on('error', () => undefined);
    child.unref();
  }

  private childEnv(extra: ProcessEnv = {}, user?: ProcessUser): Record<string, string> {
    const env: Record<string, string> = { ...this.baseEnv };
    if (user !== undefined) {
      // A child running as another account must not look for files in root's home.
      const account = user === 'postgres' ? lookupOsUser('postgres') : undefined;
      if (account) env['HOME'] = account.home;
      else delete env['HOME'];
    }
    for (const [key, value] of Object.entries(extra)) {
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
    return env;
  }
}

/** Picks the keys a child may inherit (INHERITED_ENV_KEYS) from an environment. */
export function pickInheritedEnv(source: ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of INHERITED_ENV_KEYS) {
    const value = source[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Reads an account from /etc/passwd (no child process, no native module). */
export function lookupOsUser(name: string, passwdFile = '/etc/passwd'): OsUser {
  let passwd: string;
  try {
    passwd = readFileSync(passwdFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${passwdFile} to find the os user '${name}'`, [], {
      cause: error,
    });
  }
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 6) {
      return { name, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] };
    }
  }
  throw new ConfigError(`os user '${name}' does not exist`, [], {
    hint: 'install the postgresql server package, which creates it',
  });
}

/** Reads a group's id from /etc/group (no child process, no native module). */
export function lookupOsGroup(name: string, groupFile = '/etc/group'): number {
  let groups: string;
  try {
    groups = readFileSync(groupFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${groupFile} to find the os group '${name}'`, [], { cause: error });
  }
  const fields = groups
    .split('\n')
    .map((line) => line.split(':'))
    .find((entry) => entry[0] === name && entry.length >= 3);
  if (!fields)
    throw new ConfigError(`os group '${name}' does not exist`, [], {
      hint: `create it (groupadd ${name}) and add the accounts that share the repository`,
    });
  return Number(fields[2]);
}

function resolveUser(user: ProcessUser | undefined): { uid?: number; gid?: number } {
  if (user === undefined) return {};
  if (user === 'postgres') {
    const account = lookupOsUser('postgres');
    return { uid: account.uid, gid: account.gid };
  }
  return { uid: user.uid, gid: user.gid };
}

function killGroup(child: ChildProcess, graceMs: number): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const pid = child.pid;
  const send = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // The group is already gone.
    }
  };
  send('SIGTERM');
  const timer = setTimeout(() => send('SIGKILL'), graceMs);
  timer.unref();
  child.once('close', () => clearTimeout(timer));
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error('the operation was aborted');
  error.name = 'AbortError';
  return error;
}

function toolName(command: string): string {
  return command.split('/').pop() || command;
}

/** A bounded stderr buffer that also splits lines for a callback. */
class StderrTail {
  private chunks: Buffer[] = [];
  private size = 0;
  private partialLine = '';

  constructor(
    private readonly limit: number,
    private readonly onLine?: (line: string) => void,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0].length >= this.limit) {
      this.size -= this.chunks[0].length;
      this.chunks.shift();
    }
    if (this.onLine) {
      const lines = (this.partialLine + chunk.toString('utf8')).split(/\r?\n|\r/);
      this.partialLine = lines.pop() ?? '';
      for (const line of lines) if (line) this.emit(line);
    }
  }

  finish(): void {
    if (this.partialLine) this.emit(this.partialLine);
    this.partialLine = '';
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('utf8');
  }

  private emit(line: string): void {
    try {
      this.onLine?.(line);
    } catch {
      // A failing progress callback must not break the tool run.
    }
  }
}
