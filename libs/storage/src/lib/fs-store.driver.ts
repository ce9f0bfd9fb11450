import { randomBytes } from 'node:crypto';
import { Dirent, writev } from 'node:fs';
import { FileHandle, chmod, link, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import {
  CompletingWriteOptions,
  ObjectInfo,
  ReadOptions,
  RequestOptions,
  RookeryError,
  Store,
  StoreFeatures,
  StorageAccessDeniedError,
  StorageConflictError,
  StorageNotFoundError,
  StorageUnavailableError,
  WriteCompletion,
} from '@rookery/core';
import { FsRepositoryAccess, FsRepositoryAccessOptions, PARENT_DIRECTORY_MODE } from './fs-repository-access';
import { assertStoreKey, assertStorePrefix } from './store-key';
import { WriteSource } from './write-source';

/** Temporary names of writes in progress: `<key>.tmp-<hex>`; never listed, never read. */
const TEMP_SUFFIX = /\.tmp-[0-9a-f]{12}$/;

/**
 * A store in a local (or mounted) directory. A write goes to `<key>.tmp-<random>`, is fsynced,
 * then renamed (or, for `ifAbsent`, hard-linked, which fails atomically when the key exists) and
 * the directory fsynced: a reader sees the whole object or nothing, and a crash leaves at most a
 * temporary file, which list skips.
 */
/** Reads in 256 KiB pieces: fewer chunks through the restore pipeline, a faster restore at the same RSS (BENCHMARKS.md). */
const READ_CHUNK_BYTES = 256 * 1024;

export class FsStoreDriver implements Store, WriteCompletion {
  readonly features: StoreFeatures = Object.freeze({
    conditionalCreate: true,
    serverSideEncryption: false,
    // No storage classes and no object lock: files can be deleted by anyone with write access.
    storageClasses: false,
    objectLock: false,
    writeCompletion: true,
  });
  readonly description: string;
  private readonly access: FsRepositoryAccess;

  constructor(
    readonly root: string,
    options: FsRepositoryAccessOptions = {},
  ) {
    this.description = `file://${root}`;
    this.access = new FsRepositoryAccess(root, options);
  }

  /**
   * Writes and removes a probe object. Its key is `.rookery-probe-<hex>` in the root, not in a
   * directory of its own, so nothing (no emptied probe directory) is left behind, whatever fails.
   */
  async check(): Promise<void> {
    const probe = `.rookery-probe-${randomBytes(6).toString('hex')}`;
    try {
      await this.write(probe, Buffer.from('rookery store probe\n'));
    } catch (error) {
      await this.remove(probe).catch(() => undefined);
      throw error;
    }
    await this.remove(probe);
  }

  async stat(key: string, options: RequestOptions = {}): Promise<ObjectInfo | null> {
    assertStoreKey(key);
    options.signal?.throwIfAborted();
    try {
      const stats = await lstat(this.pathOf(key));
      if (!stats.isFile()) return null;
      return { key, size: stats.size, modifiedAt: stats.mtime };
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return null;
      throw translateFsError(error, `stat of object '${key}'`, key);
    }
  }

  async *list(prefix: string, options: RequestOptions = {}): AsyncIterable<ObjectInfo> {
    assertStorePrefix(prefix);
    options.signal?.throwIfAborted();
    // Walk from the deepest directory the prefix names; the rest of the prefix filters names.
    const slash = prefix.lastIndexOf('/');
    const start = slash < 0 ? this.root : join(this.root, prefix.slice(0, slash));
    for await (const path of walk(start)) {
      const key = relative(this.root, path).split(sep).join('/');
      if (!key.startsWith(prefix) || TEMP_SUFFIX.test(key)) continue;
      const info = await this.stat(key);
      if (info) yield info;
    }
  }

  async read(key: string, options: ReadOptions = {}): Promise<Readable> {
    assertStoreKey(key);
    let handle: FileHandle;
    try {
      handle = await open(this.pathOf(key), 'r');
      if (!(await handle.stat()).isFile()) {
        await handle.close();
        throw new StorageNotFoundError(key);
      }
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR', 'EISDIR')) throw new StorageNotFoundError(key, { cause: error });
      throw translateFsError(error, `read of object '${key}'`, key);
    }
    return handle.createReadStream({ signal: options.signal, highWaterMark: READ_CHUNK_BYTES });
  }

  async write(key: string, body: Readable | Buffer, options: CompletingWriteOptions = {}): Promise<ObjectInfo> {
    assertStoreKey(key);
    options.signal?.throwIfAborted();
    const path = this.pathOf(key);
    const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
    const source = WriteSource.of(body, options.signal, options.onProgress);
    let handle: FileHandle | undefined;
    try {
      await this.ensureDirectory(dirname(path));
      handle = await open(temp, 'wx', this.access.fileMode);
      await this.access.adoptFile(handle);
      await writeBehind(handle, source.stream, options.onWritten);
      await handle.sync();
      await handle.close();
      handle = undefined;
      // The last moment an abort can still leave no object.
      options.signal?.throwIfAborted();
      if (options.ifAbsent) {
        await link(temp, path);
        await unlink(temp);
      } else {
        await rename(temp, path);
      }
      await fsyncDirectory(dirname(path));
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      source.release();
      const callerFailure = source.callerFailure();
      if (callerFailure) throw callerFailure.error;
      if (options.ifAbsent && isErrno(error, 'EEXIST')) throw new StorageConflictError(key, { cause: error });
      throw translateFsError(error, `write of object '${key}'`, key);
    }
    const info = await this.stat(key);
    return info ?? { key, size: source.bytesRead, modifiedAt: new Date() };
  }

  async remove(key: string, options: RequestOptions = {}): Promise<void> {
    assertStoreKey(key);
    options.signal?.throwIfAborted();
    try {
      await unlink(this.pathOf(key));
    } catch (error) {
      if (isErrno(error, 'ENOENT', 'ENOTDIR')) return;
      throw translateFsError(error, `remove of object '${key}'`, key);
    }
  }

  async close(): Promise<void> {
    // Nothing held open between calls.
  }

  private pathOf(key: string): string {
    return join(this.root, ...key.split('/'));
  }

  /**
   * Creates missing parents and fsyncs the directory that received each new entry. Those inside
   * the repository (its root included) get the repository's owner and mode; any above its root
   * can be traversed, not listed.
   */
  private async ensureDirectory(dir: string): Promise<void> {
    const firstCreated = await mkdir(dir, { recursive: true, mode: this.access.directoryMode });
    if (firstCreated === undefined) return;
    let current = dir;
    const created: string[] = [];
    while (current.length >= firstCreated.length) {
      created.push(current);
      current = dirname(current);
    }
    for (const path of created.reverse()) {
      if (this.contains(path)) await this.access.adoptDirectory(path);
      else await chmod(path, PARENT_DIRECTORY_MODE);
      await fsyncDirectory(dirname(path));
    }
  }

  private contains(path: string): boolean {
    return path === this.root || path.startsWith(`${this.root}${sep}`);
  }
}

async function* walk(dir: string): AsyncGenerator<string> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if (isErrno(error, 'ENOENT', 'ENOTDIR')) return;
    throw translateFsError(error, `list of directory '${dir}'`);
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) yield path;
  }
}

