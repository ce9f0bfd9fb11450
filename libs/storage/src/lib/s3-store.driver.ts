import { randomBytes } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectCommandOutput,
  GetObjectLockConfigurationCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  HeadObjectCommandOutput,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommandInput,
  PutObjectRetentionCommand,
  RestoreObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import {
  ConfigError,
  IntegrityError,
  ObjectInfo,
  ObjectLockSupport,
  ObjectLocking,
  ObjectRestoreState,
  ObjectRetention,
  ReadOptions,
  RequestOptions,
  RestoreRequestOptions,
  RestoreRequestOutcome,
  StorageClass,
  StorageClasses,
  StorageUnsupportedError,
  isArchiveStorageClass,
  storageClassColdness,
  RookeryError,
  Store,
  StoreFeatures,
  StorageAccessDeniedError,
  StorageConflictError,
  StorageNotFoundError,
  StorageUnavailableError,
  WriteOptions,
} from '@rookery/core';
import { ResumableBody, TruncatedBodyError } from './resumable-body';
import { assertStoreKey, assertStorePrefix } from './store-key';
import { S3StoreConfig } from './s3-store.config';
import { WriteSource } from './write-source';

export * from './s3-store.config';

const MIN_PART_SIZE = 5 * 1024 * 1024;
/** CopyObject copies at most 5 GiB; larger objects are copied part by part (UploadPartCopy). */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * 1024 * 1024;
/** Parts of a multipart copy: 1 GiB (≤ 10,000 parts covers S3's 5 TiB object limit). */
const COPY_PART_BYTES = 1024 * 1024 * 1024;
const PROBE_PREFIX = '.rookery-probe/';

