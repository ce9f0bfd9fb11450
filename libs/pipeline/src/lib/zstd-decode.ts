import path from 'node:path';
import { Duplex } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { IntegrityError } from '@rookery/core';
import { BufferPool } from './buffer-pool';
import { TransferBatcher } from './transfer-batcher';

const WORKER_PATH = path.join(__dirname, 'zstd-decode.worker.js');
/** Compressed bytes per message to the worker. */
const INPUT_BATCH_BYTES = 1024 * 1024;
/** Input batches sent and not yet decoded: the writable side waits beyond this. */
const MAX_INPUTS_IN_FLIGHT = 2;
/** Decoded 1 MiB buffers the worker may send before the readable side asks for more. */
const OUTPUT_CREDIT = 4;

type WorkerMessage = { output: ArrayBuffer; length: number } | { consumed: ArrayBuffer } | { done: true } | { error: string };

/**
 * zstd decompression in a worker thread, for the big streams of a restore: the main thread, which
 * also reads the store, verifies and writes to tar, only batches the compressed bytes (1 MiB
 * messages) and passes on the decoded ones (1 MiB buffers, transferred, not copied). Memory is
 * bounded on both sides: at most MAX_INPUTS_IN_FLIGHT input batches wait in the worker, and it
 * decodes only as far as OUTPUT_CREDIT buffers ahead of what the readable side has taken, so a
 * frame of empty pages that decodes to 1000× its size cannot pile up. Corrupt or truncated input
 * fails the stream with an IntegrityError naming the artifact.
 */
export class OffloadedZstdDecompressStream extends Duplex {
  private worker: Worker | null = null;
  private readonly batcher = new TransferBatcher(
    INPUT_BATCH_BYTES,
    (data, length) => {
      this.start().postMessage({ input: data, length }, [data]);
      this.inFlight++;
    },
    // Input batches the worker decoded come back: warm memory, not fresh pages for every MiB.
    () => this.spareInputs.take(),
  );
  private readonly spareInputs = new BufferPool(INPUT_BATCH_BYTES);
  private inFlight = 0;
  /** Credits owed to the worker because push() said the readable side was full. */
  private owed = 0;
  /** With recycling on: decoded buffers pushed downstream and not yet handed back (see recycle). */
  private lent: Set<ArrayBufferLike> | null = null;
  private recycled = 0;
  private resumeWrite: (() => void) | null = null;
  private finish: ((error?: Error | null) => void) | null = null;

  constructor(private readonly label: string) {
    super({ readableHighWaterMark: 4 * 1024 * 1024 });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.batcher.append(chunk);
    if (this.inFlight < MAX_INPUTS_IN_FLIGHT) return callback();
    this.resumeWrite = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.batcher.flush();
    this.finish = callback;
    this.start().postMessage({ end: true });
  }

  override _read(): void {
    if (this.owed === 0 || !this.worker) return;
    this.worker.postMessage({ credit: this.owed });
    this.owed = 0;
  }

  /**
   * Hands a pushed chunk's memory back to the worker, which decodes into it again: reused memory
   * instead of fresh pages for every MiB (their page faults cost more than the decoding itself). Only for a
   * chunk nothing downstream holds any more (ReleasingWriter says when); the chunk is unusable
   * after (its memory moved). Chunks that are not this stream's are ignored. Call
   * enableRecycling() before the first chunk is pushed.
   */
  recycle(chunk: Buffer): void {
    const memory = chunk.buffer;
    if (!this.lent?.delete(memory) || !this.worker || this.destroyed) return;
    this.worker.postMessage({ spare: memory }, [memory as ArrayBuffer]);
    this.recycled++;
  }

  /**
   * Tracks the buffers it pushes so recycle() can hand them back: only for a consumer that hands
   * back every one it was given (a stream that never does would keep them all alive here).
   */
  enableRecycling(): void {
    this.lent ??= new Set();
  }

  /** Decoded buffers handed back to the worker so far. */
  get recycledBuffers(): number {
    return this.recycled;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopWorker();
    this.batcher.discard();
    callback(error);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_PATH);
    worker.on('message', (message: WorkerMessage) => this.receive(message));
    worker.on('error', (error) => this.fail(error.message, error));
    worker.postMessage({ credit: OUTPUT_CREDIT });
    this.worker = worker;
    return worker;
  }

  /**
   * Asks the worker to exit between two decoder calls (see zstd-decode.worker.js for why not
   * terminate()); what it still sends is ignored, and it does not keep the process alive.
   */
  private stopWorker(): void {
    const worker = this.worker;
    this.worker = null;
    if (!worker) return;
    worker.removeAllListeners('message');
    worker.postMessage({ stop: true });
    worker.unref();
  }

  private receive(message: WorkerMessage): void {
    if (this.destroyed) return;
    if ('output' in message) {
      this.lent?.add(message.output);
      if (this.push(Buffer.from(message.output, 0, message.length))) this.worker?.postMessage({ credit: 1 });
      else this.owed++;
    } else if ('consumed' in message) {
      this.spareInputs.give(message.consumed);
      this.inFlight--;
      const resume = this.resumeWrite;
      this.resumeWrite = null;
      resume?.();
    } else if ('done' in message) {
      this.push(null);
      const finish = this.finish;
      this.finish = null;
      this.stopWorker();
      finish?.();
    } else {
      this.fail(message.error);
    }
  }

  private fail(reason: string, cause?: unknown): void {
    this.destroy(
      new IntegrityError(`cannot decompress artifact '${this.label}' (zstd): ${reason}`, {
        cause,
        hint: 'the stored bytes are damaged or not in this format; run rookery verify on the backup',
      }),
    );
  }
}
