import { setTimeout as sleep } from 'node:timers/promises';
import type { ProgressEvent } from '@rookery/engine';
import type { JobProgress } from '@rookery/service-kit';
import { ServiceCallError } from '../cli.errors';
import { log } from '../cli.log';
import { progressReporter } from '../cli.progress';

/** What following needs of a backup or restore record. */
export interface FollowedRecord {
  id: string;
  status: string;
  progress?: JobProgress | null;
}

export interface FollowOptions<R extends FollowedRecord> {
  /** 'backup 20261126T020000Z-oltp': how progress lines and messages name the job. */
  what: string;
  /** The progress lines' operation, as the local command names it ('backup oltp'). */
  operation: string;
  /** GET of the record. */
  read: () => Promise<R>;
  /** POST …/cancel. */
  cancel: () => Promise<unknown>;
  showProgress: boolean;
  /** Between two reads of the record. */
  intervalMs?: number;
  /** Where Ctrl-C comes from: the process (a spec gives its own emitter). */
  interrupts?: NodeJS.EventEmitter;
}

/** How often a running job's record is read: the service throttles its progress to about this. */
const POLL_INTERVAL_MS = 500;

/**
 * Reads the job's record until it leaves `running` and returns the last one, showing its progress
 * as the local command does (bars on a terminal, progress lines in a log). The first Ctrl-C asks
 * the service to cancel the job and keeps following it to its end; a second stops waiting (the
 * job's fate is then the service's to tell).
 */
export async function followJob<R extends FollowedRecord>(options: FollowOptions<R>): Promise<R> {
  const progress = progressReporter(options.showProgress, options.operation);
  const interrupt = interrupts(options);
  try {
    let shown = '';
    for (;;) {
      const record = await options.read();
      const reading = record.progress;
      if (reading && JSON.stringify(reading) !== shown) {
        shown = JSON.stringify(reading);
        progress.listener(progressEventOf(reading));
      }
      if (record.status !== 'running') return record;
      await Promise.race([sleep(options.intervalMs ?? POLL_INTERVAL_MS), interrupt.stopped]);
      if (interrupt.stop)
        throw new ServiceCallError(
          `stopped waiting for ${options.what}; ${interrupt.cancelAsked ? 'its cancel was asked and ' : ''}it may still be running on the service`,
          'see it with rookery info --service … (backups) or on the service',
        );
    }
  } finally {
    progress.stop();
    interrupt.remove();
  }
}

function progressEventOf(progress: JobProgress): ProgressEvent {
  const event: ProgressEvent = { phase: progress.phase, bytes: progress.bytes };
  if (progress.totalBytes) event.totalBytes = progress.totalBytes;
  return event;
}

/** Ctrl-C while following: the first cancels the job on the service, the second stops waiting. */
function interrupts<R extends FollowedRecord>(options: FollowOptions<R>) {
  let stopWaiting!: () => void;
  const source = options.interrupts ?? process;
  const state = {
    cancelAsked: false,
    stop: false,
    stopped: new Promise<void>((resolve) => (stopWaiting = resolve)),
    remove: () => source.removeListener('SIGINT', onInterrupt),
  };
  function onInterrupt(): void {
    if (state.cancelAsked) {
      state.stop = true;
      stopWaiting();
      return;
    }
    state.cancelAsked = true;
    process.stderr.write(`\nrookery: cancelling ${options.what} on the service (Ctrl-C again to stop waiting)\n`);
    options.cancel().catch((error: unknown) => log.warn(`cannot cancel ${options.what}: ${(error as Error).message}`));
  }
  source.on('SIGINT', onInterrupt);
  return state;
}