/** The SDK client for a store config; exported so tests can instrument the exact same client. */
export function createS3Client(config: S3StoreConfig): S3Client {
  const checksum = config.checksum === 'when_supported' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED';
  return new S3Client({
    region: config.region ?? (config.endpoint ? 'us-east-1' : undefined),
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    credentials: config.credentials,
    maxAttempts: config.maxAttempts,
    requestChecksumCalculation: checksum,
    responseChecksumValidation: checksum,
    // Without throwOnRequestTimeout the handler only logs a breached requestTimeout, and without
    // socketTimeout a server that stops answering holds a request forever.
    requestHandler: {
      connectionTimeout: config.connectTimeoutMs,
      socketTimeout: config.socketTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

/**
 * A store in an S3 bucket under a prefix. A write is a lib-storage multipart upload (parts in
 * parallel; one PutObject when the body fits in one part): S3 makes the object visible only when
 * the upload completes, and a failed or aborted write aborts the multipart upload. Every write asks
 * for server-side encryption and carries the requested storage class. It has the storage classes
 * and object lock capabilities of the port, not its write-completion hooks.
 */
export class S3StoreDriver implements Store, StorageClasses, ObjectLocking {
  readonly features: StoreFeatures;
  readonly description: string;
  private readonly client: S3Client;
  private lockSupport?: Promise<ObjectLockSupport>;

  constructor(
    private readonly config: S3StoreConfig,
    dependencies: { client?: S3Client } = {},
  ) {
    if (config.partSize < MIN_PART_SIZE) {
      throw new ConfigError(`s3 part size ${config.partSize} for bucket '${config.bucket}' is below the 5 MiB minimum`);
    }
    if (config.queueSize < 1) {
      throw new ConfigError(`s3 queue size ${config.queueSize} for bucket '${config.bucket}' must be at least 1`);
    }
    this.client = dependencies.client ?? createS3Client(config);
    this.features = Object.freeze({
      conditionalCreate: config.conditionalCreate,
      serverSideEncryption: true,
      storageClasses: true,
      // Whether the bucket locks is its configuration's answer (objectLock()), asked when needed.
      objectLock: true,
      // lib-storage keeps a part's chunks until the part is sent: it cannot tell when one is free.
      writeCompletion: false,
    });
    const where = [config.region && `region ${config.region}`, config.endpoint && `endpoint ${config.endpoint}`].filter(Boolean).join(', ');
    this.description = `s3://${config.bucket}/${config.prefix}${where ? ` (${where})` : ''}`;
  }

  async check(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.config.bucket }));
    } catch (error) {
      throw this.translate(error, 'check');
    }
    const probe = `${PROBE_PREFIX}${randomBytes(6).toString('hex')}`;
    await this.write(probe, Buffer.from('rookery store probe\n'));
    await this.remove(probe);
  }

  async stat(key: string, options: RequestOptions = {}): Promise<ObjectInfo | null> {
    assertStoreKey(key);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }), {
        abortSignal: options.signal,
      });
      return {
        key,
        size: head.ContentLength ?? 0,
        modifiedAt: head.LastModified ?? new Date(0),
        storageClass: head.StorageClass ?? 'STANDARD',
        restore: parseRestoreHeader(head.Restore),
        retention: retentionOf(head),
      };
    } catch (error) {
      if (statusOf(error) === 404 && !isNoSuchBucket(error)) return null;
      throw this.translate(error, `stat of object '${key}'`, key);
    }
  }

  async *list(prefix: string, options: RequestOptions = {}): AsyncIterable<ObjectInfo> {
    assertStorePrefix(prefix);
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.config.bucket,
            Prefix: this.fullKey(prefix),
            ContinuationToken: continuationToken,
          }),
          { abortSignal: options.signal },
        );
      } catch (error) {
        throw this.translate(error, `list of prefix '${prefix}'`);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue;
        yield {
          key: this.relativeKey(object.Key),
          size: object.Size ?? 0,
          modifiedAt: object.LastModified ?? new Date(0),
          storageClass: object.StorageClass ?? 'STANDARD',
        };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }

  /**
   * The object's bytes as one stream. The SDK retries the GET itself; a body that fails mid-stream
   * (a reset, a socket timeout) is resumed with a ranged GET from the byte where it stopped,
   * conditional on the first answer's ETag, so a changed object fails the read instead of
   * splicing two versions.
   */
  async read(key: string, options: ReadOptions = {}): Promise<Readable> {
    assertStoreKey(key);
    let object: GetObjectCommandOutput;
    try {
      object = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }), {
        abortSignal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw this.translate(error, `read of object '${key}'`, key);
    }
    const first = object.Body as Readable;
    const etag = object.ETag;
    const length = object.ContentLength;
    let body: Readable = first;
    if (etag) {
      body = new ResumableBody(first, {
        length,
        maxAttempts: this.config.maxAttempts,
        isResumable: isResumableReadError,
        reopen: (start) => this.readFrom(key, start, etag, options.signal),
        failure: (error, position, attempts) =>
          this.translate(
            error,
            `read of object '${key}' (stopped at byte ${position}${length === undefined ? '' : ` of ${length}`}, ${attempts} attempt${attempts === 1 ? '' : 's'} in a row)`,
            key,
          ),
      });
    }
    if (options.signal) addAbortSignal(options.signal, body);
    return body;
  }

  async write(key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectInfo> {
    assertStoreKey(key);
    options.signal?.throwIfAborted();
    const Key = this.fullKey(key);
    if (options.ifAbsent && (await this.stat(key))) {
      // Best effort when the server does not enforce If-None-Match; a race is caught only there.
      throw new StorageConflictError(key);
    }
    const source = WriteSource.of(body, options.signal, options.onProgress);
    const params: PutObjectCommandInput = {
      Bucket: this.config.bucket,
      Key,
      Body: source.stream,
      ServerSideEncryption: this.config.sse,
      SSEKMSKeyId: this.config.sse === 'aws:kms' ? this.config.kmsKeyId : undefined,
      StorageClass: options.storageClass,
      // Sent on PutObject and CompleteMultipartUpload; the server enforces it atomically if it can.
      IfNoneMatch: options.ifAbsent ? '*' : undefined,
    };
    // Abort and source errors travel through the body stream: lib-storage then aborts the
    // multipart upload before done() rejects (its own abort() would reject before cleaning up).
    const upload = new Upload({
      client: this.client,
      params,
      partSize: this.config.partSize,
      queueSize: this.config.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (error) {
      source.release();
      const callerFailure = source.callerFailure();
      if (callerFailure) throw callerFailure.error;
      throw this.translate(error, `write of object '${key}'`, key);
    }
    const info = await this.stat(key);
    return info ?? { key, size: source.bytesRead, modifiedAt: new Date(), storageClass: options.storageClass };
  }

  async remove(key: string, options: RequestOptions = {}): Promise<void> {
    assertStoreKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key) }), {
        abortSignal: options.signal,
      });
    } catch (error) {
      if (statusOf(error) === 404 && !isNoSuchBucket(error)) return;
      throw this.translate(error, `remove of object '${key}'`, key);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** Multipart uploads begun under `prefix` and neither completed nor aborted (each holds its parts' bytes). */
  async incompleteUploads(prefix = ''): Promise<{ key: string; uploadId: string; initiated?: Date }[]> {
    assertStorePrefix(prefix);
    const found: { key: string; uploadId: string; initiated?: Date }[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.config.bucket,
            Prefix: this.fullKey(prefix),
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (error) {
        throw this.translate(error, `list of multipart uploads under prefix '${prefix}'`);
      }
      for (const upload of page.Uploads ?? []) {
        if (upload.Key && upload.UploadId)
          found.push({ key: this.relativeKey(upload.Key), uploadId: upload.UploadId, initiated: upload.Initiated });
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return found;
  }

  /**
   * Object Lock needs the bucket to have it enabled (at creation, with versioning). A server that
   * answers the configuration request without `ObjectLockEnabled: Enabled` (S3Proxy 2.6 answers an
   * empty one) or refuses it does not lock, and we say which.
   */
  objectLock(): Promise<ObjectLockSupport> {
    this.lockSupport ??= this.probeObjectLock();
    return this.lockSupport;
  }

  async retain(key: string, until: Date): Promise<void> {
    assertStoreKey(key);
    const support = await this.objectLock();
    if (!support.supported) throw new StorageUnsupportedError(`cannot lock object '${key}': ${support.detail}`);
    const current = (await this.stat(key))?.retention;
    // COMPLIANCE retention can only be extended; asking for less would be refused by S3.
    if (current?.mode === 'COMPLIANCE' && current.retainUntil >= until) return;
    try {
      await this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.config.bucket,
          Key: this.fullKey(key),
          Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until },
        }),
      );
    } catch (error) {
      throw this.translate(error, `retention of object '${key}'`, key);
    }
  }

  /**
   * A copy of the object onto itself with the new class (S3's documented way; lifecycle rules are
   * the bucket-side alternative). CopyObject up to 5 GiB, a multipart copy above. Some
   * S3-compatible servers refuse a self-copy or ignore the class on CopyObject (S3Proxy 2.6 does
   * both): the class is checked afterwards and the multipart copy tried before giving up.
   */
  async changeStorageClass(key: string, storageClass: StorageClass): Promise<ObjectInfo> {
    assertStoreKey(key);
    const before = await this.stat(key);
    if (!before) throw new StorageNotFoundError(key);
    if (sameClass(before.storageClass, storageClass)) return before;
    if (before.size <= MAX_SINGLE_COPY_BYTES) {
      const copied = await this.copyOntoItself(key, storageClass, before).catch((error: unknown) => {
        if (statusOf(error) === 400 || statusOf(error) === 501) return false;
        throw this.translate(error, `storage class change of object '${key}'`, key);
      });
      if (copied) {
        const after = await this.stat(key);
        if (after && classReached(after.storageClass, storageClass)) return after;
      }
    }
    await this.multipartCopyOntoItself(key, storageClass, before);
    const after = await this.stat(key);
    if (!after || !classReached(after.storageClass, storageClass)) {
      throw new StorageUnsupportedError(
        `the server kept object '${key}' in ${after?.storageClass ?? 'an unknown class'} when asked for ${storageClass}`,
        { hint: 'this S3-compatible server does not implement storage class changes; use a lifecycle rule on AWS S3' },
      );
    }
    return after;
  }

  async isReadable(key: string): Promise<boolean> {
    assertStoreKey(key);
    try {
      const object = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key), Range: 'bytes=0-0' }),
      );
      (object.Body as Readable | undefined)?.destroy();
      return true;
    } catch (error) {
      if (errorName(error) === 'InvalidObjectState') return false;
      throw this.translate(error, `read of object '${key}'`, key);
    }
  }

  async requestRestore(key: string, options: RestoreRequestOptions): Promise<RestoreRequestOutcome> {
    assertStoreKey(key);
    try {
      await this.client.send(
        new RestoreObjectCommand({
          Bucket: this.config.bucket,
          Key: this.fullKey(key),
          RestoreRequest: { Days: options.days, GlacierJobParameters: { Tier: options.tier } },
        }),
      );
      return 'started';
    } catch (error) {
      const name = errorName(error);
      if (name === 'RestoreAlreadyInProgress' || statusOf(error) === 409) return 'in-progress';
      if (name === 'InvalidObjectState') return 'not-needed';
      if (statusOf(error) === 501 || name === 'NotImplemented') {
        throw new StorageUnsupportedError(
          `the server at ${this.config.endpoint ?? 'aws s3'} does not implement archive restores (restore of object '${key}')`,
          {
            cause: error,
          },
        );
      }
      throw this.translate(error, `restore request of object '${key}'`, key);
    }
  }

  /** The rest of a read from byte `start`, only while the object is still the version with `etag`. */
  private async readFrom(key: string, start: number, etag: string, signal: AbortSignal | undefined): Promise<Readable> {
    let part: GetObjectCommandOutput;
    try {
      part = await this.client.send(
        new GetObjectCommand({ Bucket: this.config.bucket, Key: this.fullKey(key), Range: `bytes=${start}-`, IfMatch: etag }),
        { abortSignal: signal },
      );
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (statusOf(error) === 412 || errorName(error) === 'PreconditionFailed') {
        throw new IntegrityError(
          `object '${key}' in bucket '${this.config.bucket}' changed while it was being read (etag ${etag} no longer matches)`,
          {
            cause: error,
            hint: 'something else wrote to the repository; read it again',
          },
        );
      }
      throw this.translate(error, `read of object '${key}' (resuming at byte ${start})`, key);
    }
    const body = part.Body as Readable;
    const answered = /^bytes (\d+)-/.exec(part.ContentRange ?? '')?.[1];
    if (answered === undefined || Number(answered) !== start) {
      body.destroy();
      throw new StorageUnavailableError(
        `read of object '${key}' in bucket '${this.config.bucket}' could not resume at byte ${start}: the server answered range '${part.ContentRange ?? 'none'}'`,
        { retryable: false },
      );
    }
    return body;
  }

  private async probeObjectLock(): Promise<ObjectLockSupport> {
    const bucket = this.config.bucket;
    try {
      const answer = await this.client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
      if (answer.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled') {
        return { supported: true, detail: `object lock enabled on bucket '${bucket}'` };
      }
      return {
        supported: false,
        detail: `bucket '${bucket}' has no object lock enabled (the server answered an empty object lock configuration)`,
      };
    } catch (error) {
      const name = errorName(error);
      if (name === 'ObjectLockConfigurationNotFoundError') {
        return { supported: false, detail: `bucket '${bucket}' was created without object lock` };
      }
      if (statusOf(error) === 501 || name === 'NotImplemented') {
        return { supported: false, detail: `the server at ${this.config.endpoint ?? 'aws s3'} does not implement object lock` };
      }
      throw this.translate(error, `object lock configuration of bucket '${bucket}'`);
    }
  }

  private async copyOntoItself(key: string, storageClass: StorageClass, before: ObjectInfo): Promise<boolean> {
    await this.client.send(
      new CopyObjectCommand({
        Bucket: this.config.bucket,
        Key: this.fullKey(key),
        CopySource: this.copySource(key),
        MetadataDirective: 'COPY',
        StorageClass: storageClass,
        ...this.copyProtection(before),
      }),
    );
    return true;
  }

  private async multipartCopyOntoItself(key: string, storageClass: StorageClass, before: ObjectInfo): Promise<void> {
    const Key = this.fullKey(key);
    const Bucket = this.config.bucket;
    let uploadId: string | undefined;
    try {
      const created = await this.client.send(
        new CreateMultipartUploadCommand({ Bucket, Key, StorageClass: storageClass, ...this.copyProtection(before) }),
      );
      uploadId = created.UploadId;
      const parts: { PartNumber: number; ETag?: string }[] = [];
      for (let start = 0, part = 1; start < Math.max(before.size, 1); start += COPY_PART_BYTES, part += 1) {
        const end = Math.min(start + COPY_PART_BYTES, before.size) - 1;
        const copied = await this.client.send(
          new UploadPartCopyCommand({
            Bucket,
            Key,
            UploadId: uploadId,
            PartNumber: part,
            CopySource: this.copySource(key),
            CopySourceRange: before.size > 0 ? `bytes=${start}-${end}` : undefined,
          }),
        );
        parts.push({ PartNumber: part, ETag: copied.CopyPartResult?.ETag });
      }
      await this.client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    } catch (error) {
      if (uploadId) {
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => undefined);
      }
      throw this.translate(error, `storage class change of object '${key}'`, key);
    }
  }

  /** Encryption and retention a copy must carry again: S3 does not take them from the source. */
  private copyProtection(before: ObjectInfo) {
    return {
      ServerSideEncryption: this.config.sse,
      SSEKMSKeyId: this.config.sse === 'aws:kms' ? this.config.kmsKeyId : undefined,
      ObjectLockMode: before.retention?.mode,
      ObjectLockRetainUntilDate: before.retention?.retainUntil,
    };
  }

  private copySource(key: string): string {
    return `${this.config.bucket}/${this.fullKey(key).split('/').map(encodeURIComponent).join('/')}`;
  }

  private fullKey(key: string): string {
    return this.config.prefix ? `${this.config.prefix}/${key}` : key;
  }

  private relativeKey(fullKey: string): string {
    return this.config.prefix ? fullKey.slice(this.config.prefix.length + 1) : fullKey;
  }

  private translate(error: unknown, what: string, key?: string): RookeryError {
    return translateS3Error(error, {
      what,
      key,
      bucket: this.config.bucket,
      endpoint: this.config.endpoint ?? `aws s3${this.config.region ? ` ${this.config.region}` : ''}`,
    });
  }
}

