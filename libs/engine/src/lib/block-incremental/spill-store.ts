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
/** Spilled pieces are gathered into writes of this size (a data directory has thousands of small entries). */
const WRITE_BATCH_BYTES = 1024 * 1024;

/**
 * Append-only storage of byte pieces (page digests, changed pages) that keeps the first
 * `memoryBytes` in memory and the rest in a temporary file read back by offset: what lets an index
 * or a chain of incrementals larger than memory be looked up with RSS bounded. `close` removes the
 * file.
 */
export class SpillStore {
  private memoryUsed = 0;
  private file: { handle: FileHandle; directory: string; size: number } | null = null;
  /** Spilled pieces not written yet, from offset `written` of the file on. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written = 0;
  /** The batch being written: a read waits for it. */
  private flushing: Promise<void> = Promise.resolve();
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
      return { buffer: Buffer.from(piece) };
    }
    const file = await this.openFile();
    const offset = file.size;
    file.size += piece.length;
    this.pending.push(Buffer.from(piece));
    this.pendingBytes += piece.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.flush(file);
    return { offset, length: piece.length };
  }

  async read(handle: SpillHandle): Promise<Buffer> {
    if ('buffer' in handle) return handle.buffer;
    if (!this.file) throw new InvariantError('read of a spilled piece before anything was spilled');
    if (handle.offset >= this.written) await this.flush(this.file);
    await this.flushing;
    const buffer = Buffer.allocUnsafe(handle.length);
    const { bytesRead } = await this.file.handle.read(buffer, 0, handle.length, handle.offset);
    if (bytesRead !== handle.length) throw new InvariantError(`spill file returned ${bytesRead} of ${handle.length} bytes`);
    return buffer;
  }

  private async flush(file: { handle: FileHandle }): Promise<void> {
    const batch = Buffer.concat(this.pending, this.pendingBytes);
    const at = this.written;
    this.pending = [];
    this.pendingBytes = 0;
    this.written += batch.length;
    this.flushing = this.flushing.then(() => file.handle.write(batch, 0, batch.length, at)).then(() => undefined);
    await this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
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