/** Writes go to the file in pieces of at least this size (a stream's chunks are often 16–64 KiB). */
const WRITE_BYTES = 1024 * 1024;
/** At most this many chunks per writev (the system's IOV_MAX is 1024). */
const WRITE_CHUNKS = 512;
/** After this many bytes, a flush of what is written so far starts while writing goes on. */
const SYNC_BEHIND_BYTES = 32 * 1024 * 1024;

/**
 * Writes the stream into the file with one writev per WRITE_BYTES, and every SYNC_BEHIND_BYTES
 * starts an fdatasync without waiting for it: the disk flushes while more arrives, so the caller's
 * final fsync only has the tail left. The callback fs API, not FileHandle.write: the promise API
 * costs several times the CPU per byte written (BENCHMARKS.md), CPU a streaming backup takes
 * from the server compressing beside it. Each chunk goes
 * to `onWritten` once its writev returned: the file has its bytes, the caller may reuse the memory.
 */
async function writeBehind(handle: FileHandle, stream: Readable, onWritten?: (chunk: Buffer) => void): Promise<void> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let unsynced = 0;
  let syncing: Promise<void> | null = null;
  let syncFailure: unknown = null;
  const flush = async () => {
    const buffers = pending;
    unsynced += pendingBytes;
    pending = [];
    pendingBytes = 0;
    await writevAll(handle.fd, buffers);
    if (onWritten) for (const buffer of buffers) onWritten(buffer);
    if (unsynced >= SYNC_BEHIND_BYTES && !syncing) {
      unsynced = 0;
      syncing = handle.datasync().then(
        () => void (syncing = null),
        (error: unknown) => void ((syncFailure ??= error), (syncing = null)),
      );
    }
  };
  for await (const chunk of stream) {
    pending.push(chunk as Buffer);
    pendingBytes += (chunk as Buffer).length;
    if (pendingBytes >= WRITE_BYTES || pending.length >= WRITE_CHUNKS) await flush();
  }
  if (pending.length > 0) await flush();
  await syncing;
  if (syncFailure) throw syncFailure;
}

/** Writes every byte of `buffers` at the file's position (a short write continues where it stopped). */
async function writevAll(fd: number, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    const written = await new Promise<number>((resolve, reject) =>
      writev(fd, rest, (error, bytes) => (error ? reject(error) : resolve(bytes))),
    );
    rest = withoutFirstBytes(rest, written);
  }
}

/** `buffers` without their first `count` bytes (what a short writev left to write). */
export function withoutFirstBytes(buffers: Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  let skip = count;
  for (const buffer of buffers) {
    if (skip >= buffer.length) skip -= buffer.length;
    else {
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
  }
  return rest;
}

async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isErrno(error: unknown, ...codes: string[]): boolean {
  return typeof error === 'object' && error !== null && codes.includes((error as NodeJS.ErrnoException).code ?? '');
}

/** OS errors of the filesystem store, in the core storage taxonomy. */
export function translateFsError(error: unknown, what: string, key?: string): RookeryError {
  if (error instanceof RookeryError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? 'unknown';
  const detail = `${what} failed: ${code}`;
  if (code === 'ENOENT' && key !== undefined) return new StorageNotFoundError(key, { cause: error });
  if (code === 'EEXIST' && key !== undefined) return new StorageConflictError(key, { cause: error });
  if (code === 'EACCES' || code === 'EPERM') {
    return new StorageAccessDeniedError(`${detail} (permission denied)`, {
      cause: error,
      hint: 'check the owner and mode of the store directory',
    });
  }
  const transient = ['EIO', 'EAGAIN', 'EBUSY', 'EMFILE', 'ENFILE', 'ETIMEDOUT', 'ESTALE'].includes(code);
  return new StorageUnavailableError(detail, { cause: error, retryable: transient });
}