/**
 * The `x-amz-restore` header: `ongoing-request="true"` while thawing, `ongoing-request="false",
 * expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once the temporary copy is readable.
 */
export function parseRestoreHeader(header: string | undefined): ObjectRestoreState | undefined {
  if (!header) return undefined;
  const ongoing = /ongoing-request="?true"?/i.test(header);
  const expiry = /expiry-date="([^"]+)"/i.exec(header)?.[1];
  const expiresAt = expiry ? new Date(expiry) : undefined;
  return { ongoing, expiresAt: expiresAt && !Number.isNaN(expiresAt.getTime()) ? expiresAt : undefined };
}

function retentionOf(head: HeadObjectCommandOutput): ObjectRetention | undefined {
  if (!head.ObjectLockMode || !head.ObjectLockRetainUntilDate) return undefined;
  return { mode: head.ObjectLockMode, retainUntil: new Date(head.ObjectLockRetainUntilDate) };
}

function sameClass(current: string | undefined, wanted: StorageClass): boolean {
  return (current ?? 'STANDARD') === wanted;
}

/**
 * The class asked for, or for an archive request an archive class: S3Proxy's filesystem backend
 * keeps only jclouds tiers and reports an object sent to GLACIER as DEEP_ARCHIVE.
 */
export function classReached(current: string | undefined, wanted: StorageClass): boolean {
  if (sameClass(current, wanted)) return true;
  return isArchiveStorageClass(wanted) && isArchiveStorageClass(current) && storageClassColdness(current) >= storageClassColdness(wanted);
}

