import { createHash } from 'node:crypto';
import { FileHandle, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Duplex, PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ConfigError,
  EncryptionKeyError,
  IntegrityError,
  InvalidWalFileError,
  TierName,
  WalConflictError,
  WalFileName,
  WalNotFoundError,
  parseWalFileName,
} from '@rookery/core';
import {
  BufferPool,
  ChunkHasher,
  DEFAULT_COMPRESSION_CHUNK_SIZE,
  chunkHasher,
  compressChunks,
  compressHashedChunks,
  compressionPool,
  createDecompressStream,
  createDecryptStream,
  createEncryptStream,
  createZstdSink,
  objectBinding,
  ZstdContexts,
} from '@rookery/pipeline';
import { WalArchive, WalObject, WalSystemRecord, walLayout } from '@rookery/repository';
import { checkWalFile } from './wal-file.check';
import { SpoolOwner, createExclusive } from './wal.spool';
import { WalContext, encryptionRequired } from './wal.context';

export interface WalPushResult {
  name: string;
  key: string;
  /** 'already-archived' when an identical copy was there (a retry after a lost acknowledgement). */
  status: 'archived' | 'already-archived';
  bytes: number;
  storedBytes: number;
  sha256: string;
}

export interface WalGetResult {
  name: string;
  key: string;
  bytes: number;
  /** True when only a .partial copy existed and was served for the segment (pg_receivewal, promotion). */
  partial: boolean;
}

/**
 * wal-push and wal-get (DESIGN §4–6): one WAL file in or out of the repository. A push resolves
 * only once the object is durable in the store; an identical duplicate is a success, a different
 * one an error (never an overwrite). A get verifies the decoded bytes against the checksum in the
 * key and lands the file atomically (temporary name, fsync, rename), so recovery never reads a
 * partial or unverified segment.
 */
export class WalTransfer {
  readonly archive: WalArchive;
  /** Memory of chunks already compressed, read into again (see readWalContent). */
  private readonly buffers: ChunkBuffers;
  /** The tiers' system records, once read (a background archiver pushes many files). */
  private readonly systems = new Map<TierName, WalSystemRecord>();
  /** zstd decompression contexts reused from get to get (the prefetcher's, processMax at once). */
  private readonly zstdContexts = new ZstdContexts();

  constructor(private readonly context: WalContext) {
    this.archive = new WalArchive(context.repository.store, context.repository.keyring);
    this.buffers = new ChunkBuffers(this.chunkSize);
  }

  async push(tier: TierName, path: string, options: { signal?: AbortSignal } = {}): Promise<WalPushResult> {
    const file = requireWalFile(basename(path));
    return this.pushContent(tier, file, await this.read(path), options);
  }

  /** Reads a WAL file for pushContent, into the memory of chunks earlier pushes have compressed. */
  read(path: string): Promise<WalContent> {
    return readWalContent(path, this.chunkSize, this.buffers);
  }

  /**
   * Starts the sha256 and compression workers and loads the codec in them, ahead of the first
   * push: a background archiver's first segments then do not wait for that.
   */
  async warmUp(): Promise<void> {
    const { compression } = this.context.encoding;
    const hashed = this.hasher.hash([]).digest;
    if (compression.codec === 'none') return void (await hashed);
    const pool = this.context.compressor ?? compressionPool();
    const empty = Array.from({ length: pool.size }, () => Buffer.alloc(0));
    await Promise.all([hashed, ...empty.map((chunk) => compressChunks(compression, [chunk], { pool, label: 'warm-up' }))]);
  }

  /** The size of the pieces a WAL file is read in for a push: one compressed frame each. */
  get chunkSize(): number {
    return this.context.encoding.chunkSize ?? DEFAULT_COMPRESSION_CHUNK_SIZE;
  }

  private get hasher(): ChunkHasher {
    return this.context.hasher ?? chunkHasher();
  }

