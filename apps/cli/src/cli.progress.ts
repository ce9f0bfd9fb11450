import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { ProgressEvent, ProgressListener } from '@rookery/engine';
import { log, logs, progressIntervalSeconds } from './cli.log';
import { formatBytes } from './cli.output';

/** A rate needs this much time between two counts to mean anything. */
const RATE_MIN_SPAN_MS = 1000;

/** One step's progress as an operator should read it: no percentage without a total, no rate without time. */
export interface ProgressReading {
  step: string;
  bytes: number;
  /** Expected bytes, when known. */
  total?: number;
  /** The total is an estimate (a backup's is the database's size): shown with "~". */
  estimated: boolean;
  /** Whole percent, only with a total; an estimate exceeded stays below 100 until the step ends. */
  percent?: number;
  /** Bytes per second since the step's first count, once a second or more has passed. */
  rate?: number;
}

/**
 * Turns progress events into readings. The rate is measured from the step's first event (its
 * bytes and time), not from zero at that moment: a step whose first report already carries a
 * large count would otherwise show an impossible rate.
 */
export class ProgressMeter {
  private readonly first = new Map<string, { bytes: number; at: number }>();

  read(event: ProgressEvent, now: number): ProgressReading {
    const step = stepOf(event);
    const first = this.first.get(step) ?? { bytes: event.bytes, at: now };
    this.first.set(step, first);
    const span = now - first.at;
    const estimated = event.phase === 'backup';
    const reading: ProgressReading = { step, bytes: event.bytes, estimated };
    if (event.totalBytes) {
      reading.total = event.totalBytes;
      reading.percent = Math.min(Math.floor((event.bytes / event.totalBytes) * 100), estimated ? 99 : 100);
    }
    if (span >= RATE_MIN_SPAN_MS) reading.rate = ((event.bytes - first.bytes) * 1000) / span;
    return reading;
  }
}

/** "base.tar 1.2 GiB of ~3.4 GiB (35 %), 85.0 MiB/s". */
export function describeReading(reading: ProgressReading): string {
  const total =
    reading.total === undefined ? '' : ` of ${reading.estimated ? '~' : ''}${formatBytes(reading.total)} (${reading.percent} %)`;
  const rate = reading.rate === undefined ? '' : `, ${formatBytes(reading.rate)}/s`;
  return `${reading.step} ${formatBytes(reading.bytes)}${total}${rate}`;
}

/**
 * Progress lines for logs (stderr is not a terminal, e.g. cron): "backup oltp: backup base.tar
 * 1.2 GiB of ~3.4 GiB (35 %), 85.0 MiB/s", at most one per step every `intervalMs`, the first
 * `intervalMs` after the operation started (0: every event), so a cron log shows how far a long
 * run got while short runs stay quiet.
 */
export function progressLog(operation: string, intervalMs: number, clock: () => number = Date.now): ProgressListener {
  const meter = new ProgressMeter();
  const started = clock();
  const lastLine = new Map<string, number>();
  return (event) => {
    const now = clock();
    const reading = meter.read(event, now);
    if (intervalMs > 0 && now - (lastLine.get(reading.step) ?? started) < intervalMs) return;
    lastLine.set(reading.step, now);
    log.info(`${operation}: ${describeReading(reading)}`);
  };
}

/**
 * How a command shows progress: bars on a terminal, progress lines on any other stderr (at log
 * level info and above; --progress-interval apart), nothing with `enabled` false (--json). Returns the listener and a stop
 * function.
 */
export function progressReporter(enabled: boolean, operation: string): { listener: ProgressListener; stop: () => void } {
  if (!enabled || !logs('info')) return { listener: () => undefined, stop: () => undefined };
  if (!process.stderr.isTTY) return { listener: progressLog(operation, progressIntervalSeconds() * 1000), stop: () => undefined };
  return progressBars();
}

const BAR_FORMAT = ' {step} |{bar}| {percentage}% {done} of {total} {speed}';
const COUNT_FORMAT = ' {step} {done} {speed}';

function progressBars(): { listener: ProgressListener; stop: () => void } {
  const multi = new MultiBar({ hideCursor: true, clearOnComplete: false, stream: process.stderr }, Presets.shades_classic);
  const meter = new ProgressMeter();
  const bars = new Map<string, SingleBar>();
  const listener = (event: ProgressEvent) => {
    const reading = meter.read(event, Date.now());
    let bar = bars.get(reading.step);
    if (!bar) {
      // Without a total there is nothing to fill: a count and a rate, never a fake 100 %.
      bar = multi.create(reading.total ?? 0, 0, {}, { format: reading.total === undefined ? COUNT_FORMAT : BAR_FORMAT });
      bars.set(reading.step, bar);
    }
    // An estimate that is exceeded grows with the count (the bar stays short of full until done).
    if (reading.total !== undefined) bar.setTotal(Math.max(reading.total, Math.ceil(reading.bytes / 0.99)));
    bar.update(reading.total === undefined ? 0 : reading.bytes, {
      step: reading.step.padEnd(24),
      done: formatBytes(reading.bytes),
      total: reading.total === undefined ? '' : `${reading.estimated ? '~' : ''}${formatBytes(reading.total)}`,
      speed: reading.rate === undefined ? '' : `${formatBytes(reading.rate)}/s`,
    });
  };
  return { listener, stop: () => multi.stop() };
}

function stepOf(event: ProgressEvent): string {
  return event.artifact ? `${event.phase} ${event.artifact}` : event.phase;
}
