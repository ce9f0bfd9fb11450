import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { InvariantError } from '@rookery/core';
import { ownsWholeBuffer, transferable } from './transferable';

export type PooledCodec = 'gzip' | 'zstd' | 'lz4';

export interface CompressionPoolOptions {
  /** Worker threads in the pool; defaults to os.availableParallelism(). */
  size?: number;
}

/**
 * What a compress stream needs from a pool. `compress` must resolve with one complete frame of
 * `codec` holding exactly `input`, may settle jobs in any order, and takes ownership of `input`.
 * With `recycle`, the input's memory is handed back through it once compressed (before the frame
 * resolves), for the caller to read the next chunk into: a fresh buffer costs a page fault per
 * 4 KiB page, many times the kernel time of reused memory (BENCHMARKS.md).
 */
export interface FrameCompressor {
  readonly size: number;
  compress(codec: PooledCodec, level: number, input: Buffer, options?: CompressOptions): Promise<Buffer>;
}

export interface CompressOptions {
  /** Receives the input's whole ArrayBuffer, no longer used by the compressor. */
  recycle?: (memory: ArrayBuffer) => void;
}

interface Job {
  id: number;
  codec: PooledCodec;
  level: number;
  input: Buffer;
  recycle?: (memory: ArrayBuffer) => void;
  resolve: (frame: Buffer) => void;
  reject: (error: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  job: Job | null;
}

type WorkerReply =
  | { id: number; output: ArrayBuffer; length: number; input?: ArrayBuffer }
  | { id: number; error: string; input?: ArrayBuffer };

/** Compiled or not, the worker sits beside this file (tsconfig.build.json copies *.worker.js). */
const WORKER_PATH = path.join(__dirname, 'codec.worker.js');

/**
 * A fixed-size pool of worker threads that each compress one chunk into one independent frame.
 * Guarantees: every job settles exactly once; a job's input buffer is transferred (the caller
 * must not touch it afterwards); idle workers are unref'd so they never keep the process alive,
 * busy ones are ref'd so an in-progress pipeline is not cut short; a crashed worker fails only its
 * own job and is replaced on demand.
 */
export class CompressionPool implements FrameCompressor {
  readonly size: number;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: CompressionPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? availableParallelism()));
  }

  /** Compresses `input` (whose memory is handed over to the worker) into one frame. */
  compress(codec: PooledCodec, level: number, input: Buffer, options: CompressOptions = {}): Promise<Buffer> {
    if (this.closed) return Promise.reject(new InvariantError('the compression pool was shut down'));
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, codec, level, input, recycle: options.recycle, resolve, reject });
      this.dispatch();
    });
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    const error = new InvariantError('the compression pool was shut down while compressing');
    for (const job of this.queue.splice(0)) job.reject(error);
    const workers = this.workers.splice(0);
    for (const entry of workers) entry.job?.reject(error);
    await Promise.all(workers.map((entry) => entry.worker.terminate()));
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const entry = this.workers.find((candidate) => candidate.job === null) ?? this.spawn();
      if (!entry) return;
      const job = this.queue.shift() as Job;
      entry.job = job;
      entry.worker.ref();
      const { buffer, byteOffset, byteLength } = transferable(job.input);
      entry.worker.postMessage(
        {
          id: job.id,
          codec: job.codec,
          level: job.level,
          input: buffer,
          offset: byteOffset,
          length: byteLength,
          giveBack: job.recycle !== undefined,
        },
        [buffer],
      );
    }
  }

  private spawn(): PoolWorker | undefined {
    if (this.workers.length >= this.size) return undefined;
    const entry: PoolWorker = { worker: new Worker(WORKER_PATH), job: null };
    entry.worker.unref();
    entry.worker.on('message', (reply: WorkerReply) => this.settle(entry, reply));
    entry.worker.on('error', (error) => this.retire(entry, error));
    entry.worker.on('exit', (code) => this.retire(entry, new Error(`worker exited with code ${code}`)));
    this.workers.push(entry);
    return entry;
  }

  private settle(entry: PoolWorker, reply: WorkerReply): void {
    const job = entry.job;
    if (!job || job.id !== reply.id) return;
    entry.job = null;
    entry.worker.unref();
    if (reply.input) job.recycle?.(reply.input);
    if ('error' in reply) job.reject(new Error(reply.error));
    else job.resolve(Buffer.from(reply.output, 0, reply.length));
    this.dispatch();
  }

  private retire(entry: PoolWorker, error: Error): void {
    const index = this.workers.indexOf(entry);
    if (index === -1) return;
    this.workers.splice(index, 1);
    entry.job?.reject(error);
    entry.job = null;
    void entry.worker.terminate();
    this.dispatch();
  }
}

/**
 * Compresses in the calling thread, one frame at a time: for a short-lived process with little to
 * compress (one 16 MiB WAL file), where starting worker threads costs more CPU and time than the
 * compression itself (BENCHMARKS.md).
 */
export class InlineFrameCompressor implements FrameCompressor {
  readonly size = 1;

  async compress(codec: PooledCodec, level: number, input: Buffer, options: CompressOptions = {}): Promise<Buffer> {
    const frames = require(WORKER_PATH) as { compress(codec: PooledCodec, level: number, input: Buffer): Buffer };
    try {
      return frames.compress(codec, level, input);
    } finally {
      if (options.recycle && ownsWholeBuffer(input)) options.recycle(input.buffer);
    }
  }
}

let sharedPool: CompressionPool | null = null;
let sharedPoolSize: number | undefined;

/** The process-wide pool, created on first use. */
export function compressionPool(): CompressionPool {
  sharedPool ??= new CompressionPool({ size: sharedPoolSize });
  return sharedPool;
}

/**
 * Sets the size of the process-wide pool (default os.availableParallelism()). Takes effect when the
 * pool is next created: call it at start-up, or after shutdownCompressionPool().
 */
export function configureCompressionPool(options: CompressionPoolOptions): void {
  sharedPoolSize = options.size;
}

/** Terminates the process-wide pool's workers; the next compression creates a fresh pool. */
export async function shutdownCompressionPool(): Promise<void> {
  const pool = sharedPool;
  sharedPool = null;
  await pool?.shutdown();
}
