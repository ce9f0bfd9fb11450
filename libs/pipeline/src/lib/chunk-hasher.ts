import { createHash } from 'node:crypto';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { InvariantError } from '@rookery/core';
import { transferable } from './transferable';

/**
 * The SHA-256 of a file already in memory as chunks, computed while the chunks pass through:
 * `chunks[i]` resolves with the same bytes as input i (possibly a new Buffer over the same memory)
 * once they are hashed, `digest` with the hex digest of all of them in order and the number of
 * bytes hashed. Takes over the chunks' memory (like FrameCompressor.compress): the caller uses the
 * returned Buffers, never the ones it passed.
 */
export interface ChunkHasher {
  hash(chunks: readonly Buffer[]): HashedChunks;
}

export interface HashedChunks {
  chunks: Promise<Buffer>[];
  digest: Promise<{ sha256: string; bytes: number }>;
}

/** Hashes in the calling thread: for a one-shot process, where a worker thread costs more than it saves. */
export class InlineChunkHasher implements ChunkHasher {
  hash(chunks: readonly Buffer[]): HashedChunks {
    const hash = createHash('sha256');
    let bytes = 0;
    for (const chunk of chunks) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { chunks: chunks.map((chunk) => Promise.resolve(chunk)), digest: Promise.resolve({ sha256: hash.digest('hex'), bytes }) };
  }
}

const WORKER_PATH = path.join(__dirname, 'hash.worker.js');

interface Running {
  acks: { resolve: (chunk: Buffer) => void; reject: (error: Error) => void; offset: number; length: number }[];
  done: { resolve: (digest: { sha256: string; bytes: number }) => void; reject: (error: Error) => void };
}

type Reply = { ack: true; id: number; data: ArrayBuffer } | { id: number; digest: string; bytes: number };

/**
 * Hashes in one long-lived worker thread (hash.worker.js), so that a process moving many files
 * (the background archiver: a SHA-256 of every 16 MiB WAL segment) keeps its main thread for
 * orchestration. Each chunk's memory is transferred to the worker and back, never copied (a chunk
 * that shares its ArrayBuffer with others is copied once). Several files may be hashed at once;
 * the worker keeps a digest per file. Idle, the worker does not keep the process alive.
 */
export class WorkerChunkHasher implements ChunkHasher {
  private worker: Worker | null = null;
  private readonly running = new Map<number, Running>();
  private nextId = 1;

  hash(chunks: readonly Buffer[]): HashedChunks {
    const id = this.nextId++;
    const worker = this.start();
    const acks: Running['acks'] = [];
    const returned = chunks.map(
      (chunk) =>
        new Promise<Buffer>((resolve, reject) => {
          const { buffer, byteOffset, byteLength } = transferable(chunk);
          acks.push({ resolve, reject, offset: byteOffset, length: byteLength });
          worker.postMessage({ id, data: buffer, offset: byteOffset, length: byteLength }, [buffer]);
        }),
    );
    const digest = new Promise<{ sha256: string; bytes: number }>((resolve, reject) => {
      this.running.set(id, { acks, done: { resolve, reject } });
      worker.postMessage({ id, done: true });
    });
    worker.ref();
    return { chunks: returned, digest };
  }

  async shutdown(): Promise<void> {
    const worker = this.worker;
    this.fail(new InvariantError('the sha256 worker was shut down while hashing'));
    await worker?.terminate();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_PATH);
    worker.unref();
    worker.on('message', (reply: Reply) => this.settle(reply));
    worker.on('error', (error) => this.fail(new InvariantError(`sha256 worker failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => this.fail(new InvariantError(`sha256 worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: Reply): void {
    const entry = this.running.get(reply.id);
    if (!entry) return;
    if ('ack' in reply) {
      const ack = entry.acks.shift();
      ack?.resolve(Buffer.from(reply.data, ack.offset, ack.length));
      return;
    }
    this.running.delete(reply.id);
    entry.done.resolve({ sha256: reply.digest, bytes: reply.bytes });
    if (this.running.size === 0) this.worker?.unref();
  }

  /** Fails everything in flight; the next hash starts a fresh worker. */
  private fail(error: Error): void {
    const worker = this.worker;
    this.worker = null;
    void worker?.terminate();
    for (const entry of this.running.values()) {
      for (const ack of entry.acks.splice(0)) ack.reject(error);
      entry.done.reject(error);
    }
    this.running.clear();
  }
}

let sharedHasher: WorkerChunkHasher | null = null;

/** The process-wide worker chunk hasher, created on first use. */
export function chunkHasher(): WorkerChunkHasher {
  sharedHasher ??= new WorkerChunkHasher();
  return sharedHasher;
}

/** Terminates the process-wide hasher's worker; the next hash starts a fresh one. */
export async function shutdownChunkHasher(): Promise<void> {
  const hasher = sharedHasher;
  sharedHasher = null;
  await hasher?.shutdown();
}
