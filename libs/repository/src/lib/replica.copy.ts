import { createHash } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { IntegrityError, RookeryError, StorageClass, Store } from '@rookery/core';

/** What one verified copy moved: the bytes as they arrived in the destination. */
export interface CopiedObject {
  key: string;
  bytes: number;
  sha256: string;
}

export interface CopyOptions {
  /** sha256 the source bytes must have (the manifest's, or a WAL key's for raw WAL); absent: trust the source. */
  expectedSha256?: string;
  storageClass?: StorageClass;
  signal?: AbortSignal;
}

/**
 * Copies one object between two stores of any kind (file↔file, s3↔s3, file↔s3) as a stream: the
 * bytes flow from the source's read to the destination's write through a hash, never through a
 * local temporary copy. Then the destination is re-read and hashed: a copy counts only when what
 * the destination now returns is what the source held (and what the manifest says, when given).
 * A source that does not match `expectedSha256` is not propagated: its copy is removed.
 */
export async function copyVerified(source: Store, destination: Store, key: string, options: CopyOptions = {}): Promise<CopiedObject> {
  const hashing = new HashingStream();
  const input = await source.read(key, { signal: options.signal });
  input.on('error', (error) => hashing.destroy(error));
  await destination.write(key, input.pipe(hashing), { storageClass: options.storageClass, signal: options.signal });
  const sent = hashing.digest();
  if (options.expectedSha256 && sent.sha256 !== options.expectedSha256) {
    await destination.remove(key);
    throw new IntegrityError(
      `object '${key}' in ${source.description} has sha256 ${sent.sha256}, expected ${options.expectedSha256}: not copied`,
      {
        hint: 'the source copy is damaged; run rookery verify on it',
      },
    );
  }
  const arrived = await hashObject(destination, key, options.signal);
  if (arrived.sha256 !== sent.sha256 || arrived.bytes !== sent.bytes) {
    throw new IntegrityError(
      `copy of object '${key}' in ${destination.description} reads back as ${arrived.bytes} bytes with sha256 ${arrived.sha256}, sent ${sent.bytes} bytes with ${sent.sha256}`,
      { retryable: true, hint: 'the copy was damaged on the way or in the destination; rookery replicate copies it again' },
    );
  }
  return { key, ...arrived };
}

/** sha256 and length of an object as the store returns it now. */
export async function hashObject(store: Store, key: string, signal?: AbortSignal): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await store.read(key, { signal })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest('hex') };
}

class HashingStream extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }

  digest(): { bytes: number; sha256: string } {
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }
}

/** A failure of one copy, in the core taxonomy (anything unexpected counts as retryable). */
export function asRookeryError(error: unknown): RookeryError {
  if (error instanceof RookeryError) return error;
  return new RookeryError('REPLICATION_FAILED', 'storage', error instanceof Error ? error.message : String(error), {
    cause: error,
    retryable: true,
  });
}
