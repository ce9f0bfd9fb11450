import { Duplex, PassThrough, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { CompressionSpec, IntegrityError, InvariantError } from '@rookery/core';
import { DecompressStream } from 'zstd-napi';
import { ChunkHasher } from './chunk-hasher';
import { CompressOptions, compressionPool, FrameCompressor, PooledCodec } from './compression-pool';
import { Lz4FrameDecoder } from './lz4-frame';
import { OffloadedZstdDecompressStream } from './zstd-decode';

/** Chunk size for parallel compression; see tools/bench/codecs.mjs for the measurements. */
export const DEFAULT_COMPRESSION_CHUNK_SIZE = 4 * 1024 * 1024;
const MIN_CHUNK_SIZE = 64 * 1024;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;

export interface CompressStreamOptions {
  /** Chunks compressed at the same time by this stream (default: the pool size). */
  workers?: number;
  /** Bytes of input per independent frame (default 4 MiB, 64 KiB to 64 MiB). */
  chunkSize?: number;
  /** Artifact name used in error messages. */
  label?: string;
  /** Pool to run on; defaults to the process-wide pool. */
  pool?: FrameCompressor;
}

export interface DecompressStreamOptions {
  /** Artifact name used in error messages. */
  label?: string;
  /** Decode zstd in a worker thread (for the big streams of a restore) instead of the caller's thread. */
  offload?: boolean;
}

/**
 * A compressed artifact is a concatenation of independent frames of one codec (zstd frames, gzip
 * members, LZ4 frames), each holding one chunk of the input, in input order. That is a standard
 * stream: `zstd -d`, `gzip -d` and `lz4 -d` restore it without rookery. Empty input still yields
 * one (empty) frame, so a valid artifact is never zero bytes.
 *
 * Codec 'none' is a pass-through. For the others, chunks are compressed in the worker pool, at
 * most `workers` at a time per stream; the stream keeps at most 2 × workers chunks in flight
 * (assembled and waiting, compressing, or compressed but waiting for an earlier one) and stops accepting input while its readable side is full, so
 * memory stays bounded whatever the speed of the consumer.
 */
export function createCompressStream(spec: CompressionSpec, options: CompressStreamOptions = {}): Duplex {
  if (spec.codec === 'none') return new PassThrough();
  const chunkSize = options.chunkSize ?? DEFAULT_COMPRESSION_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new InvariantError(`compression chunk size must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  }
  const pool = options.pool ?? compressionPool();
  const workers = Math.max(1, Math.floor(options.workers ?? pool.size));
  return new ParallelCompressStream(spec, { chunkSize, workers, pool, label: options.label ?? 'unnamed' });
}

/**
 * Compresses input that is already in memory, one frame per chunk, in order: the same bytes as
 * createCompressStream with chunkSize equal to the chunks' length (every chunk full but the last,
 * one empty chunk for empty input), without the stream's copy of each chunk into its own buffer.
 * The chunks' memory is handed over to the pool (FrameCompressor.compress): the caller must not
 * use them afterwards, and a chunk that does not own its whole ArrayBuffer is copied once. Codec
 * 'none' returns the chunks themselves. All chunks are queued at once: callers bound the memory by
 * how much they read ahead (a WAL file is 16 MiB).
 */
export async function compressChunks(spec: CompressionSpec, chunks: readonly Buffer[], options: ChunksOptions = {}): Promise<Buffer[]> {
  if (spec.codec === 'none') return [...chunks];
  const pool = options.pool ?? compressionPool();
  const input = chunks.length > 0 ? chunks : [Buffer.alloc(0)];
  return Promise.all(input.map((chunk, index) => compressChunk(spec, chunk, index, pool, options)));
}

/** Options of compressChunks: `recycle` gets each chunk's memory back once it is compressed (FrameCompressor.compress). */
export type ChunksOptions = Pick<CompressStreamOptions, 'label' | 'pool'> & CompressOptions;

export interface HashedFrames {
  frames: Buffer[];
  /** SHA-256 (hex) of the chunks' bytes, in order: the raw input, not the frames. */
  sha256: string;
  bytes: number;
}

/**
 * compressChunks, and the SHA-256 of the input computed by `hasher` on the way to the compressor
 * (in its worker thread, for WorkerChunkHasher): each chunk is hashed, then the very memory that
 * was hashed goes to the pool, so the digest is that of the bytes compressed. Refuses a digest
 * that did not cover exactly the bytes handed in (IntegrityError). Takes over the chunks' memory.
 */
export async function compressHashedChunks(
  spec: CompressionSpec,
  chunks: readonly Buffer[],
  options: ChunksOptions & { hasher: ChunkHasher },
): Promise<HashedFrames> {
  const label = options.label ?? 'unnamed';
  const bytes = chunks.reduce((total, chunk) => total + chunk.length, 0);
  const pool = options.pool ?? compressionPool();
  const hashed = options.hasher.hash(chunks);
  const frames =
    spec.codec === 'none'
      ? Promise.all(hashed.chunks)
      : chunks.length === 0
        ? compressChunks(spec, [], options)
        : Promise.all(
            hashed.chunks.map((returned, index) =>
              returned.then((chunk) => compressChunk(spec, chunk, index, pool, { ...options, label })),
            ),
          );
  const [compressed, digest] = await Promise.all([frames, hashed.digest]);
  if (digest.bytes !== bytes) {
    throw new IntegrityError(`sha256 of '${label}' covered ${digest.bytes} bytes, but ${bytes} were compressed`, {
      hint: 'nothing was stored; this is a bug in rookery, please report it',
    });
  }
  return { frames: compressed, sha256: digest.sha256, bytes };
}

function compressChunk(
  spec: CompressionSpec,
  chunk: Buffer,
  index: number,
  pool: FrameCompressor,
  options: CompressOptions & { label?: string },
): Promise<Buffer> {
  return pool.compress(spec.codec as PooledCodec, spec.level, chunk, { recycle: options.recycle }).catch((cause: unknown) => {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw new InvariantError(`cannot compress chunk ${index} of '${options.label ?? 'unnamed'}' with ${spec.codec}: ${reason}`, { cause });
  });
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (error?: Error | null) => void;
}

/** The parallel, order-preserving compressor behind createCompressStream. */
export class ParallelCompressStream extends Duplex {
  private readonly maxInFlight: number;
  private assembly: Buffer | null = null;
  private filled = 0;
  private totalIn = 0;
  private nextSeq = 0;
  private nextToEmit = 0;
  private inFlight = 0;
  private peak = 0;
  private readonly ready: { seq: number; input: Buffer }[] = [];
  private compressing = 0;
  private readonly finished = new Map<number, Buffer>();
  private pending: PendingWrite | null = null;
  /** push() said the readable side is full; cleared when the consumer asks for more (_read). */
  private downstreamFull = false;
  private finalCallback: ((error?: Error | null) => void) | null = null;

  constructor(
    private readonly spec: CompressionSpec,
    private readonly options: { chunkSize: number; workers: number; pool: FrameCompressor; label: string },
  ) {
    super({ readableHighWaterMark: options.chunkSize });
    this.maxInFlight = 2 * options.workers;
  }

  /** Chunks handed to the pool and not yet emitted. */
  get inFlightChunks(): number {
    return this.inFlight;
  }

  /** The most chunks that were ever in flight at once (never above 2 × workers). */
  get peakInFlightChunks(): number {
    return this.peak;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.totalIn += chunk.length;
    this.pending = { chunk, offset: 0, callback };
    this.pump();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.filled > 0 || this.totalIn === 0) {
      const last = Buffer.allocUnsafeSlow(this.filled);
      this.assembly?.copy(last, 0, 0, this.filled);
      this.assembly = null;
      this.filled = 0;
      this.submit(last);
    }
    this.finalCallback = callback;
    this.emitFinished();
  }

  override _read(): void {
    this.downstreamFull = false;
    this.pump();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.finished.clear();
    this.ready.length = 0;
    this.pending = null;
    this.assembly = null;
    callback(error);
  }

  /** Moves pending input into chunks while there is room in flight and downstream. */
  private pump(): void {
    const pending = this.pending;
    if (!pending || this.destroyed) return;
    const { chunkSize } = this.options;
    while (pending.offset < pending.chunk.length) {
      if (this.inFlight >= this.maxInFlight || this.downstreamFull) return;
      this.assembly ??= Buffer.allocUnsafeSlow(chunkSize);
      const copied = pending.chunk.copy(this.assembly, this.filled, pending.offset, pending.offset + chunkSize - this.filled);
      pending.offset += copied;
      this.filled += copied;
      if (this.filled === chunkSize) {
        const full = this.assembly;
        this.assembly = null;
        this.filled = 0;
        this.submit(full);
      }
    }
    this.pending = null;
    pending.callback();
  }

  private submit(input: Buffer): void {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    this.ready.push({ seq: this.nextSeq++, input });
    this.launch();
  }

  /** Keeps `workers` chunks compressing; the rest wait, assembled, for their turn. */
  private launch(): void {
    const { codec, level } = this.spec;
    while (this.compressing < this.options.workers && this.ready.length > 0 && !this.destroyed) {
      const { seq, input } = this.ready.shift() as { seq: number; input: Buffer };
      this.compressing++;
      this.options.pool.compress(codec as PooledCodec, level, input).then(
        (frame) => {
          this.compressing--;
          this.finished.set(seq, frame);
          this.launch();
          this.emitFinished();
        },
        (cause: unknown) => {
          this.compressing--;
          const reason = cause instanceof Error ? cause.message : String(cause);
          this.destroy(
            new InvariantError(`cannot compress chunk ${seq} of artifact '${this.options.label}' with ${codec}: ${reason}`, { cause }),
          );
        },
      );
    }
  }

  /** Emits compressed frames strictly in input order; ends the stream once everything is out. */
  private emitFinished(): void {
    if (this.destroyed) return;
    let frame = this.finished.get(this.nextToEmit);
    while (frame !== undefined) {
      this.finished.delete(this.nextToEmit++);
      this.inFlight--;
      if (!this.push(frame)) this.downstreamFull = true;
      frame = this.finished.get(this.nextToEmit);
    }
    this.pump();
    if (this.finalCallback && this.inFlight === 0) {
      const callback = this.finalCallback;
      this.finalCallback = null;
      this.push(null);
      callback();
    }
  }
}

/**
 * Decompresses a concatenation of frames of `spec.codec` as a stream, with memory bounded by one
 * frame (LZ4) or the codec's window (zstd, gzip). Corrupt, truncated or foreign input fails the
 * stream with an IntegrityError that names the artifact and the codec.
 */
export function createDecompressStream(spec: CompressionSpec, options: DecompressStreamOptions = {}): Duplex {
  const label = options.label ?? 'unnamed';
  switch (spec.codec) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return withIntegrityErrors(zlib.createGunzip(), 'gzip', label);
    case 'zstd':
      return options.offload ? new OffloadedZstdDecompressStream(label) : withIntegrityErrors(new DecompressStream(), 'zstd', label);
    case 'lz4':
      return new Lz4FrameDecoder(label);
    default:
      throw new InvariantError(`unknown compression codec '${String((spec as CompressionSpec).codec)}'`);
  }
}

/** Rewrites whatever error the codec raises into an IntegrityError naming the artifact. */
function withIntegrityErrors<T extends Transform>(stream: T, codec: string, label: string): T {
  const destroy = stream._destroy.bind(stream);
  stream._destroy = (error, callback) =>
    destroy(error, (failure?: Error | null) =>
      callback(
        failure && !(failure instanceof IntegrityError)
          ? new IntegrityError(`cannot decompress artifact '${label}' (${codec}): ${failure.message}`, {
              cause: failure,
              hint: 'the stored bytes are damaged or not in this format; run rookery verify on the backup',
            })
          : failure,
      ),
    );
  return stream;
}
