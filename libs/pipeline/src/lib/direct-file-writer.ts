import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, write } from 'node:fs';

// The global WebAssembly object (the compile targets here include no DOM/wasm type library).
declare const WebAssembly: { Memory: new (descriptor: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

/** Staging buffer size: bytes are copied here, aligned, and written from here in one call. */
const STAGING_BYTES = 1024 * 1024;
/** Offset, length and memory alignment of direct writes (enough for 4 KiB-sector devices). */
const DIRECT_ALIGN = 4096;

/**
 * Aligned staging memory shared by the files being written: `count` buffers of 1 MiB carved out
 * of one page-aligned block (one allocation, one address-space reservation), reused. Bounds the
 * memory and the writes in flight: take() waits for a buffer to come back.
 */
export class DirectWriteMemory {
  private readonly free: Buffer[];
  private waiting: (() => void)[] = [];

  constructor(count = 8) {
    const block = alignedBuffer(count * STAGING_BYTES);
    this.free = Array.from({ length: count }, (_, index) => block.subarray(index * STAGING_BYTES, (index + 1) * STAGING_BYTES));
  }

  async take(failure: () => Error | null): Promise<Buffer> {
    for (;;) {
      const error = failure();
      if (error) throw error;
      const memory = this.free.pop();
      if (memory) return memory;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  give(memory: Buffer): void {
    this.free.push(memory);
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}

/**
 * Memory aligned to the OS page, as O_DIRECT needs: V8 places WebAssembly memory on page
 * boundaries (Node's Buffers come from malloc, 16-byte aligned). Where no WebAssembly memory can
 * be had, ordinary memory: direct writes from it fail with EINVAL and the writer then goes
 * through the page cache, as it does for memory that is not aligned after all.
 */
export function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65_536);
  try {
    return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
  } catch {
    return Buffer.allocUnsafeSlow(bytes);
  }
}

export interface DirectFileOptions {
  /** Permission bits, set exactly (not through the umask). */
  mode: number;
  /** Modification time, seconds since the epoch. */
  mtime: number;
  /** Given when running as root: the file's owner. */
  owner: { uid: number; gid: number } | null;
  memory: DirectWriteMemory;
}

/**
 * Writes one new file front to back with O_DIRECT, bypassing the page cache: each full 1 MiB
 * staging buffer is written on libuv's pool while the caller goes on copying; the tail that is
 * not a multiple of 4 KiB goes through a second, ordinary descriptor. Where the file system takes
 * no direct writes (open or write fails with EINVAL: tmpfs, some FUSE), everything goes through
 * the ordinary descriptor. Creation is O_EXCL and O_NOFOLLOW: never into something that exists,
 * never through a link. Durability is the caller's (fsync or syncfs after finish()).
 */
export class DirectFileWriter {
  private buffer: Buffer | null = null;
  private fill = 0;
  private written = 0;
  private readonly writes = new Set<Promise<void>>();
  private failure: Error | null = null;
  private closed = false;
  private directWritten = 0;

  private constructor(
    private readonly fd: number,
    private directFd: number,
    private readonly options: DirectFileOptions,
  ) {}

  static create(path: string, options: DirectFileOptions): DirectFileWriter {
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    let directFd = -1;
    try {
      // The second descriptor before the mode: a read-only mode would refuse it once set.
      directFd = openDirect(path);
      if (options.owner) fchownSync(fd, options.owner.uid, options.owner.gid);
      fchmodSync(fd, options.mode);
    } catch (error) {
      if (directFd >= 0) closeSync(directFd);
      closeSync(fd);
      throw error;
    }
    return new DirectFileWriter(fd, directFd, options);
  }

  /** Bytes that went to disk with O_DIRECT (the rest through the page cache). */
  get directBytes(): number {
    return this.directWritten;
  }

  /** Copies `length` bytes of `chunk` from `start`; resolves once they are copied (not yet written). */
  async append(chunk: Buffer, start: number, length: number): Promise<void> {
    let position = start;
    const end = start + length;
    while (position < end) {
      if (this.failure) throw this.failure;
      this.buffer ??= await this.options.memory.take(() => this.failure);
      const copied = chunk.copy(this.buffer, this.fill, position, Math.min(end, position + this.buffer.length - this.fill));
      this.fill += copied;
      position += copied;
      if (this.fill === this.buffer.length) this.writeBuffer();
    }
  }

  /** Writes what is left, waits for every write, sets the time and closes. */
  async finish(): Promise<void> {
    this.writeBuffer();
    await this.settle();
    try {
      if (this.failure) throw this.failure;
      futimesSync(this.fd, this.options.mtime, this.options.mtime);
    } finally {
      this.close();
    }
  }

  /** After a failure elsewhere: waits for the writes in flight, then closes. */
  async abort(): Promise<void> {
    this.failure ??= new Error('write aborted');
    if (this.buffer) this.options.memory.give(this.buffer);
    this.buffer = null;
    await this.settle();
    this.close();
  }

  private writeBuffer(): void {
    const buffer = this.buffer;
    if (!buffer) return;
    const length = this.fill;
    const position = this.written;
    this.buffer = null;
    this.fill = 0;
    this.written += length;
    const write = this.writePiece(buffer, length, position)
      .catch((error: Error) => {
        this.failure ??= error;
      })
      // Back even after a failure: an append() waiting for memory then sees the failure.
      .finally(() => {
        this.options.memory.give(buffer);
        this.writes.delete(write);
      });
    this.writes.add(write);
  }

  private async writePiece(buffer: Buffer, length: number, position: number): Promise<void> {
    // Every buffer but the last is full, so `position` is a multiple of the buffer size: aligned.
    const aligned = this.directFd >= 0 ? length - (length % DIRECT_ALIGN) : 0;
    if (aligned > 0) {
      try {
        await writeAll(this.directFd, buffer, 0, aligned, position);
        this.directWritten += aligned;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EINVAL') throw error;
        // This file system or device takes no direct writes after all: through the page cache.
        await writeAll(this.fd, buffer, 0, aligned, position);
      }
    }
    if (length > aligned) await writeAll(this.fd, buffer, aligned, length - aligned, position + aligned);
  }

  private async settle(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.directFd >= 0) closeSync(this.directFd);
    this.directFd = -1;
    closeSync(this.fd);
  }
}

/** An O_DIRECT descriptor, or -1 where the platform or file system has none (EINVAL). */
function openDirect(path: string): number {
  if (constants.O_DIRECT === undefined) return -1;
  try {
    return openSync(path, constants.O_WRONLY | constants.O_DIRECT | constants.O_NOFOLLOW);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EINVAL') return -1;
    throw error;
  }
}

function writeAll(fd: number, memory: Buffer, start: number, length: number, position: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const next = (offset: number): void => {
      write(fd, memory, start + offset, length - offset, position + offset, (error, written) => {
        if (error) return reject(error);
        if (offset + written >= length) return resolve();
        next(offset + written);
      });
    };
    next(0);
  });
}