  /**
   * Pushes `content` (read by readWalContent) as `file`; resolves only once the object is durable
   * in the store. Takes over the content's chunks (hashing and compression hand their memory to
   * their workers): the caller must not use them afterwards. The background archiver of
   * asynchronous archiving calls this.
   */
  async pushContent(tier: TierName, file: WalFileName, content: WalContent, options: { signal?: AbortSignal }): Promise<WalPushResult> {
    await this.requireTrueWal(tier, file, content);
    const { encoding } = this.context;
    // The sha256 (part of the key, and what tells a duplicate from a conflict) is computed in the
    // hasher's thread as the chunks go on to the compression workers, while the store lists the
    // file's versions: the main thread only orchestrates. On a duplicate or a conflict the frames
    // are dropped; nothing has been written yet.
    const [existing, { frames, sha256, bytes }] = await Promise.all([
      this.archive.versions(tier, file),
      compressHashedChunks(encoding.compression, content.chunks, {
        pool: this.context.compressor,
        hasher: this.hasher,
        label: file.name,
        recycle: this.buffers.give,
      }),
    ]);
    const same = existing.find((object) => object.sha256 === sha256);
    if (same) {
      return { name: file.name, key: same.key, status: 'already-archived', bytes, storedBytes: same.storedBytes, sha256 };
    }
    // A .partial file may be archived again with more WAL in it (pg_receivewal stops, a promotion
    // after a crash): every version is kept. Any other name has exactly one true content.
    if (existing.length > 0 && file.kind !== 'partial') throw new WalConflictError(file.name, tier);

    const key = walLayout.key(tier, file, sha256, encoding.compression.codec, encoding.key !== null);
    // The whole file was in memory: its chunks went to the workers as they were (no stream, no
    // copy); the frames are encrypted and uploaded as one stream.
    const stages: Duplex[] = encoding.key ? [createEncryptStream(encoding.key.material, { binding: walBinding(tier, file) })] : [];
    // Encrypt and upload at once; whichever fails first decides, the other is torn down.
    const body = new PassThrough();
    const encoded = pipeline([Readable.from(frames), ...stages, body], { signal: options.signal });
    const written = this.context.repository.store.write(key, body, {
      storageClass: this.context.config.tiers[tier].policy.storageClass,
      signal: options.signal,
    });
    const [, info] = await Promise.all([encoded, written]);
    return { name: file.name, key, status: 'archived', bytes, storedBytes: info.size, sha256 };
  }

  /**
   * Refuses, before anything is stored, a file that is not the WAL segment its name says or comes
   * from another database system than the one the tier archives; the first segment pushed into a
   * tier records that system.
   */
  private async requireTrueWal(tier: TierName, file: WalFileName, content: WalContent): Promise<void> {
    const recorded = this.systems.get(tier) ?? (await this.archive.system(tier));
    const check = checkWalFile(file.name, content.bytes, content.chunks[0] ?? Buffer.alloc(0), recorded);
    if (check.problem !== null) throw new InvalidWalFileError(`${check.problem}; nothing was stored`);
    if (recorded) this.systems.set(tier, recorded);
    else if (check.header) {
      const { systemIdentifier, segmentSize } = check.header;
      const record = { systemIdentifier, segmentSize, firstSegment: file.name, recordedAt: new Date().toISOString() };
      await this.archive.recordSystem(tier, record);
      this.systems.set(tier, record);
    }
  }

  /**
   * Fetches `name` into `destination` (verified, fsynced, then renamed into place). `owner`: the
   * file is given to that account through its descriptor before anything is written into it (a
   * root restore's prefetcher filling the server's spool).
   */
  async get(
    tier: TierName,
    name: string,
    destination: string,
    options: { signal?: AbortSignal; owner?: SpoolOwner | null } = {},
  ): Promise<WalGetResult> {
    const file = requireWalFile(name);
    const object = await this.locate(tier, file);
    const temporary = join(dirname(destination), `.${basename(destination)}.rookery-${process.pid}`);
    // A predictable name, in a directory another account may write (a root restore's prefetcher
    // fetching into the server's spool): no planted link makes this process write elsewhere.
    const handle = await createExclusive(temporary, options.owner);
    let bytes: number;
    try {
      bytes = await this.decode(tier, object, (decoded) => writeAll(handle, decoded), options);
      await handle.sync();
      await handle.close();
      await rename(temporary, destination);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
      throw error;
    }
    return { name: file.name, key: object.key, bytes, partial: object.file.kind === 'partial' };
  }

