/**
 * Gathers a stream's chunks into fixed-size buffers whose memory is handed to a worker thread
 * (transferred, not copied again): one copy per byte, one message per batch instead of one per
 * chunk. `allocate` may hand back a batch the worker returned, to reuse it.
 */
export class TransferBatcher {
  private batch: Buffer | null = null;
  private filled = 0;

  constructor(
    private readonly size: number,
    private readonly send: (data: ArrayBuffer, length: number) => void,
    private readonly allocate: () => Buffer = () => Buffer.allocUnsafeSlow(size),
  ) {}

  /** Copies `chunk` in, sending every batch it fills. */
  append(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= this.allocate();
      const copied = chunk.copy(this.batch, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === this.size) this.flush();
    }
  }

  /** Sends the partly filled batch, if any. */
  flush(): void {
    if (!this.batch || this.filled === 0) return;
    const data = this.batch.buffer as ArrayBuffer;
    const length = this.filled;
    this.batch = null;
    this.filled = 0;
    this.send(data, length);
  }

  /** The bytes appended since the last batch was sent (a view of the partly filled batch). */
  pending(): Buffer {
    return this.batch ? this.batch.subarray(0, this.filled) : Buffer.alloc(0);
  }

  /** Drops the partly filled batch (the stream was destroyed). */
  discard(): void {
    this.batch = null;
    this.filled = 0;
  }
}