export interface S3ErrorContext {
  /** What was attempted, naming the object: "read of object 'a/b'". */
  what: string;
  /** The object's key; absent for bucket-level calls, where a 404 means the bucket is missing. */
  key?: string;
  bucket: string;
  endpoint: string;
}

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AllAccessDisabled',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
  'AccountProblem',
  'CredentialsProviderError',
]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ESOCKETTIMEDOUT',
]);

/** SDK and network errors of the S3 store, in the core storage taxonomy. */
export function translateS3Error(error: unknown, context: S3ErrorContext): RookeryError {
  if (error instanceof RookeryError) return error;
  const name = errorName(error);
  const status = statusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  const detail = name && name !== 'Unknown' && name !== 'UnknownError' ? name : status ? `http ${status}` : message;

  if (name === 'NoSuchBucket' || (status === 404 && context.key === undefined)) {
    return new StorageUnavailableError(`bucket '${context.bucket}' does not exist at ${context.endpoint}`, {
      cause: error,
      retryable: false,
      hint: `create the bucket or correct the store url s3://${context.bucket}/…`,
    });
  }
  if (name === 'NoSuchKey' || (status === 404 && context.key !== undefined)) {
    return new StorageNotFoundError(context.key ?? '', { cause: error });
  }
  if (ACCESS_DENIED.has(name) || status === 403 || status === 401) {
    return new StorageAccessDeniedError(
      `${context.what} in bucket '${context.bucket}' was refused: ${name === 'CredentialsProviderError' ? 'no aws credentials found' : detail}`,
      { cause: error },
    );
  }
  if (context.key !== undefined && (name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || status === 412)) {
    return new StorageConflictError(context.key, { cause: error });
  }
  if (/region is missing/i.test(message)) {
    return new ConfigError(`no region for bucket '${context.bucket}': set ?region= in the store url or AWS_REGION`, [], {
      cause: error,
    });
  }
  const code = networkCode(error);
  // The handler also names a reset or a broken pipe 'TimeoutError' (to make it retryable).
  if (name === 'TimeoutError' && (code === undefined || code === 'ETIMEDOUT')) {
    return new StorageUnavailableError(
      `${context.what} in bucket '${context.bucket}' failed: ${context.endpoint} timed out (${timeoutDetail(message)})`,
      {
        cause: error,
        retryable: true,
        hint: 'a slow but working endpoint needs larger connectTimeoutMs, socketTimeoutMs or requestTimeoutMs in the store url',
      },
    );
  }
  if (error instanceof TruncatedBodyError) {
    return new StorageUnavailableError(`${context.what} in bucket '${context.bucket}' failed: ${error.message}`, {
      cause: error,
      retryable: true,
    });
  }
  if (code || name === 'TimeoutError' || name === 'RequestTimeout' || name === 'RequestTimeoutException') {
    return new StorageUnavailableError(
      `${context.what} in bucket '${context.bucket}' failed: ${context.endpoint} unreachable (${code ?? name})`,
      {
        cause: error,
        retryable: true,
      },
    );
  }
  const retryable = (status !== undefined && status >= 500) || ['SlowDown', 'ServiceUnavailable', 'InternalError'].includes(name);
  return new StorageUnavailableError(`${context.what} in bucket '${context.bucket}' failed: ${detail}`, {
    cause: error,
    retryable,
  });
}

