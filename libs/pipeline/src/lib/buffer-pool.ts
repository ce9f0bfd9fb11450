/**
 * Memory of one size handed back for reuse: whole ArrayBuffers a worker thread returned after
 * using them (compressed, hashed, decoded). A fresh buffer costs a page fault per 4 KiB page,
 * kernel time many times that of writing into reused memory (zstd into fresh buffers is several
 * times slower than into a reused one: BENCHMARKS.md). Keeps at most `max` buffers;
 * anything else, or of another size, is left to the garbage collector.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];

  constructor(
    private readonly bufferSize: number,
    private readonly max = Number.POSITIVE_INFINITY,
  ) {}

  /** A buffer of exactly `size` bytes that owns its whole memory (reused when `size` is the pool's and one is free). */
  take(size = this.bufferSize): Buffer {
    const memory = size === this.bufferSize ? this.free.pop() : undefined;
    return memory ? Buffer.from(memory) : Buffer.allocUnsafeSlow(size);
  }

  readonly give = (memory: ArrayBuffer): void => {
    if (memory.byteLength === this.bufferSize && this.free.length < this.max) this.free.push(memory);
  };

  /** Buffers held for reuse. */
  get size(): number {
    return this.free.length;
  }

  /** Drops every held buffer. */
  clear(): void {
    this.free.length = 0;
  }
}
