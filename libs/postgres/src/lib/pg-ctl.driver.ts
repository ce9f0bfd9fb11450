import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { ProcessRunner, ProcessUser } from './process.runner';

export type AuthMethod = 'trust' | 'peer' | 'md5' | 'scram-sha-256' | 'reject';
export type ShutdownMode = 'smart' | 'fast' | 'immediate';

export interface InitdbOptions {
  /** The OS account that owns the data directory and runs the server; initdb refuses root. */
  user: ProcessUser;
  /** The bootstrap superuser's name. */
  superuser?: string;
  authLocal?: AuthMethod;
  authHost?: AuthMethod;
  dataChecksums?: boolean;
  encoding?: string;
  locale?: string;
  /** Skip initdb's fsync of the new cluster: for throwaway test clusters only. */
  noSync?: boolean;
  walSegmentSizeMb?: number;
}

export interface StartOptions {
  user: ProcessUser;
  port: number;
  socketDir: string;
  logFile: string;
  /** Server settings, each passed as its own `-c name=value` argument (no shell, no quoting). */
  settings?: Readonly<Record<string, string>>;
  timeoutMs?: number;
  /** Extra environment for the server and the commands it runs (restore_command, archive_command). */
  env?: Readonly<Record<string, string>>;
}

export interface StopOptions {
  user: ProcessUser;
  timeoutMs?: number;
}

const LOG_TAIL_LINES = 20;

/**
 * initdb, start, stop and status of a local cluster. The server is started by running `postgres`
 * directly (not `pg_ctl start -o "…"`, whose options string goes through a shell), then readiness
 * is read from postmaster.pid exactly as `pg_ctl -w` does.
 */
export class PgCtlDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  async initdb(dataDir: string, options: InitdbOptions): Promise<void> {
    const args = [
      `--pgdata=${dataDir}`,
      `--username=${options.superuser ?? 'postgres'}`,
      `--auth-local=${options.authLocal ?? 'peer'}`,
      `--auth-host=${options.authHost ?? 'scram-sha-256'}`,
      `--encoding=${options.encoding ?? 'UTF8'}`,
      `--locale=${options.locale ?? 'C'}`,
      '--no-instructions',
    ];
    if (options.dataChecksums ?? true) args.push('--data-checksums');
    if (options.noSync) args.push('--no-sync');
    if (options.walSegmentSizeMb) args.push(`--wal-segsize=${options.walSegmentSizeMb}`);
    await this.runner.run(this.binaries.path('initdb'), args, {
      user: options.user,
      cwd: dirname(dataDir),
      env: { LC_MESSAGES: 'C' },
    });
  }

  /** Starts the server and resolves once it accepts connections; the error carries the log tail. */
  async start(dataDir: string, options: StartOptions): Promise<{ pid: number }> {
    const settings: Record<string, string> = {
      ...options.settings,
      port: String(options.port),
      unix_socket_directories: options.socketDir,
    };
    const args = ['-D', dataDir];
    for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

    const logFd = openSync(options.logFile, 'a', 0o640);
    let daemon;
    try {
      daemon = this.runner.startDaemon(this.binaries.path('postgres'), args, {
        user: options.user,
        cwd: dirname(dataDir),
        env: { ...options.env, LC_MESSAGES: 'C' },
        outputFd: logFd,
      });
    } finally {
      closeSync(logFd);
    }

    let exitCode: number | null | undefined;
    let exitError: unknown;
    daemon.exited.then(
      (code) => (exitCode = code),
      (error: unknown) => {
        exitError = error;
        exitCode = null;
      },
    );

    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    // postmaster.pid is one small file: reading it every 20 ms costs nothing and answers sooner
    // than pg_ctl -w's growing waits (a restored server is often ready within a second).
    for (let delay = 10; ; delay = Math.min(delay * 2, 20)) {
      if (exitError) throw exitError;
      if (exitCode !== undefined) {
        throw new ToolFailedError('postgres', exitCode, await logTail(options.logFile), {
          hint: `server log: ${options.logFile}`,
        });
      }
      const status = readPostmasterStatus(dataDir);
      if (status && status.pid === daemon.pid && (status.status === 'ready' || status.status === 'standby')) return { pid: daemon.pid };
      if (Date.now() > deadline) {
        const tail = await logTail(options.logFile);
        await this.stop(dataDir, 'immediate', { user: options.user }).catch(() => undefined);
        throw new ToolFailedError('postgres', null, tail, {
          hint: `the server did not accept connections within ${options.timeoutMs ?? 60_000} ms; log: ${options.logFile}`,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  /** Stops the server and waits for it to exit; a cluster that is not running is left alone. */
  async stop(dataDir: string, mode: ShutdownMode, options: StopOptions): Promise<void> {
    if (!(await this.isRunning(dataDir, options))) return;
    const seconds = Math.ceil((options.timeoutMs ?? 60_000) / 1000);
    await this.runner.run(this.binaries.path('pg_ctl'), ['stop', '-D', dataDir, '-m', mode, '-w', '-t', String(seconds)], {
      user: options.user,
      cwd: dirname(dataDir),
      env: { LC_MESSAGES: 'C' },
    });
  }

  /** `pg_ctl status`: 0 running, 3 not running, 4 no accessible data directory. */
  async isRunning(dataDir: string, options: { user: ProcessUser }): Promise<boolean> {
    try {
      await this.runner.run(this.binaries.path('pg_ctl'), ['status', '-D', dataDir], {
        user: options.user,
        cwd: dirname(dataDir),
        env: { LC_MESSAGES: 'C' },
      });
      return true;
    } catch (error) {
      if (error instanceof ToolFailedError && (error.exitCode === 3 || error.exitCode === 4)) return false;
      throw error;
    }
  }
}

export interface PostmasterStatus {
  pid: number;
  port: number;
  socketDir: string;
  /** 'starting', 'stopping', 'ready' or 'standby' (PM_STATUS_* in pidfile.h). */
  status: string;
}

/** Reads postmaster.pid (lines: pid, datadir, start time, port, socket dir, listen addr, shmem key, status). */
export function readPostmasterStatus(dataDir: string): PostmasterStatus | null {
  let text: string;
  try {
    text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8');
  } catch {
    return null;
  }
  const lines = text.split('\n');
  if (lines.length < 8) return null;
  return {
    pid: Number(lines[0]),
    port: Number(lines[3]),
    socketDir: lines[4],
    status: lines[7].trim(),
  };
}

async function logTail(logFile: string): Promise<string> {
  try {
    return (await readFile(logFile, 'utf8')).trim().split('\n').slice(-LOG_TAIL_LINES).join('\n');
  } catch {
    return '';
  }
}