  /**
   * Re-reads one archived WAL file as wal-get would, without landing it anywhere: refused when
   * encryption is required and it is not encrypted, decrypted (which authenticates it as the file
   * its name and timeline say), decompressed, and its sha256 held against the one in its key.
   * Resolves with its size; rejects with what is wrong (`verify --wal --deep`).
   */
  async authenticate(tier: TierName, object: WalObject, options: { signal?: AbortSignal } = {}): Promise<number> {
    return this.decode(tier, object, async () => undefined, options);
  }

  /**
   * Decodes a stored WAL object and hands its bytes, in order, to `land` (which must be done with
   * them when its promise resolves: they may be overwritten next); resolves with their count once
   * their sha256 matched the one in the key. With wal.reuseBuffers, a zstd object is decompressed
   * into one reused buffer (createZstdSink) instead of through the plain stream pipeline.
   */
  private async decode(
    tier: TierName,
    object: WalObject,
    land: (decoded: Buffer) => Promise<void>,
    options: { signal?: AbortSignal },
  ): Promise<number> {
    const hash = createHash('sha256');
    let bytes = 0;
    const consume = async (decoded: Buffer) => {
      hash.update(decoded);
      bytes += decoded.length;
      await land(decoded);
    };
    const reuse = this.context.config.wal.reuseBuffers && object.codec === 'zstd';
    const stages: Array<Duplex | Writable> = this.decodingStages(tier, object, { decompress: !reuse });
    stages.push(
      reuse
        ? createZstdSink(consume, { label: object.key, contexts: this.zstdContexts })
        : new Writable({
            write(chunk: Buffer, _encoding, callback) {
              consume(chunk).then(() => callback(), callback);
            },
          }),
    );
    await pipeline([await this.context.repository.store.read(object.key, { signal: options.signal }), ...stages], {
      signal: options.signal,
    });
    requireChecksum(object, hash.digest('hex'));
    return bytes;
  }

  /** The stages that turn a stored WAL object back into the file PostgreSQL archived (`decompress` false: all but the decompression). */
  private decodingStages(tier: TierName, object: WalObject, options: { decompress: boolean }): Duplex[] {
    const stages: Duplex[] = [];
    this.assertEncrypted(object);
    if (object.encrypted) {
      // Bound to the name and timeline it is served as (and the tier): a segment stored under
      // another's name fails its first tag. Objects archived before binding (RKYENC01) still open.
      const binding = walBinding(tier, object.file);
      stages.push(createDecryptStream(this.keyFor(object), { subject: `WAL file '${object.key}'`, binding }));
    }
    if (options.decompress && object.codec !== 'none')
      stages.push(createDecompressStream({ codec: object.codec, level: 0 }, { label: object.key }));
    return stages;
  }

  /**
   * The object to serve for a name: its single archived copy; for a segment archived only as
   * .partial (the end of a timeline, or pg_receivewal's last segment), the newest partial copy,
   * which PostgreSQL replays up to its last valid record.
   */
  private async locate(tier: TierName, file: WalFileName): Promise<WalObject> {
    const versions = await this.archive.versions(tier, file);
    const distinct = new Set(versions.map((version) => version.sha256));
    if (distinct.size > 1) throw new WalConflictError(file.name, tier, { hint: 'run rookery verify --wal to list conflicting copies' });
    if (versions.length > 0) return versions[0];
    if (file.kind === 'segment') {
      const partial = parseWalFileName(`${file.name}.partial`) as WalFileName;
      const partials = await this.archive.versions(tier, partial);
      const newest = partials.at(-1);
      if (newest) return newest;
    }
    throw new WalNotFoundError(file.name, tier);
  }

