import { Transform, TransformCallback } from 'node:stream';
import { IntegrityError, InvariantError } from '@rookery/core';
import { Sha256Hasher, createSha256Hasher } from './sha256-hasher';

export interface DigestStreamOptions {
  /** Called after each chunk with the running byte count. */
  onProgress?: (bytes: number) => void;
  /** Hash in a worker thread (for the large logical streams) instead of on the caller's thread. */
  offload?: boolean;
}

/**
 * Passes bytes through unchanged while counting them and hashing them with SHA-256: the meter
 * at each end of the pipeline that fills an artifact's `bytes`/`sha256` in the manifest.
 */
export class DigestStream extends Transform {
  private readonly hasher: Sha256Hasher;
  private digest: string | null = null;
  private count = 0;

  constructor(private readonly options: DigestStreamOptions = {}) {
    super();
    this.hasher = createSha256Hasher(options.offload ?? false);
  }

  /** Bytes seen so far. */
  get bytes(): number {
    return this.count;
  }

  /** Hex SHA-256 of everything that passed; only once the stream has ended. */
  sha256(): string {
    if (this.digest === null) throw new InvariantError('sha256 of a digest stream read before the stream ended');
    return this.digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const backpressure = this.hasher.update(chunk);
    this.count += chunk.length;
    this.options.onProgress?.(this.count);
    if (!backpressure) return callback(null, chunk);
    backpressure.then(() => callback(null, chunk), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.hasher.digest().then((digest) => {
      this.digest = digest;
      callback();
    }, callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.hasher.discard();
    callback(error);
  }
}

export function createDigestStream(options: DigestStreamOptions = {}): DigestStream {
  return new DigestStream(options);
}

export interface VerifyStreamOptions {
  /** Expected hex SHA-256 of the bytes. */
  sha256: string;
  /** Expected byte count. */
  bytes: number;
  /** Artifact name for the error message. */
  label: string;
  /** Hash in a worker thread instead of on the caller's thread. */
  offload?: boolean;
}

/**
 * Passes bytes through and, when they end, fails with an IntegrityError if their size or SHA-256
 * differs from what the manifest recorded. Consumers must treat the output as unverified until
 * the stream finishes without error (a restore writes to a temporary place first).
 */
export function createVerifyStream(expected: VerifyStreamOptions): Transform {
  const hasher = createSha256Hasher(expected.offload ?? false);
  let count = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const backpressure = hasher.update(chunk);
      count += chunk.length;
      if (!backpressure) return callback(null, chunk);
      backpressure.then(() => callback(null, chunk), callback);
    },
    destroy(error, callback) {
      hasher.discard();
      callback(error);
    },
    flush(callback) {
      hasher.digest().then((actual) => verified(actual, callback), callback);
    },
  });

  function verified(actual: string, callback: TransformCallback): void {
    if (actual === expected.sha256.toLowerCase() && count === expected.bytes) return callback();
    const detail =
      count !== expected.bytes
        ? `expected ${expected.bytes} bytes, got ${count}`
        : `expected sha256 ${expected.sha256.toLowerCase()}, got ${actual}`;
    callback(
      new IntegrityError(`checksum mismatch for artifact '${expected.label}': ${detail}`, {
        hint: `the stored object differs from what the manifest recorded; run rookery verify on this backup to check its other artifacts`,
      }),
    );
  }
}
