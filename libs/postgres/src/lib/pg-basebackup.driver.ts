import { Readable, Transform } from 'node:stream';
import { InvariantError, formatLsn, parseLsn } from '@rookery/core';
import { DEFAULT_PG_IDLE_TIMEOUT_SECONDS, pgStalledError } from './idle-timeout';
import { PgBinaries } from './pg-binaries';
import { connectionFromUrl } from './pg-connection';
import { ProcessRunner } from './process.runner';

export type CheckpointMode = 'fast' | 'spread';

export interface BasebackupStartOptions {
  /** The source database URL; a password in it reaches pg_basebackup through PGPASSWORD only. */
  url: string;
  label: string;
  checkpoint: CheckpointMode;
  signal?: AbortSignal;
  /** Every stderr line of `pg_basebackup --verbose`, for logs and progress. */
  onStderrLine?: (line: string) => void;
  /**
   * Kills pg_basebackup and fails the backup when it writes nothing for this long while rookery
   * reads (time the store's backpressure pauses it does not count). It is silent during the start
   * checkpoint: keep it generous. Default DEFAULT_PG_IDLE_TIMEOUT_SECONDS.
   */
  idleTimeoutMs?: number;
}

export interface BasebackupResult {
  /** Normalised LSNs ('0/2000028'). */
  startLsn: string;
  stopLsn: string;
  timeline: number;
}

export interface RunningBasebackup {
  /**
   * The base backup as one tar stream (the data directory, the WAL needed to make it consistent
   * under pg_wal/, and backup_manifest as the last member). It ends only after pg_basebackup
   * succeeded and its result parsed; otherwise it errors. The consumer must read it, or
   * pg_basebackup blocks and the result never settles.
   */
  stream: Readable;
  result: Promise<BasebackupResult>;
}

/** The argv of `pg_basebackup` writing one tar with the WAL it needs to stdout. */
export function basebackupArgs(options: { conninfo: string; label: string; checkpoint: CheckpointMode }): string[] {
  return [
    '--pgdata=-',
    '--format=tar',
    // fetch, not stream: WAL streaming needs a second output and cannot go to stdout.
    '--wal-method=fetch',
    `--checkpoint=${options.checkpoint}`,
    `--label=${options.label}`,
    '--verbose',
    '--no-password',
    '-d',
    options.conninfo,
  ];
}

const START_POINT = /write-ahead log start point: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+) on timeline (\d+)/;
const END_POINT = /write-ahead log end point: ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/;

/** Reads start LSN, stop LSN and timeline from `pg_basebackup --verbose` stderr; null when absent. */
export function parseBasebackupStderr(stderr: string): BasebackupResult | null {
  const start = START_POINT.exec(stderr);
  const end = END_POINT.exec(stderr);
  if (!start || !end) return null;
  return {
    startLsn: formatLsn(parseLsn(start[1])),
    stopLsn: formatLsn(parseLsn(end[1])),
    timeline: Number(start[2]),
  };
}

/** Streams a physical base backup out of a running cluster with pg_basebackup. */
export class PgBasebackupDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  start(options: BasebackupStartOptions): RunningBasebackup {
    const connection = connectionFromUrl(options.url);
    const command = this.binaries.path('pg_basebackup');
    const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_PG_IDLE_TIMEOUT_SECONDS * 1000;
    const child = this.runner.spawn(
      command,
      basebackupArgs({ conninfo: connection.conninfo, label: options.label, checkpoint: options.checkpoint }),
      {
        // English messages whatever the host locale: the result is parsed from them.
        env: { ...connection.env, LC_MESSAGES: 'C', LC_ALL: undefined },
        signal: options.signal,
        onStderrLine: options.onStderrLine,
        stdoutIdle: {
          timeoutMs: idleTimeoutMs,
          error: ({ bytes }) =>
            pgStalledError(
              connection.target,
              idleTimeoutMs,
              bytes === 0
                ? 'while pg_basebackup waited for the base backup to start (the server runs its start checkpoint first)'
                : 'while pg_basebackup streamed the base backup',
            ),
        },
      },
    );

    const result = child.result.then(({ stderrTail }) => {
      const parsed = parseBasebackupStderr(stderrTail);
      if (!parsed) {
        throw new InvariantError(
          `pg_basebackup of ${connection.target} succeeded but its verbose output has no write-ahead log start/end point: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}`,
        );
      }
      return parsed;
    });
    result.catch(() => undefined);

    // The tar is complete only once pg_basebackup reported its end point: hold the stream's end.
    const stream = new Transform({
      transform(chunk, _encoding, callback) {
        callback(null, chunk);
      },
      flush(callback) {
        result.then(
          () => callback(),
          (error: Error) => callback(error),
        );
      },
    });
    // Failures are reported through result; this listener only keeps an unread stream from
    // crashing the process with an unhandled 'error' event.
    stream.on('error', () => undefined);
    child.stdout.on('error', (error) => stream.destroy(error));
    child.stdout.pipe(stream);
    stream.once('close', () => {
      if (!stream.writableFinished) child.stdout.destroy();
    });
    return { stream, result };
  }
}
