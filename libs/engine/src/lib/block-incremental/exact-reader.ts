import { Hash, createHash } from 'node:crypto';
import { IntegrityError } from '@rookery/core';
import { ByteQueue } from '@rookery/pipeline';

/**
 * Reads a byte stream in pieces of exact lengths (a tar header, a page, a field), whatever the
 * chunks the stream delivers. Memory: the chunks that cover the current read.
 */
export class ExactReader {
  private readonly queue = new ByteQueue();
  private readonly chunks: AsyncIterator<Buffer | Uint8Array | string>;
  private ended = false;
  /** SHA-256 of the bytes handed out, when asked for (a format's trailer checks it). */
  private readonly sha256: Hash | null;
  /** Bytes handed out so far: the stream offset of the next read. */
  offset = 0;

  constructor(
    source: AsyncIterable<Buffer | Uint8Array | string>,
    /** Names the stream in errors ("incremental of backup X"). */
    readonly label: string,
    options: { sha256?: boolean } = {},
  ) {
    this.chunks = source[Symbol.asyncIterator]();
    this.sha256 = options.sha256 ? createHash('sha256') : null;
  }

  /** The SHA-256 of everything read so far (with the sha256 option). */
  digestSoFar(): Buffer {
    if (!this.sha256) throw new IntegrityError(`${this.label} is read without a digest`);
    return this.sha256.copy().digest();
  }

  /** Exactly `length` bytes; a stream that ends first is refused, naming `what` was being read. */
  async read(length: number, what: string): Promise<Buffer> {
    if (!(await this.fill(length))) {
      throw new IntegrityError(`${this.label} ends early: ${this.queue.length} of the ${length} bytes of ${what} at offset ${this.offset}`);
    }
    this.offset += length;
    const taken = this.queue.shift(length);
    this.sha256?.update(taken);
    return taken;
  }

  /** Up to `length` bytes as they lie in the stream's chunks (fewer only at the end of the stream). */
  async readSome(length: number): Promise<Buffer[]> {
    await this.fill(Math.min(length, 1));
    const taken = this.queue.shiftPieces(Math.min(length, this.queue.length));
    for (const piece of taken) {
      this.offset += piece.length;
      this.sha256?.update(piece);
    }
    return taken;
  }

  /** The next `length` bytes, as the stream's chunks hold them; a stream that ends first is refused, naming `what`. */
  async *pieces(length: number, what: string): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      const taken = await this.readSome(left);
      if (taken.length === 0) throw new IntegrityError(`${this.label} ends early, in ${what}`);
      for (const piece of taken) {
        left -= piece.length;
        yield piece;
      }
    }
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /** Ends the source early (its producer is told through the iterator's return). */
  async close(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      await this.chunks.return?.();
    }
  }

  private async fill(length: number): Promise<boolean> {
    while (this.queue.length < length && !this.ended) {
      const next = await this.chunks.next();
      if (next.done) this.ended = true;
      else
        this.queue.push(
          typeof next.value === 'string'
            ? Buffer.from(next.value)
            : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength),
        );
    }
    return this.queue.length >= length;
  }
}