  /** With encryption required by the configuration, a WAL file stored without it is refused. */
  private assertEncrypted(object: WalObject): void {
    if (object.encrypted || !encryptionRequired(this.context.encoding)) return;
    throw new IntegrityError(`WAL file '${object.key}' is not encrypted, and this repository requires encryption`, {
      hint: 'a plaintext object where an encrypted one belongs was put there by hand or by an attacker; recovery will not use it. Set encryption.required: false only while reading WAL archived before encryption was turned on',
    });
  }

  private keyFor(object: WalObject): Buffer {
    const key = this.context.encoding.key;
    if (!key) {
      throw new EncryptionKeyError(`WAL file '${object.key}' is encrypted and no encryption key is configured`, {
        hint: 'set encryption.keyFile in rookery.yaml or ROOKERY_ENCRYPTION_KEY',
      });
    }
    return key.material;
  }
}

function requireChecksum(object: WalObject, actual: string): void {
  if (actual === object.sha256) return;
  throw new IntegrityError(`checksum mismatch for WAL file '${object.key}': expected sha256 ${object.sha256}, got ${actual}`, {
    hint: 'the archived object is damaged; recovery cannot continue past this point from this repository',
  });
}

/** The associated data a WAL file is encrypted with: its tier, timeline and name. */
export function walBinding(tier: TierName, file: WalFileName): string {
  return objectBinding({ kind: 'wal', tier, timeline: file.timeline, name: file.name });
}

/**
 * A WAL file read into memory for a push: its bytes in pieces of the compression chunk size, each
 * owning its memory (so that hashing and compression can take a piece over without copying it).
 */
export interface WalContent {
  chunks: Buffer[];
  bytes: number;
}

/**
 * Memory for the chunks of WAL files: what the compression workers handed back after compressing
 * them (FrameCompressor.compress's recycle). Keeps at most `max` (two segments in flight at 4 MiB
 * chunks use 8).
 */
export class ChunkBuffers extends BufferPool {
  constructor(chunkSize: number, max = 12) {
    super(chunkSize, max);
  }
}

/**
 * Reads a WAL file in pieces of `chunkSize` bytes. One read call per piece into a buffer of its
 * own (from `buffers` when given): readFile would read 16 MiB in 512 KiB requests into one buffer,
 * which compression would then copy again, piece by piece. The push hashes them
 * (WalTransfer.pushContent).
 */
export async function readWalContent(path: string, chunkSize: number, buffers?: ChunkBuffers): Promise<WalContent> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    let bytes = 0;
    while (bytes < size) {
      const length = Math.min(chunkSize, size - bytes);
      const chunk = buffers ? buffers.take(length) : Buffer.allocUnsafeSlow(length);
      let filled = 0;
      while (filled < chunk.length) {
        const { bytesRead } = await handle.read(chunk, filled, chunk.length - filled, bytes + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      const piece = filled === chunk.length ? chunk : chunk.subarray(0, filled);
      chunks.push(piece);
      bytes += filled;
      if (filled < chunk.length) break; // The file shrank while it was read; the caller's identity check says so.
    }
    return { chunks, bytes };
  } finally {
    await handle.close();
  }
}

/** Writes all of `bytes` at the file's current position (a short write is continued, never dropped). */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += (await handle.write(bytes, written, bytes.length - written)).bytesWritten;
}

/** The parsed name, or a ConfigError (a usage error: exit 2) naming what a WAL file name looks like. */
export function requireWalFile(name: string): WalFileName {
  const file = parseWalFileName(name);
  if (!file) {
    throw new ConfigError(`'${name}' is not a WAL file name`, ['NAME'], {
      hint: 'expected a segment (000000010000000000000003), a .partial or .backup file, or a timeline .history file',
    });
  }
  return file;
}
