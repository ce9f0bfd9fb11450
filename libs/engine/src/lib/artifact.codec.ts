import { Duplex, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ArtifactRecord,
  BackupManifest,
  CompressionSpec,
  EncryptionKeyError,
  RookeryError,
  Store,
  StorageClass,
  StorageUnavailableError,
  codecExtension,
  isKnockOnError,
  rootCauseOf,
  systemErrorDetail,
} from '@rookery/core';
import {
  OffloadedZstdDecompressStream,
  createCompressStream,
  createDecompressStream,
  createDecryptStream,
  createDigestStream,
  createEncryptStream,
  createVerifyStream,
  releasesChunks,
} from '@rookery/pipeline';
import { repositoryLayout } from '@rookery/repository';

/** How artifacts of one backup are encoded on their way into the store. */
export interface ArtifactEncoding {
  compression: CompressionSpec;
  workers?: number;
  chunkSize?: number;
  /** Physical base backups: let a PostgreSQL 15+ server compress the tar (config compression.location). */
  serverCompression?: boolean;
  /** Client-side AES-256-GCM key, or null for none (the store's SSE still applies). */
  key: { material: Buffer; id: string } | null;
}

/**
 * The key material that decrypts a backup's artifacts, or null when none is encrypted. Checked
 * before anything is fetched or written: no key, or a key with another fingerprint than the one
 * the backup was encrypted with, is an error that says which.
 */
export function keyMaterialFor(manifest: BackupManifest, key: ArtifactEncoding['key']): Buffer | null {
  const encrypted = manifest.artifacts.find((artifact) => artifact.encryption.algorithm !== 'none');
  if (!encrypted) return null;
  if (!key) {
    throw new EncryptionKeyError(`backup '${manifest.id}' is encrypted (key id ${encrypted.encryption.keyId}) and no encryption key is configured`, {
      hint: 'set encryption.keyFile in rookery.yaml or ROOKERY_ENCRYPTION_KEY',
    });
  }
  if (encrypted.encryption.keyId && encrypted.encryption.keyId !== key.id) {
    throw new EncryptionKeyError(
      `wrong encryption key for backup '${manifest.id}': it was encrypted with key id ${encrypted.encryption.keyId}, the configured key has id ${key.id}`,
    );
  }
  return key.material;
}

export function artifactFileName(base: string, encoding: ArtifactEncoding): string {
  return `${base}${codecExtension(encoding.compression.codec)}${encoding.key ? '.enc' : ''}`;
}

/**
 * Streams `source` into the store as one artifact: logical digest → compression (parallel
 * frames) → optional encryption → stored digest → atomic store write. Nothing is buffered whole;
 * the object becomes visible only when the store write completes, and the returned record
 * describes both the logical and the stored bytes.
 */
export async function writeArtifact(
  store: Store,
  key: string,
  source: Readable,
  options: {
    name: string;
    kind: ArtifactRecord['kind'];
    encoding: ArtifactEncoding;
    storageClass?: StorageClass;
    signal?: AbortSignal;
    onLogicalBytes?: (bytes: number) => void;
    /**
     * The source is already compressed (a base tar the server compressed): stored as it is, with
     * only the encryption applied. The record then has no logical sha256, and `bytes` counts the
     * source's bytes until the caller sets the uncompressed size it learns.
     */
    precompressed?: CompressionSpec;
    /** Told of each chunk the store no longer holds (WriteOptions.onWritten). */
    onWritten?: (chunk: Buffer) => void;
  },
): Promise<ArtifactRecord> {
  const { encoding, precompressed } = options;
  const stages: Duplex[] = [];
  let received = 0;
  // The logical stream is the big one: hash it off the main thread, which moves every byte.
  const logical = precompressed ? null : createDigestStream({ onProgress: options.onLogicalBytes, offload: true });
  if (logical) stages.push(logical);
  else stages.push(countBytes((bytes) => (received = bytes)));
  if (!precompressed && encoding.compression.codec !== 'none') {
    stages.push(
      createCompressStream(encoding.compression, { workers: encoding.workers || undefined, chunkSize: encoding.chunkSize }),
    );
  }
  if (encoding.key) stages.push(createEncryptStream(encoding.key.material));
  const stored = createDigestStream();
  stages.push(stored);

  // A failure on either side stops the other: the store's write is aborted when the pipeline
  // fails for a reason of its own, the pipeline torn down when the store fails. Both are waited
  // for (nothing is left half-written behind the rejection), and the failure that explains the
  // other is reported: the store's ENOSPC, not the pipeline's "operation was aborted" it caused,
  // even when that came first. A store that gives up destroys its stream, which fails the
  // pipeline with such an abort: aborting the store's write then would have it report our abort
  // instead of its ENOSPC.
  const teardown = new AbortController();
  const failures: unknown[] = [];
  let pipelineFailure: unknown;
  let storeFailure: unknown;
  const encoded = pipeline([source, ...stages], { signal: options.signal }).catch((error: unknown) => {
    failures.push(error);
    pipelineFailure = error;
    if (!isKnockOnError(error)) teardown.abort(error);
  });
  const written = store
    .write(key, stored, {
      storageClass: options.storageClass,
      signal: options.signal ? AbortSignal.any([options.signal, teardown.signal]) : teardown.signal,
      onWritten: options.onWritten,
    })
    .catch((error: unknown) => {
      failures.push(error);
      storeFailure = error;
      // Without an error: the pipeline's own rejection is then a knock-on (premature close).
      stored.destroy();
    });
  await Promise.all([encoded, written]);
  if (failures.length > 0) {
    const cause = rootCauseOf(failures);
    // The source's own failure (a tool, the database), which the store hands back as it got it,
    // names itself; the store's own gets the artifact, backup and store.
    throw cause === storeFailure && cause !== pipelineFailure ? artifactWriteError(store, key, options.name, cause) : cause;
  }

  return {
    name: options.name,
    kind: options.kind,
    bytes: logical ? logical.bytes : received,
    storedBytes: stored.bytes,
    sha256: stored.sha256(),
    ...(logical ? { logicalSha256: logical.sha256() } : {}),
    compression: precompressed ? { ...precompressed, location: 'server' } : { ...encoding.compression },
    encryption: encoding.key ? { algorithm: 'aes-256-gcm', keyId: encoding.key.id } : { algorithm: 'none' },
  };
}

