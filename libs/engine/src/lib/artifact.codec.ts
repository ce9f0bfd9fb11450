import type { RookeryConfig } from '@rookery/config';
import { Duplex, Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  ArtifactRecord,
  BackupManifest,
  CompressionSpec,
  EncryptionKeyError,
  IntegrityError,
  RookeryError,
  RestoreTargetError,
  Store,
  StorageClass,
  StorageUnavailableError,
  ToolFailedError,
  codecExtension,
  hasStoreFeature,
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
  objectBinding,
  releasesChunks,
} from '@rookery/pipeline';
import { repositoryLayout } from '@rookery/repository';
import { WalEncoding, encryptionRequired, walEncodingFor } from '@rookery/wal';

/**
 * How artifacts of one backup are encoded on their way into the store: as WAL files are (codec,
 * level, chunk size, key, whether unencrypted objects are refused), plus the compression workers
 * and where a base backup is compressed. encryptionRequired (@rookery/wal) reads it.
 */
export interface ArtifactEncoding extends WalEncoding {
  workers?: number;
  /** Physical base backups: let a PostgreSQL 15+ server compress the tar (config compression.location). */
  serverCompression?: boolean;
}

/** How artifacts are encoded under this configuration (see ArtifactEncoding). */
export function artifactEncodingFor(config: RookeryConfig): ArtifactEncoding {
  return { ...walEncodingFor(config), workers: config.compression.workers, serverCompression: config.compression.location === 'server' };
}

/**
 * Refuses an artifact that is not encrypted when the repository requires encryption: what
 * decides is the configuration, never the manifest, which whoever can write the repository can
 * write too.
 */
export function assertArtifactEncrypted(manifest: Pick<BackupManifest, 'id'>, artifact: ArtifactRecord, required: boolean): void {
  const refusal = encryptionRefusal(manifest, artifact, required);
  if (refusal) throw refusal;
}

/** The IntegrityError assertArtifactEncrypted throws, or null when the artifact may be read. */
export function encryptionRefusal(
  manifest: Pick<BackupManifest, 'id'>,
  artifact: ArtifactRecord,
  required: boolean,
): IntegrityError | null {
  if (!required || artifact.encryption.algorithm !== 'none') return null;
  return new IntegrityError(
    `artifact '${artifact.name}' of backup ${manifest.id} is not encrypted, and this repository requires encryption`,
    {
      hint: 'a plaintext object where an encrypted one belongs was put there by hand or by an attacker; do not restore it. Set encryption.required: false only while reading backups taken before encryption was turned on',
    },
  );
}

/** The associated data an artifact is encrypted with: its backup's tier and id, and its name. */
export function artifactBinding(manifest: Pick<BackupManifest, 'tier' | 'id'>, name: string): string {
  return objectBinding({ kind: 'artifact', tier: manifest.tier, backupId: manifest.id, name });
}

/**
 * The key material that decrypts a backup's artifacts, or null when none is encrypted. Checked
 * before anything is fetched or written: no key, or a key with another fingerprint than the one
 * the backup was encrypted with, is an error that says which.
 */