/** The SDK's timeout message without its package prefix: "the request socket timed out after 30000 ms of inactivity". */
function timeoutDetail(message: string): string {
  return message
    .replace(/^@smithy\/node-http-handler - (\[\w+\] )?/, '')
    .replace(/ \([^)]*\)\.?$/, '')
    .replace(/\.$/, '');
}

/** A body failure worth a ranged GET from where it stopped: the network, a timeout, an early end. */
export function isResumableReadError(error: unknown): boolean {
  if (error instanceof TruncatedBodyError) return true;
  if (errorName(error) === 'TimeoutError') return true;
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || networkCode(error) !== undefined;
}

function errorName(error: unknown): string {
  if (error instanceof S3ServiceException) return error.name;
  if (typeof error === 'object' && error !== null) {
    const candidate = error as { Code?: unknown; name?: unknown };
    if (typeof candidate.Code === 'string') return candidate.Code;
    if (typeof candidate.name === 'string') return candidate.name;
  }
  return '';
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

function isNoSuchBucket(error: unknown): boolean {
  return errorName(error) === 'NoSuchBucket';
}

function networkCode(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && !seen.has(current)) {
    seen.add(current);
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    const nested = (current as { errors?: unknown[] }).errors;
    if (Array.isArray(nested)) {
      const inner = nested.map(networkCode).find(Boolean);
      if (inner) return inner;
    }
    // The SDK's retry layer may wrap a foreign-realm Error, keeping only its text.
    const message = (current as { message?: unknown }).message;
    const inMessage = typeof message === 'string' ? [...NETWORK_CODES].find((known) => message.includes(known)) : undefined;
    if (inMessage) return inMessage;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
