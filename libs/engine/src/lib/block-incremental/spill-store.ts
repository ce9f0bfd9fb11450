import { FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvariantError } from '@rookery/core';

/** Where one stored piece lies: in memory, or at an offset of the spill file. */
export type SpillHandle = { buffer: Buffer } | { offset: number; length: number };

export interface SpillStoreOptions {
  /** Bytes kept in memory before pieces go to the spill file (default 64 MiB). */
  memoryBytes?: number;
  /** Where the spill file is made (default the OS temporary directory). */
  directory?: string;
}

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/** Pieces kept in memory are copied into slabs of this size: one allocation per slab, not per page. */
const SLAB_BYTES = 1024 * 1024;
/** Spilled pieces are gathered into writes of this size (a data directory has thousands of small entries). */
const WRITE_BATCH_BYTES = 1024 * 1024;
/**
 * The spill file is read back in aligned blocks of this size, the last few kept: the chain
 * combiner reads a file's changed pages in page order, from a handful of regions (one per
 * incremental) that each move forwards, so one read serves the next pages of its region.
 */
const READ_BLOCK_BYTES = 256 * 1024;
const READ_BLOCKS_KEPT = 16;
/** The most readMany takes in one read. */
const READ_RUN_BYTES = 1024 * 1024;

/**
 * Append-only storage of byte pieces (page digests, changed pages) that keeps the first
 * `memoryBytes` in memory and the rest in a temporary file read back by offset: what lets an index
 * or a chain of incrementals larger than memory be looked up with RSS bounded. `close` removes the
 * file. A piece read back may share memory with others: the caller must not write into it.
 */
export class SpillStore {
  private memoryUsed = 0;
  /** The slab pieces are being copied into, and how much of it is used. */
  private slab: Buffer | null = null;
  private slabUsed = 0;
  private file: { handle: FileHandle; directory: string; size: number } | null = null;
  /** Spilled pieces not written yet (the first `pendingBytes` of it), from offset `written` of the file on. */
  private pendingBatch: Buffer | null = null;
  private pendingBytes = 0;
  private written = 0;
  /** The batch being written: a read waits for it. */
  private flushing: Promise<void> = Promise.resolve();
  /** Blocks of the spill file read lately, by block number, oldest first. */
  private readonly blocks = new Map<number, Buffer>();
  private closed = false;
  private readonly memoryBytes: number;

  constructor(private readonly options: SpillStoreOptions = {}) {
    this.memoryBytes = options.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  }

  /** Bytes written to the spill file so far. */
  get spilledBytes(): number {
    return this.file?.size ?? 0;
  }

  /** Stores a copy of `piece` (the caller may reuse its buffer). */
  async append(piece: Buffer): Promise<SpillHandle> {
    if (this.closed) throw new InvariantError('append to a closed spill store');
    if (this.memoryUsed + piece.length <= this.memoryBytes) {
      this.memoryUsed += piece.length;
      return { buffer: this.copyToSlab(piece) };
    }
    const file = await this.openFile();
    const offset = file.size;
    file.size += piece.length;
    if (piece.length > WRITE_BATCH_BYTES / 4) {
      // A big piece is written as it is, after what is pending (and before the caller may reuse it).
      if (this.pendingBytes > 0) await this.flush(file);
      await this.write(file, piece);
      return { offset, length: piece.length };
    }
    if (this.pendingBytes + piece.length > WRITE_BATCH_BYTES) await this.flush(file);
    this.pendingBatch ??= Buffer.allocUnsafe(WRITE_BATCH_BYTES);
    piece.copy(this.pendingBatch, this.pendingBytes);
    this.pendingBytes += piece.length;
    return { offset, length: piece.length };
  }

  async read(handle: SpillHandle): Promise<Buffer> {
    if ('buffer' in handle) return handle.buffer;
    if (!this.file) throw new InvariantError('read of a spilled piece before anything was spilled');
    if (handle.offset + handle.length > this.written) await this.flush(this.file);
    await this.flushing;
    const first = Math.floor(handle.offset / READ_BLOCK_BYTES);
    const last = Math.floor((handle.offset + handle.length - 1) / READ_BLOCK_BYTES);
    if (handle.length > 0 && first === last) {
      const block = await this.block(first);
      const start = handle.offset - first * READ_BLOCK_BYTES;
      if (start + handle.length <= block.length) return block.subarray(start, start + handle.length);
    }
    return this.readAt(handle.offset, handle.length);
  }

