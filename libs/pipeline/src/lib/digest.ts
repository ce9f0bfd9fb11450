import { createHash, Hash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { IntegrityError, InvariantError } from '@rookery/core';

export interface DigestStreamOptions {
  /** Called after each chunk with the running byte count. */
  onProgress?: (bytes: number) => void;
}

/**
 * Passes bytes through unchanged while counting them and hashing them with SHA-256: the meter
 * at each end of the pipeline that fills an artifact's `bytes`/`sha256` in the manifest.
 */
export class DigestStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digest: string | null = null;
  private count = 0;

  constructor(private readonly options: DigestStreamOptions = {}) {
    super();
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
    this.hash.update(chunk);
    this.count += chunk.length;
    this.options.onProgress?.(this.count);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest('hex');
    callback();
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
}

/**
 * Passes bytes through and, when they end, fails with an IntegrityError if their size or SHA-256
 * differs from what the manifest recorded. Consumers must treat the output as unverified until
 * the stream finishes without error (a restore writes to a temporary place first).
 */
export function createVerifyStream(expected: VerifyStreamOptions): Transform {
  const hash = createHash('sha256');
  let count = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      count += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      const actual = hash.digest('hex');
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
    },
  });
}
