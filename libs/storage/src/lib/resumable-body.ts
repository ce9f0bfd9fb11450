import { Readable, finished } from 'node:stream';

export interface ResumableBodyOptions {
  /**
   * Opens the same object again from byte `start` to its end. Must return exactly the bytes from
   * `start` of the version first read, or reject (a changed object is an error, not new bytes).
   */
  reopen: (start: number) => Promise<Readable>;
  /** The object's size when known: a body that ends short of it is resumed like a failed one. */
  length?: number;
  /** Bodies in a row that may fail without delivering a byte before the read fails. */
  maxAttempts: number;
  /** Whether a body's failure is worth resuming after: network errors, timeouts, truncation. */
  isResumable: (error: unknown) => boolean;
  /** The error the reader sees when the read gives up (`attempts` failed bodies in a row). */
  failure: (error: unknown, position: number, attempts: number) => Error;
  /** Wait before reopening after the `attempt`-th failure in a row (1-based). */
  backoffMs?: (attempt: number) => number;
}

/** A body that ended before the object's known size without an error of its own. */
export class TruncatedBodyError extends Error {
  constructor(
    readonly position: number,
    readonly length: number,
  ) {
    super(`the body ended at byte ${position} of ${length}`);
    this.name = 'TruncatedBodyError';
  }
}

/** Exponential backoff with full jitter: up to 200 ms, 400 ms, … capped at 5 s. */
export function resumeBackoffMs(attempt: number): number {
  return Math.floor(Math.random() * Math.min(5_000, 200 * 2 ** (attempt - 1)));
}

/**
 * One continuous stream over an object read in as many bodies as the network needs: when a body
 * fails mid-stream (a reset, a socket timeout, an early end) the next is opened from the byte where
 * the last stopped, so the reader, and the checksum it computes, sees every byte exactly once.
 * Bounded: `maxAttempts` bodies in a row that deliver nothing fail the read; a body that delivers
 * bytes starts the count again, so a long read over a flaky link keeps going while it progresses.
 */
export class ResumableBody extends Readable {
  private body: Readable | undefined;
  private position = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bodies opened after the first one. */
  resumes = 0;

  constructor(
    first: Readable,
    private readonly options: ResumableBodyOptions,
  ) {
    super();
    this.attach(first);
  }

  /** Bytes delivered to the reader so far (the offset the next body would start from). */
  get bytesRead(): number {
    return this.position;
  }

  override _read(): void {
    this.body?.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    const body = this.body;
    this.body = undefined;
    body?.destroy();
    callback(error);
  }

  private attach(body: Readable): void {
    this.body = body;
    body.on('data', (chunk: Buffer) => {
      this.position += chunk.length;
      this.failures = 0;
      if (!this.push(chunk)) body.pause();
    });
    finished(body, (error) => {
      if (this.body !== body || this.destroyed) return;
      this.body = undefined;
      const { length } = this.options;
      // Every byte arrived: an error after the last one (a reset as the connection closes) is moot.
      if (length !== undefined && this.position >= length) return void this.push(null);
      if (!error && length === undefined) return void this.push(null);
      body.destroy();
      this.failed(error ?? new TruncatedBodyError(this.position, length as number));
    });
  }

  private failed(error: unknown): void {
    this.failures += 1;
    if (!this.options.isResumable(error) || this.failures >= this.options.maxAttempts) {
      this.destroy(this.options.failure(error, this.position, this.failures));
      return;
    }
    const wait = (this.options.backoffMs ?? resumeBackoffMs)(this.failures);
    this.timer = setTimeout(() => this.reopen(), wait);
  }

  private reopen(): void {
    this.timer = undefined;
    if (this.destroyed) return;
    this.resumes += 1;
    this.options.reopen(this.position).then(
      (body) => {
        if (this.destroyed) body.destroy();
        else this.attach(body);
      },
      (error: unknown) => {
        if (!this.destroyed) this.destroy(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }
}
