import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { connectionFromUrl } from './pg-connection';
import { ProcessRunner, ProcessUser } from './process.runner';

export interface ReceivewalOptions {
  /** The primary's URL; a password in it reaches pg_receivewal through PGPASSWORD only. */
  url: string;
  /** The spool directory pg_receivewal writes segments (and the current `.partial`) into. */
  directory: string;
  /** The permanent physical replication slot that keeps the primary's WAL until we have it. */
  slot: string;
  /**
   * The application_name the primary sees (pg_stat_replication), the name listed in
   * synchronous_standby_names. It travels in PGAPPNAME, not argv.
   */
  applicationName: string;
  /** Seconds between status packets; default pg_receivewal's 10. */
  statusIntervalSeconds?: number;
  /** The OS account to run as: the owner of the spool directory (postgres when we are root). */
  user?: ProcessUser;
  signal?: AbortSignal;
  onStderrLine?: (line: string) => void;
}

export interface RunningReceivewal {
  pid: number | undefined;
  /**
   * Settles when pg_receivewal exits. With --no-loop it exits on any lost connection (primary
   * crash, restart, network): the exit code is 1 then; 0 when it was stopped cleanly.
   */
  exited: Promise<ReceivewalExit>;
}

export interface ReceivewalExit {
  /** null when killed by a signal (or aborted). */
  exitCode: number | null;
  /** The last lines of stderr, for status and logs. */
  stderrTail: string;
  error?: Error;
}

/**
 * The argv of `pg_receivewal` streaming into `directory` as a synchronous standby: every received
 * chunk is flushed at once and the flush position reported immediately, so a primary that lists
 * our application_name in synchronous_standby_names acknowledges a commit only once its WAL is on
 * our disk. --no-loop: the supervisor owns restarts (with backoff, and a partial upload between).
 */
export function receivewalArgs(options: { conninfo: string; directory: string; slot: string; statusIntervalSeconds?: number }): string[] {
  const args = [`--directory=${options.directory}`, `--slot=${options.slot}`, '--synchronous', '--no-loop', '--verbose', '--no-password'];
  if (options.statusIntervalSeconds !== undefined) args.push(`--status-interval=${options.statusIntervalSeconds}`);
  args.push('-d', options.conninfo);
  return args;
}

/** The argv that creates the permanent physical slot if it is missing, and exits. */
export function createSlotArgs(options: { conninfo: string; slot: string }): string[] {
  return ['--create-slot', '--if-not-exists', `--slot=${options.slot}`, '--no-password', '-d', options.conninfo];
}

/** Runs pg_receivewal: slot creation, and the long-running synchronous stream. */
export class PgReceivewalDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  /** Creates the physical replication slot unless it exists (a replication connection suffices). */
  async createSlot(options: { url: string; slot: string; signal?: AbortSignal }): Promise<void> {
    const connection = connectionFromUrl(options.url);
    await this.runner.run(this.binaries.path('pg_receivewal'), createSlotArgs({ conninfo: connection.conninfo, slot: options.slot }), {
      env: { ...connection.env, LC_MESSAGES: 'C' },
      signal: options.signal,
    });
  }

  start(options: ReceivewalOptions): RunningReceivewal {
    const connection = connectionFromUrl(options.url);
    const child = this.runner.spawn(
      this.binaries.path('pg_receivewal'),
      receivewalArgs({
        conninfo: connection.conninfo,
        directory: options.directory,
        slot: options.slot,
        statusIntervalSeconds: options.statusIntervalSeconds,
      }),
      {
        env: { ...connection.env, PGAPPNAME: options.applicationName, LC_MESSAGES: 'C' },
        user: options.user,
        signal: options.signal,
        onStderrLine: options.onStderrLine,
      },
    );
    // Nothing is read from stdout (pg_receivewal writes none), but it must flow for the result to settle.
    child.stdout.resume();
    const exited = child.result.then(
      (result): ReceivewalExit => ({ exitCode: result.exitCode, stderrTail: result.stderrTail }),
      (error: Error): ReceivewalExit => ({
        exitCode: error instanceof ToolFailedError ? error.exitCode : null,
        stderrTail: child.stderrTail(),
        error,
      }),
    );
    return { pid: child.pid, exited };
  }
}