export function keyMaterialFor(manifest: BackupManifest, encoding: Pick<ArtifactEncoding, 'key' | 'requireEncryption'>): Buffer | null {
  const { key } = encoding;
  for (const artifact of manifest.artifacts) assertArtifactEncrypted(manifest, artifact, encryptionRequired(encoding));
  const encrypted = manifest.artifacts.find((artifact) => artifact.encryption.algorithm !== 'none');
  if (!encrypted) return null;
  if (!key) {
    throw new EncryptionKeyError(
      `backup '${manifest.id}' is encrypted (key id ${encrypted.encryption.keyId}) and no encryption key is configured`,
      {
        hint: 'set encryption.keyFile in rookery.yaml or ROOKERY_ENCRYPTION_KEY',
      },
    );
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
    /** The backup the artifact belongs to: an encrypted artifact is bound to its tier, id and name. */
    backup: Pick<BackupManifest, 'tier' | 'id'>;
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
    /**
     * Told of each chunk the store no longer holds (CompletingWriteOptions.onWritten), by a store
     * with write-completion hooks; with any other store the chunks are left to the garbage collector.
     */
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
    stages.push(createCompressStream(encoding.compression, { workers: encoding.workers || undefined, chunkSize: encoding.chunkSize }));
  }
  if (encoding.key) stages.push(createEncryptStream(encoding.key.material, { binding: artifactBinding(options.backup, options.name) }));
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
  const writeOptions = {
    storageClass: options.storageClass,
    signal: options.signal ? AbortSignal.any([options.signal, teardown.signal]) : teardown.signal,
  };
  const written = (
    options.onWritten && hasStoreFeature(store, 'writeCompletion')
      ? store.write(key, stored, { ...writeOptions, onWritten: options.onWritten })
      : store.write(key, stored, writeOptions)
  ).catch((error: unknown) => {
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
    encryption: encoding.key ? { algorithm: 'aes-256-gcm', keyId: encoding.key.id, bound: true } : { algorithm: 'none' },
  };
}

/**
 * A store's failure to write an artifact, naming the artifact, its backup and the store:
 * "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to file:///backups: no
 * space left on device (ENOSPC)". Keeps the store error's code, family and retryable flag.
 */
export function artifactWriteError(store: Store, key: string, name: string, error: unknown): RookeryError {
  return storeError(`cannot write artifact '${name}'${ofBackup(repositoryLayout.backupIdOf(key))} to ${store.description}`, error, {
    full: 'free space in the store (or expire old backups: rookery expire) and run the backup again',
  });
}

/**
 * A store's failure to hand an artifact over (its read gave up after its resume attempts, the
 * GET failed): "cannot read artifact 'base.tar.zst' of backup 20261206T010000Z-oltp from
 * s3://bucket/prefix: connection reset by peer (ECONNRESET)". Keeps the store error's code,
 * family and retryable flag.
 */
export function artifactReadError(store: Store, key: string, name: string, error: unknown): RookeryError {
  return storeError(`cannot read artifact '${name}'${ofBackup(repositoryLayout.backupIdOf(key))} from ${store.description}`, error, {});
}

/**
 * A failure to write an artifact's bytes where they were read to (a data directory, a staging
 * directory) that a system error explains: "cannot write artifact 'base.tar.zst' of backup … into
 * /var/lib/postgresql/16/main: no space left on device (ENOSPC)"; null for any other failure.
 */
export function artifactTargetError(
  manifest: Pick<BackupManifest, 'id'>,
  name: string,
  target: string,
  error: unknown,
): RookeryError | null {
  const detail = systemErrorDetail(error);
  if (!detail) return null;
  const full = /\((ENOSPC|EDQUOT)\)$/.test(detail);
  return new RestoreTargetError(`cannot write artifact '${name}'${ofBackup(manifest.id)} into ${target}: ${detail}`, {
    cause: error,
    hint: full ? `free space under ${target} (or restore elsewhere) and run the command again` : undefined,
  });
}

function ofBackup(backupId: string | null | undefined): string {
  return backupId ? ` of backup ${backupId}` : '';
}

function storeError(message: string, error: unknown, hints: { full?: string }): RookeryError {
  const detail = systemErrorDetail(error) ?? (typeof (error as Error)?.message === 'string' ? (error as Error).message : String(error));
  const full = /\((ENOSPC|EDQUOT)\)$/.test(detail);
  const hint = full ? hints.full : undefined;
  if (error instanceof RookeryError) {
    return new RookeryError(error.code, error.family, `${message}: ${detail}`, {
      cause: error,
      hint: hint ?? error.hint,
      retryable: error.retryable && !full,
    });
  }
  return new StorageUnavailableError(`${message}: ${detail}`, { cause: error, hint, retryable: !full });
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
  options: ReadArtifactOptions,
): Promise<void> {
  const label = `${artifact.name}`;
  assertArtifactEncrypted(manifest, artifact, options.requireEncryption);
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
    stages.push(
      createDecryptStream(options.keyMaterial, {
        subject: `artifact '${artifact.name}'${ofBackup(manifest.id)}`,
        binding: artifactBinding(manifest, artifact.name),
        // Recorded as bound: an unbound (RKYENC01) object in its place was put there.
        acceptUnbound: artifact.encryption.bound !== true,
      }),
    );
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
  if (artifact.logicalSha256 && !options.decodedCheckedByCaller) {
    // The decoded stream is the big one (~7× the stored bytes): hash it off the main thread.
    stages.push(createVerifyStream({ sha256: artifact.logicalSha256, bytes: artifact.bytes, label: `${label} (decoded)`, offload }));
  }

  // Every stream's failure is heard in the order they came, and the one that explains the
  // others is reported, named by where it happened: the store's reset or the target's ENOSPC,
  // not the abort a stage got because of it.
  let source: Readable;
  try {
    source = await store.read(key, { signal: options.signal });
  } catch (error) {
    throw options.signal?.aborted && error === options.signal.reason ? error : artifactReadError(store, key, artifact.name, error);
  }
  // Which stream an error came from: the first that emitted it (the pipeline then destroys the
  // others with the same error).
  const origins = new Map<unknown, unknown>();
  const streams: unknown[] = [source, ...stages, sink];
  for (const stream of streams) {
    (stream as Readable).once('error', (error: unknown) => {
      if (!origins.has(error)) origins.set(error, stream);
    });
  }
  try {
    await pipeline([source, ...stages, sink], { signal: options.signal });
  } catch (error) {
    const cause = rootCauseOf([...origins.keys(), error]);
    if (origins.get(cause) === source) throw artifactReadError(store, key, artifact.name, cause);
    if (origins.get(cause) === sink && options.target) throw artifactTargetError(manifest, artifact.name, options.target, cause) ?? cause;
    throw cause;
  }
}

export interface ReadArtifactOptions {
  keyMaterial: Buffer | null;
  /** Refuse an artifact the manifest records as not encrypted (encryptionRequired of the encoding). */
  requireEncryption: boolean;
  signal?: AbortSignal;
  onStoredBytes?: (bytes: number) => void;
  /** Where the sink writes (a data directory, a staging directory): names the place in a failure to write there. */
  target?: string;
  /**
   * The caller checks the decoded bytes itself against a digest of their own format that covers
   * every byte (an incremental's trailer SHA-256, which readIncremental checks at its end): the
   * manifest's logical sha256 is then not computed a second time. The stored bytes are still
   * checked against the manifest's sha256, so the decoded ones are what the backup wrote.
   */
  decodedCheckedByCaller?: boolean;
}

/** What an artifact is read into when it has an outcome of its own: tar extracting, pg_restore, a listing. */
export interface ArtifactConsumer<T> {
  sink: Writable;
  result: Promise<T>;
  /** Stops the consumer after the read failed. */
  abort(reason: Error): void;
}

/**
 * readArtifact into a consumer with an outcome of its own. Both sides are waited for, and the
 * failure that explains the other is reported: tar's "No space left on device" rather than the
 * broken pipe its death left the read with, the store's reset rather than the consumer's abort.
 */
export async function readArtifactInto<T>(
  store: Store,
  manifest: BackupManifest,
  artifact: ArtifactRecord,
  key: string,
  consumer: ArtifactConsumer<T>,
  options: ReadArtifactOptions,
): Promise<T> {
  // Refused before a byte is read: the consumer, already started, is stopped and not waited for.
  const refusal = encryptionRefusal(manifest, artifact, options.requireEncryption);
  if (refusal) {
    consumer.abort(refusal);
    consumer.result.catch(() => undefined);
    throw refusal;
  }
  const failures: unknown[] = [];
  const read = readArtifact(store, manifest, artifact, key, consumer.sink, options).catch((error: unknown) => {
    failures.push(error);
    consumer.abort(error instanceof Error ? error : new Error(String(error)));
  });
  let consumerFailure: unknown;
  const consumed = consumer.result.catch((error: unknown) => {
    failures.push(error);
    consumerFailure = error;
    return undefined;
  });
  const [, value] = await Promise.all([read, consumed]);
  if (failures.length === 0) return value as T;
  const integrity = failures.find((failure) => failure instanceof IntegrityError);
  if (integrity) throw integrity;
  const cause = rootCauseOf(failures);
  if (cause === consumerFailure && cause instanceof ToolFailedError) {
    // A tool that failed on what it was fed may have failed on damaged bytes before the read got
    // to the check that would have said so (a frame's checksum, the artifact's sha256 at its end),
    // and then stopped the read. Whether the artifact is sound decides which failure explains the
    // other: re-read it to the end, into nothing, with every check.
    const damaged = await readArtifact(store, manifest, artifact, key, discard(), {
      keyMaterial: options.keyMaterial,
      requireEncryption: options.requireEncryption,
      signal: options.signal,
    }).then(
      () => null,
      (error: unknown) => (error instanceof IntegrityError ? error : null),
    );
    if (damaged) throw damaged;
  }
  if (cause === consumerFailure && options.target) throw artifactTargetError(manifest, artifact.name, options.target, cause) ?? cause;
  throw cause;
}

/** A sink that drops what it is given (a read for its checks alone). */
function discard(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
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
