import { Readable, addAbortSignal } from 'node:stream';

/**
 * The bytes of one write, seen through a counting wrapper: reports progress, stops when the
 * caller's AbortSignal fires, and remembers whether a failure came from the caller's source (which
 * the driver rethrows unchanged) rather than from the store.
 */
export class WriteSource {
  readonly stream: Readable;
  private sourceFailure: { error: unknown } | undefined;
  private bytes = 0;

  constructor(
    private readonly source: Readable,
    private readonly signal: AbortSignal | undefined,
    onProgress: ((bytes: number) => void) | undefined,
  ) {
    if (signal) addAbortSignal(signal, source);
    this.stream = Readable.from(this.count(onProgress), { objectMode: false });
  }

  static of(body: Readable | Buffer, signal?: AbortSignal, onProgress?: (bytes: number) => void): WriteSource {
    return new WriteSource(Buffer.isBuffer(body) ? Readable.from([body]) : body, signal, onProgress);
  }

  get bytesRead(): number {
    return this.bytes;
  }

  /** The error to surface for a failed write: the abort reason, the source's own error, or none. */
  callerFailure(): { error: unknown } | undefined {
    if (this.signal?.aborted) return { error: this.signal.reason };
    return this.sourceFailure;
  }

  /** Releases the caller's stream when the store gave up before reading it to the end. */
  release(): void {
    if (!this.source.destroyed && !this.source.readableEnded) this.source.destroy();
  }

  private async *count(onProgress: ((bytes: number) => void) | undefined): AsyncGenerator<Buffer> {
    let handingOver = false;
    try {
      for await (const chunk of this.source) {
        const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
        this.bytes += buffer.length;
        onProgress?.(this.bytes);
        handingOver = true;
        yield buffer;
        handingOver = false;
      }
    } catch (error) {
      // An error thrown in at the yield is the store tearing this stream down (its own write
      // failed, e.g. ENOSPC: the stream is destroyed with an AbortError), not the source's failure.
      if (!handingOver) this.sourceFailure = { error };
      throw error;
    }
  }
}
