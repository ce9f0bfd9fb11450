import { SourceUnavailableError } from '@rookery/core';

/**
 * How long a base backup waits for bytes from PostgreSQL by default: 10 minutes. The server is
 * silent while BASE_BACKUP waits for its start checkpoint, which with `--checkpoint spread` (or a
 * large shared_buffers on slow disks) can legitimately take minutes; pgBackRest's db-timeout
 * allows 30.
 */
export const DEFAULT_PG_IDLE_TIMEOUT_SECONDS = 600;

/**
 * Fails a transfer whose sender went quiet: calls onIdle once when no activity (touch) was seen for
 * timeoutMs while the watch runs. Time while paused does not count: our side stopped reading
 * (backpressure from a slow store), so the sender could not send; resuming starts the wait anew.
 * touch() only stamps the clock: cheap enough for every protocol message.
 */
export class IdleTimeout {
  private last = 0;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private paused = false;
  private finished = false;

  constructor(
    readonly timeoutMs: number,
    private readonly onIdle: (idleMs: number) => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Starts counting (from now); a no-op once started or stopped. */
  start(): void {
    if (this.running || this.finished) return;
    this.running = true;
    this.restart();
  }

  /** Bytes arrived. */
  touch(): void {
    this.last = this.now();
  }

  /** Our side stopped reading: the sender is not expected to send until resume(). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.clear();
  }

  /** Our side reads again: the sender has timeoutMs from now. */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.restart();
  }

  /** Ends the watch for good (the transfer settled). */
  stop(): void {
    this.finished = true;
    this.running = false;
    this.clear();
  }

  private restart(): void {
    this.last = this.now();
    if (this.running && !this.paused && !this.finished) this.arm(this.timeoutMs);
  }

  private arm(delayMs: number): void {
    this.clear();
    this.timer = setTimeout(() => this.check(), Math.max(1, delayMs));
  }

  private check(): void {
    this.timer = null;
    if (!this.running || this.paused || this.finished) return;
    const idle = this.now() - this.last;
    if (idle < this.timeoutMs) return this.arm(this.timeoutMs - idle);
    this.stop();
    this.onIdle(idle);
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/**
 * The failure of a base backup whose server stopped sending: which server, for how long, and what
 * rookery was waiting for ('while streaming the base backup').
 */
export function pgStalledError(target: string, timeoutMs: number, waitingFor: string): SourceUnavailableError {
  return new SourceUnavailableError(`no data from PostgreSQL at ${target} for ${formatSeconds(timeoutMs)} s ${waitingFor}`, {
    hint: 'the server or network stalled; raise postgres.idleTimeoutSeconds if a checkpoint legitimately takes longer',
  });
}

function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return Number.isInteger(seconds) ? String(seconds) : seconds.toFixed(1);
}
