const EMPTY = Buffer.alloc(0);

/**
 * A FIFO of buffers read as one byte sequence, without copying what it stores. Every operation is
 * amortised O(1) per stored piece, however small the pieces (a stream may deliver single bytes).
 */
export class ByteQueue {
  private pieces: Buffer[] = [];
  private head = 0;
  private total = 0;
  /** Last lookup position (piece index and its offset in the queue): lookups mostly move forward. */
  private hintIndex = 0;
  private hintStart = 0;

  get length(): number {
    return this.total;
  }

  push(piece: Buffer): void {
    if (piece.length === 0) return;
    this.pieces.push(piece);
    this.total += piece.length;
  }

  byteAt(offset: number): number {
    if (offset < 0 || offset >= this.total) throw new RangeError(`offset ${offset} outside ${this.total} queued bytes`);
    let index = this.hintIndex;
    let start = this.hintStart;
    if (index < this.head || offset < start) {
      index = this.head;
      start = 0;
    }
    while (offset >= start + this.pieces[index].length) start += this.pieces[index++].length;
    this.hintIndex = index;
    this.hintStart = start;
    return this.pieces[index][offset - start];
  }

  uint32LE(offset: number): number {
    return (this.byteAt(offset) | (this.byteAt(offset + 1) << 8) | (this.byteAt(offset + 2) << 16) | (this.byteAt(offset + 3) << 24)) >>> 0;
  }

  uint32BE(offset: number): number {
    return ((this.byteAt(offset) << 24) | (this.byteAt(offset + 1) << 16) | (this.byteAt(offset + 2) << 8) | this.byteAt(offset + 3)) >>> 0;
  }

  /** Removes the first `length` bytes and returns them as the pieces they were stored in. */
  shiftPieces(length: number): Buffer[] {
    if (length > this.total) throw new RangeError(`cannot take ${length} of ${this.total} queued bytes`);
    const taken: Buffer[] = [];
    let remaining = length;
    while (remaining > 0) {
      const first = this.pieces[this.head];
      if (first.length <= remaining) {
        taken.push(first);
        // Drop the reference now: a consumed piece must not live until the next compaction
        // (1024 pieces of a 256 KiB-chunked stream held 256 MiB: the lz4 restore's RSS).
        this.pieces[this.head++] = EMPTY;
        remaining -= first.length;
      } else {
        taken.push(first.subarray(0, remaining));
        this.pieces[this.head] = first.subarray(remaining);
        remaining = 0;
      }
    }
    this.total -= length;
    this.hintIndex = this.head;
    this.hintStart = 0;
    if (this.head > 1024 && this.head * 2 > this.pieces.length) {
      this.pieces = this.pieces.slice(this.head);
      this.head = 0;
      this.hintIndex = 0;
    }
    return taken;
  }

  /** Removes the first `length` bytes as one buffer (a view when they sit in one piece). */
  shift(length: number): Buffer {
    const taken = this.shiftPieces(length);
    return taken.length === 1 ? taken[0] : Buffer.concat(taken, length);
  }
}