  /**
   * Several pieces at once, in the order asked: pieces that lie next to each other in the spill
   * file come from one read (up to READ_RUN_BYTES), past the block cache. For a reader that knows
   * what it needs next (a file's changed pages, which each incremental stored together).
   */
  async readMany(handles: SpillHandle[]): Promise<Buffer[]> {
    const pieces: Buffer[] = new Array<Buffer>(handles.length);
    const spilled: { index: number; offset: number; length: number }[] = [];
    for (const [index, handle] of handles.entries()) {
      if ('buffer' in handle) pieces[index] = handle.buffer;
      else spilled.push({ index, ...handle });
    }
    if (spilled.length === 0) return pieces;
    if (!this.file) throw new InvariantError('read of a spilled piece before anything was spilled');
    if (spilled.some((piece) => piece.offset + piece.length > this.written)) await this.flush(this.file);
    await this.flushing;
    spilled.sort((left, right) => left.offset - right.offset);
    for (let first = 0; first < spilled.length; ) {
      let last = first;
      while (
        last + 1 < spilled.length &&
        spilled[last + 1].offset === spilled[last].offset + spilled[last].length &&
        spilled[last + 1].offset + spilled[last + 1].length - spilled[first].offset <= READ_RUN_BYTES
      )
        last++;
      const start = spilled[first].offset;
      const run = await this.readAt(start, spilled[last].offset + spilled[last].length - start);
      for (let at = first; at <= last; at++) {
        const piece = spilled[at];
        pieces[piece.index] = run.subarray(piece.offset - start, piece.offset - start + piece.length);
      }
      first = last + 1;
    }
    return pieces;
  }

  /** Block `number` of the spill file, from the blocks kept or read now (the oldest kept one dropped). */
  private async block(number: number): Promise<Buffer> {
    const kept = this.blocks.get(number);
    // A block read while it was the end of the file is read again once the file grew past it.
    if (kept && kept.length < READ_BLOCK_BYTES && number * READ_BLOCK_BYTES + kept.length < this.written) this.blocks.delete(number);
    else if (kept) {
      this.blocks.delete(number);
      this.blocks.set(number, kept);
      return kept;
    }
    const offset = number * READ_BLOCK_BYTES;
    const block = await this.readAt(offset, Math.min(READ_BLOCK_BYTES, this.written - offset));
    // A fresh buffer per block: pieces handed out from an older block may still be in use.
    if (this.blocks.size >= READ_BLOCKS_KEPT) this.blocks.delete(this.blocks.keys().next().value as number);
    this.blocks.set(number, block);
    return block;
  }

  private async readAt(offset: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await (this.file as { handle: FileHandle }).handle.read(buffer, 0, length, offset);
    if (bytesRead !== length) throw new InvariantError(`spill file returned ${bytesRead} of ${length} bytes`);
    return buffer;
  }

  private copyToSlab(piece: Buffer): Buffer {
    if (piece.length > SLAB_BYTES / 4) return Buffer.from(piece);
    if (!this.slab || this.slabUsed + piece.length > this.slab.length) {
      this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.slabUsed = 0;
    }
    const copy = this.slab.subarray(this.slabUsed, this.slabUsed + piece.length);
    piece.copy(copy);
    this.slabUsed += piece.length;
    return copy;
  }

  private async flush(file: { handle: FileHandle }): Promise<void> {
    if (!this.pendingBatch || this.pendingBytes === 0) return;
    const batch = this.pendingBatch.subarray(0, this.pendingBytes);
    // A fresh batch for what comes next: this one is being written.
    this.pendingBatch = null;
    this.pendingBytes = 0;
    await this.write(file, batch);
  }

  /** Writes `bytes` at the end of what was written, after the writes before it. */
  private async write(file: { handle: FileHandle }, bytes: Buffer): Promise<void> {
    const at = this.written;
    this.written += bytes.length;
    this.flushing = this.flushing.then(async () => {
      let done = 0;
      while (done < bytes.length) done += (await file.handle.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
    });
    await this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.slab = null;
    this.blocks.clear();
    const file = this.file;
    this.file = null;
    if (!file) return;
    await file.handle.close().catch(() => undefined);
    await rm(file.directory, { recursive: true, force: true });
  }

  private async openFile(): Promise<{ handle: FileHandle; directory: string; size: number }> {
    if (this.file) return this.file;
    // A directory of its own (mode 0700 from mkdtemp): the pages of a backup are not for other accounts.
    const directory = await mkdtemp(join(this.options.directory ?? tmpdir(), 'rookery-spill-'));
    try {
      const handle = await open(join(directory, 'pieces'), 'w+', 0o600);
      this.file = { handle, directory, size: 0 };
      return this.file;
    } catch (error) {
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
  }
}
