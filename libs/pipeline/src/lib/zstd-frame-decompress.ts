import { Transform, TransformCallback } from 'node:stream';
import { IntegrityError } from '@rookery/core';
import { findFrameCompressedSize } from 'zstd-napi/binding';
import { CompressionPool, compressionPool } from './compression-pool';

/** A zstd stream whose next frame is not complete after this many bytes is refused. */
const MAX_FRAME_BYTES = 256 * 1024 * 1024;
/** What zstd says when the buffer ends inside a frame: wait for more input. */
const INCOMPLETE_FRAME = 'Src size is incorrect';

export interface ParallelZstdDecompressOptions {
  label?: string;
  /** Frames decompressed at once; default: the pool's size. */
  workers?: number;
  pool?: CompressionPool;
}

/**
 * Decompresses a concatenation of zstd frames by handing whole frames to the worker pool, several
 * at a time, and emitting their output in order. rookery writes one independent frame per 4 MiB
 * chunk, so restore decompression uses every core and emits 4 MiB buffers instead of 128 KiB
 * ones. Each frame's content checksum is verified by zstd. Memory stays bounded: at most
 * 2 × workers frames are in flight, the readable side holds back writes when full, and a frame
 * that does not end within MAX_FRAME_BYTES is refused (rookery's frames are a few MiB).
 */
export class ParallelZstdDecompressStream extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  private readonly inFlight: Promise<Buffer>[] = [];
  private readonly maxInFlight: number;
  private readonly pool: CompressionPool;
  private readonly label: string;

  constructor(options: ParallelZstdDecompressOptions = {}) {
    super();
    this.pool = options.pool ?? compressionPool();
    this.maxInFlight = 2 * Math.max(1, options.workers ?? this.pool.size);
    this.label = options.label ?? 'unnamed';
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.submitFrames().then(() => callback(), (error: unknown) => callback(this.integrity(error)));
  }

  override _flush(callback: TransformCallback): void {
    const drain = async () => {
      if (this.pending.length > 0) {
        throw new IntegrityError(`artifact '${this.label}' ends inside a zstd frame (${this.pending.length} bytes left): it is truncated`);
      }
      while (this.inFlight.length > 0) await this.emitOldest();
    };
    drain().then(() => callback(), (error: unknown) => callback(this.integrity(error)));
  }

  private async submitFrames(): Promise<void> {
    for (let size = this.nextFrameSize(); size !== null; size = this.nextFrameSize()) {
      // A private copy: the pool transfers the frame's memory to a worker.
      const frame = Buffer.from(this.pending.subarray(0, size));
      this.pending = this.pending.subarray(size);
      const output = this.pool.decompressZstdFrame(frame);
      output.catch(() => undefined);
      this.inFlight.push(output);
      while (this.inFlight.length >= this.maxInFlight) await this.emitOldest();
    }
  }

  private async emitOldest(): Promise<void> {
    const output = await (this.inFlight.shift() as Promise<Buffer>);
    if (output.length > 0) this.push(output);
  }

  /** The size of the complete frame at the head of `pending`, or null when it is not all here. */
  private nextFrameSize(): number | null {
    if (this.pending.length === 0) return null;
    try {
      return findFrameCompressedSize(this.pending);
    } catch (error) {
      if ((error as Error).message !== INCOMPLETE_FRAME) throw error;
      if (this.pending.length > MAX_FRAME_BYTES) {
        throw new IntegrityError(`artifact '${this.label}' has a zstd frame larger than ${MAX_FRAME_BYTES} bytes: not written by rookery`);
      }
      return null;
    }
  }

  private integrity(error: unknown): Error {
    if (error instanceof IntegrityError) return error;
    return new IntegrityError(`cannot decompress artifact '${this.label}' (zstd): ${(error as Error).message}`, {
      cause: error,
      hint: 'the stored bytes are damaged or not in this format; run rookery verify on the backup',
    });
  }
}