/**
 * A store's failure to write an artifact, naming the artifact, its backup and the store:
 * "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to file:///backups: no
 * space left on device (ENOSPC)". Keeps the store error's code, family and retryable flag.
 */
export function artifactWriteError(store: Store, key: string, name: string, error: unknown): RookeryError {
  const backupId = repositoryLayout.backupIdOf(key);
  const detail = systemErrorDetail(error) ?? (typeof (error as Error)?.message === 'string' ? (error as Error).message : String(error));
  const message = `cannot write artifact '${name}'${backupId ? ` of backup ${backupId}` : ''} to ${store.description}: ${detail}`;
  const full = /\((ENOSPC|EDQUOT)\)$/.test(detail);
  const hint = full ? 'free space in the store (or expire old backups: rookery expire) and run the backup again' : undefined;
  if (error instanceof RookeryError) {
    return new RookeryError(error.code, error.family, message, { cause: error, hint: hint ?? error.hint, retryable: error.retryable && !full });
  }
  return new StorageUnavailableError(message, { cause: error, hint, retryable: !full });
}

/** Decoded size from which readArtifact decodes and hashes in worker threads. */
const OFFLOAD_MIN_BYTES = 16 * 1024 * 1024;

/**
 * Streams one artifact out of the store into `sink`, checking as it reads: the stored bytes
 * against the manifest's sha256 and size, the encryption's authentication tags, and the logical
 * bytes against their own sha256. The sink sees data before the end-of-stream checks complete,
 * so callers that write to disk must treat their output as untrusted until this resolves.
 */
export async function readArtifact(
  store: Store,
  manifest: BackupManifest,
  artifact: ArtifactRecord,
  key: string,
  sink: NodeJS.WritableStream,
  options: { keyMaterial: Buffer | null; signal?: AbortSignal; onStoredBytes?: (bytes: number) => void },
): Promise<void> {
  const label = `${artifact.name}`;
  // Worker threads for the big streams only: starting one costs more than decoding a small file.
  const offload = artifact.bytes >= OFFLOAD_MIN_BYTES;
  const stages: Duplex[] = [
    countBytes(options.onStoredBytes),
    createVerifyStream({ sha256: artifact.sha256, bytes: artifact.storedBytes, label }),
  ];
  if (artifact.encryption.algorithm === 'aes-256-gcm') {
    if (!options.keyMaterial) {
      throw new EncryptionKeyError(
        `backup '${manifest.id}' is encrypted (key id ${artifact.encryption.keyId}) and no encryption key is configured`,
        { hint: 'set encryption.keyFile in rookery.yaml or ROOKERY_ENCRYPTION_KEY' },
      );
    }
    stages.push(createDecryptStream(options.keyMaterial, { label }));
  }
  if (artifact.compression.codec !== 'none') {
    const decoder = createDecompressStream(artifact.compression, { label, offload });
    stages.push(decoder);
    // The decoder's buffers come back to it once the sink wrote them (the stages after it only
    // read them or copy them): reused memory instead of fresh pages for every decoded MiB.
    if (decoder instanceof OffloadedZstdDecompressStream && releasesChunks(sink)) {
      decoder.enableRecycling();
      sink.onRelease((chunk) => decoder.recycle(chunk));
    }
  }
  // A server-compressed tar has no logical sha256: its bytes are covered by the stored sha256.
  if (artifact.logicalSha256) {
    // The decoded stream is the big one (~7× the stored bytes): hash it off the main thread.
    stages.push(
      createVerifyStream({ sha256: artifact.logicalSha256, bytes: artifact.bytes, label: `${label} (decoded)`, offload }),
    );
  }

  await pipeline([await store.read(key, { signal: options.signal }), ...stages, sink], { signal: options.signal });
}

function countBytes(onProgress?: (bytes: number) => void): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      onProgress?.(bytes);
      callback(null, chunk);
    },
  });
}
