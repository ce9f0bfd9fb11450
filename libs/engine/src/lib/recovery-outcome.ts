import { readFile } from 'node:fs/promises';
import { RestoreTargetError } from '@rookery/core';

/**
 * What a recovery reached, read from the restored server's own log (the server is started with
 * lc_messages = C and logs to a file in its data directory). The log is used rather than SQL
 * (pg_last_xact_replay_timestamp()) because it needs no login on the restored server — its
 * pg_hba.conf and roles are the backed-up server's — and it names the exact record recovery
 * stopped at, which SQL cannot after promotion.
 */
export interface RecoveryOutcome {
  /** The timeline the server was promoted onto. */
  timeline: number | null;
  /** "redo done at": the LSN of the last record replayed. */
  endLsn: string | null;
  /** PostgreSQL's own line for where it stopped, e.g. "recovery stopping before commit of transaction 812, time …". */
  stoppedAt: string | null;
  /** Commit time of the last transaction replayed ("last completed transaction was at log time …"). */
  lastTransactionTime: string | null;
}

interface LogState {
  outcome: RecoveryOutcome;
  promoted: boolean;
  /** The FATAL or PANIC line that explains a failed recovery. */
  failure: string | null;
}

export function parseRecoveryLog(text: string): LogState {
  const outcome: RecoveryOutcome = { timeline: null, endLsn: null, stoppedAt: null, lastTransactionTime: null };
  let promoted = false;
  const failures: string[] = [];
  for (const line of text.split('\n')) {
    const message = /\b(LOG|FATAL|PANIC):\s+(.*)$/.exec(line);
    if (!message) continue;
    const [, level, body] = message;
    if (level !== 'LOG') {
      failures.push(body);
      continue;
    }
    let match: RegExpExecArray | null;
    if (/^recovery stopping /.test(body)) outcome.stoppedAt = body;
    else if ((match = /^redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(body))) outcome.endLsn = match[1];
    else if ((match = /^last completed transaction was at log time (.+)$/.exec(body))) outcome.lastTransactionTime = match[1];
    else if ((match = /^selected new timeline ID: (\d+)/.exec(body))) outcome.timeline = Number(match[1]);
    else if (/^database system is ready to accept connections/.test(body)) promoted = true;
  }
  // Clients refused while the server starts also log FATAL lines: prefer the startup process's.
  const failure = failures.find((line) => /recovery|WAL|restore|timeline|checkpoint|archive/i.test(line)) ?? failures.at(-1) ?? null;
  return { outcome, promoted, failure };
}

/**
 * Waits until the restored server has finished recovery and was promoted ("ready to accept
 * connections", not the read-only variant), and returns what it reached. A server that exits
 * first (FATAL "recovery ended before configured recovery target was reached", a missing WAL
 * file the restore_command could not fetch) is reported with its own reason.
 */
export async function waitForPromotion(options: {
  logFile: string;
  isRunning: () => Promise<boolean>;
  timeoutMs: number;
  signal?: AbortSignal;
}): Promise<RecoveryOutcome> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let nextLivenessCheck = started + LIVENESS_CHECK_MS;
  for (;;) {
    options.signal?.throwIfAborted();
    const state = parseRecoveryLog(await readFile(options.logFile, 'utf8').catch(() => ''));
    if (state.promoted) return state.outcome;
    // A failed startup process takes the postmaster down: the exit is the signal, the log the
    // reason. Checking costs a pg_ctl process, so it runs less often than the log is read.
    if (Date.now() >= nextLivenessCheck) {
      if (!(await options.isRunning())) {
        const final = parseRecoveryLog(await readFile(options.logFile, 'utf8').catch(() => ''));
        throw recoveryFailed(final.failure ?? 'the server stopped before it was promoted', options.logFile);
      }
      nextLivenessCheck = Date.now() + LIVENESS_CHECK_MS;
    }
    if (Date.now() > deadline) {
      throw new RestoreTargetError(`recovery did not finish within ${Math.round(options.timeoutMs / 1000)} s`, {
        hint: `the server is still replaying WAL; follow ${options.logFile}`,
        retryable: false,
      });
    }
    // Promotion usually comes within a second or two of the start (a restore to the backup's
    // end): read the small log often then, and every quarter second in a long replay.
    const delay = Date.now() - started < FAST_POLL_PERIOD_MS ? FAST_POLL_MS : SLOW_POLL_MS;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

const FAST_POLL_MS = 20;
const FAST_POLL_PERIOD_MS = 5_000;
const SLOW_POLL_MS = 250;
const LIVENESS_CHECK_MS = 500;

export function recoveryFailed(reason: string, logFile: string): RestoreTargetError {
  const hint = /recovery ended before configured recovery target was reached/.test(reason)
    ? `the archived WAL ends before the target; the restored data directory and its log ${logFile} are left for inspection`
    : `the restored data directory and its log ${logFile} are left for inspection`;
  return new RestoreTargetError(`recovery failed: ${reason}`, { hint });
}
