import { createHash } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { InvariantError } from '@rookery/core';
import { BufferPool } from './buffer-pool';
import { TransferBatcher } from './transfer-batcher';

/**
 * A running SHA-256. `update` may return a promise: the caller must wait for it before the next
 * update (backpressure). `digest` resolves the hex digest once; the hasher is unusable after.
 */
export interface Sha256Hasher {
  update(chunk: Buffer): Promise<void> | undefined;
  digest(): Promise<string>;
  /** Releases resources without a digest (stream destroyed). */
  discard(): void;
}

export function createSha256Hasher(offload: boolean): Sha256Hasher {
  return offload ? new WorkerSha256Hasher() : new InlineSha256Hasher();
}

class InlineSha256Hasher implements Sha256Hasher {
  private readonly hash = createHash('sha256');

  update(chunk: Buffer): undefined {
    this.hash.update(chunk);
    return undefined;
  }

  async digest(): Promise<string> {
    return this.hash.digest('hex');
  }

  discard(): void {
    // Nothing held outside the heap.
  }
}

const WORKER_PATH = path.join(__dirname, 'hash.worker.js');
const BATCH_BYTES = 4 * 1024 * 1024;
const MAX_BATCHES_IN_FLIGHT = 4;

/**
 * Hashes in a worker thread so the main thread, which moves every byte of a backup or restore,
 * does not also spend its CPU on SHA-256. Bytes are copied into 4 MiB batches whose
 * memory is transferred to the worker and back (never copied again, and reused); at most
 * MAX_BATCHES_IN_FLIGHT are queued, so memory stays bounded when the worker falls behind. The worker sees batches in order, so the digest is
 * the plain SHA-256 of the whole stream, identical to an inline hash. The worker starts with the
 * first full batch: a stream shorter than one batch is hashed on the caller's thread at its end.
 */
class WorkerSha256Hasher implements Sha256Hasher {
  private worker: Worker | null = null;
  /** Batches the worker handed back: reused, so memory stays at MAX_BATCHES_IN_FLIGHT + 1 batches. */
  private readonly spare = new BufferPool(BATCH_BYTES);
  private readonly batcher = new TransferBatcher(
    BATCH_BYTES,
    (data, length) => this.send(data, length),
    () => this.spare.take(),
  );
  private inFlight = 0;
  private failure: Error | null = null;
  private drained: (() => void) | null = null;
  private digested: ((digest: string) => void) | null = null;

  update(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    this.batcher.append(chunk);
    if (this.inFlight < MAX_BATCHES_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.drained = resolve));
  }

  async digest(): Promise<string> {
    if (this.failure) throw this.failure;
    if (!this.worker) {
      // Less than one batch in all (a backup_manifest, a small dump): hashed here, in less time
      // than starting a worker takes (and that start would come at the end of the backup).
      const digest = createHash('sha256').update(this.batcher.pending()).digest('hex');
      this.discard();
      return digest;
    }
    this.batcher.flush();
    const worker = this.start();
    const digest = await new Promise<string>((resolve, reject) => {
      this.digested = resolve;
      worker.once('error', reject);
      worker.postMessage({ done: true });
    });
    this.discard();
    return digest;
  }

  discard(): void {
    void this.worker?.terminate();
    this.worker = null;
    this.batcher.discard();
    this.spare.clear();
  }

  private send(data: ArrayBuffer, length: number): void {
    this.start().postMessage({ data, length }, [data]);
    this.inFlight++;
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_PATH);
    worker.unref();
    worker.on('message', (message: { ack?: true; data?: ArrayBuffer; digest?: string }) => {
      if (message.ack) {
        this.inFlight--;
        if (message.data) this.spare.give(message.data);
        const drained = this.drained;
        this.drained = null;
        drained?.();
      } else if (message.digest) {
        this.digested?.(message.digest);
      }
    });
    worker.on('error', (error) => {
      this.failure = new InvariantError(`sha256 worker failed: ${error.message}`, { cause: error });
      this.drained?.();
    });
    this.worker = worker;
    return worker;
  }
}
