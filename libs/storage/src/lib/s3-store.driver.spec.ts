import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { NoSuchBucket, NoSuchKey, PutObjectCommand, S3ServiceException } from '@aws-sdk/client-s3';
import {
  ConfigError,
  IntegrityError,
  StorageAccessDeniedError,
  StorageConflictError,
  StorageNotFoundError,
  StorageUnavailableError,
} from '@rookery/core';
import { FaultProxy, startFaultProxy } from '@rookery/testing';
import { TruncatedBodyError } from './resumable-body';
import {
  S3ErrorContext,
  S3_STORE_DEFAULTS,
  classReached,
  createS3Client,
  isResumableReadError,
  parseRestoreHeader,
  translateS3Error,
} from './s3-store.driver';

const objectContext: S3ErrorContext = {
  what: "read of object 'a/b'",
  key: 'a/b',
  bucket: 'pm-backups',
  endpoint: 'http://127.0.0.1:9000',
};
const bucketContext: S3ErrorContext = { ...objectContext, what: "check of bucket 'pm-backups'", key: undefined };

function serviceError(name: string, status: number): S3ServiceException {
  return new S3ServiceException({
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

function networkError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:9000`), { code, $metadata: { attempts: 3 } });
}

describe('translateS3Error', () => {
  it.each([
    ['NoSuchKey', new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'missing' }), objectContext, StorageNotFoundError],
    ['a HEAD 404 without body', serviceError('NotFound', 404), objectContext, StorageNotFoundError],
    ['AccessDenied', serviceError('AccessDenied', 403), objectContext, StorageAccessDeniedError],
    ['InvalidAccessKeyId', serviceError('InvalidAccessKeyId', 403), objectContext, StorageAccessDeniedError],
    ['SignatureDoesNotMatch', serviceError('SignatureDoesNotMatch', 403), objectContext, StorageAccessDeniedError],
    ['a HEAD 403 without body', serviceError('Unknown', 403), objectContext, StorageAccessDeniedError],
    [
      'no credentials in the chain',
      Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }),
      objectContext,
      StorageAccessDeniedError,
    ],
    ['PreconditionFailed', serviceError('PreconditionFailed', 412), objectContext, StorageConflictError],
    ['ConditionalRequestConflict', serviceError('ConditionalRequestConflict', 409), objectContext, StorageConflictError],
    ['ECONNREFUSED', networkError('ECONNREFUSED'), objectContext, StorageUnavailableError],
    ['ENOTFOUND', networkError('ENOTFOUND'), objectContext, StorageUnavailableError],
    ['a connect timeout', Object.assign(new Error('timed out'), { name: 'TimeoutError' }), objectContext, StorageUnavailableError],
    ['SlowDown', serviceError('SlowDown', 503), objectContext, StorageUnavailableError],
    ['a missing region', new Error('Region is missing'), objectContext, ConfigError],
  ])('translates %s', (_label, error, context, expected) => {
    const translated = translateS3Error(error, context);
    expect(translated).toBeInstanceOf(expected);
    expect(translated.cause).toBe(error);
  });

  it('names the object and bucket, and marks network failures retryable', () => {
    const translated = translateS3Error(networkError('ECONNREFUSED'), objectContext);
    expect(translated.message).toBe("read of object 'a/b' in bucket 'pm-backups' failed: http://127.0.0.1:9000 unreachable (ECONNREFUSED)");
    expect(translated.retryable).toBe(true);
  });

  it.each([
    [
      '@smithy/node-http-handler - the request socket timed out after 30000 ms of inactivity (configured by client requestHandler).',
      undefined,
      'the request socket timed out after 30000 ms of inactivity',
    ],
    [
      '@smithy/node-http-handler - [ERROR] a request has exceeded the configured 120000 ms requestTimeout.',
      'ETIMEDOUT',
      'a request has exceeded the configured 120000 ms requestTimeout',
    ],
    [
      '@smithy/node-http-handler - the request socket did not establish a connection with the server within the configured timeout of 5000 ms.',
      undefined,
      'the request socket did not establish a connection with the server within the configured timeout of 5000 ms',
    ],
  ])('reports the handler timeout %s with the object, retryable, and hints at the url settings', (message, code, detail) => {
    const translated = translateS3Error(Object.assign(new Error(message), { name: 'TimeoutError', code }), objectContext);
    expect(translated).toBeInstanceOf(StorageUnavailableError);
    expect(translated.message).toBe(`read of object 'a/b' in bucket 'pm-backups' failed: http://127.0.0.1:9000 timed out (${detail})`);
    expect(translated.retryable).toBe(true);
    expect(translated.hint).toMatch(/socketTimeoutMs/);
  });

  it('reports a reset the handler named TimeoutError as a reset', () => {
    const reset = Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
    expect(translateS3Error(reset, objectContext).message).toMatch(/unreachable \(ECONNRESET\)$/);
  });

  it('finds a network code the SDK wrapped or nested', () => {
    const wrapped = new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:1');
    expect(translateS3Error(wrapped, objectContext).message).toMatch(/unreachable \(ECONNREFUSED\)/);
    const aggregate = Object.assign(new AggregateError([networkError('EHOSTUNREACH')], 'failed'), {});
    expect(translateS3Error(aggregate, objectContext).message).toMatch(/unreachable \(EHOSTUNREACH\)/);
  });

  it('reports a missing bucket by name, not retryable', () => {
    for (const [error, context] of [
      [new NoSuchBucket({ $metadata: { httpStatusCode: 404 }, message: 'no bucket' }), objectContext],
      [serviceError('NotFound', 404), bucketContext],
    ] as const) {
      const translated = translateS3Error(error, context);
      expect(translated).toBeInstanceOf(StorageUnavailableError);
      expect(translated.message).toBe("bucket 'pm-backups' does not exist at http://127.0.0.1:9000");
      expect(translated.retryable).toBe(false);
    }
  });

  it('keeps rookery errors as they are', () => {
    const error = new StorageConflictError('a/b');
    expect(translateS3Error(error, objectContext)).toBe(error);
  });

  it('translates client errors it does not know as not retryable', () => {
    const translated = translateS3Error(serviceError('InvalidArgument', 400), objectContext);
    expect(translated).toBeInstanceOf(StorageUnavailableError);
    expect(translated.retryable).toBe(false);
    expect(translated.message).toBe("read of object 'a/b' in bucket 'pm-backups' failed: InvalidArgument");
  });
});

describe('archive restore header and storage class checks', () => {
  it.each([
    [undefined, undefined],
    ['ongoing-request="true"', { ongoing: true, expiresAt: undefined }],
    [
      'ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"',
      { ongoing: false, expiresAt: new Date('2012-12-21T00:00:00Z') },
    ],
  ])('parses %s', (header, expected) => {
    expect(parseRestoreHeader(header)).toEqual(expected);
  });

  it.each([
    ['GLACIER', 'GLACIER', true],
    ['DEEP_ARCHIVE', 'GLACIER', true],
    ['GLACIER', 'DEEP_ARCHIVE', false],
    ['STANDARD', 'STANDARD_IA', false],
    [undefined, 'STANDARD', true],
  ] as const)('class %s reached for %s: %s', (current, wanted, expected) => {
    expect(classReached(current, wanted)).toBe(expected);
  });
});

describe('isResumableReadError', () => {
  it.each([
    ['a reset', Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), true],
    ['a socket timeout', Object.assign(new Error('the request socket timed out'), { name: 'TimeoutError' }), true],
    ['a premature close', Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }), true],
    ['an early end', new TruncatedBodyError(10, 20), true],
    ['a reset wrapped by the sdk', new Error('AWS SDK error wrapper for Error: read ECONNRESET'), true],
    ['a checksum failure', new Error('checksum mismatch'), false],
    ['a changed object', new IntegrityError("object 'k' changed while it was being read"), false],
    ['an abort', Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }), false],
  ])('%s: %s', (_label, error, resumable) => {
    expect(isResumableReadError(error)).toBe(resumable);
  });
});

describe('the S3 client on a slow link', () => {
  let server: Server;
  let proxy: FaultProxy;
  let received = 0;

  beforeAll(async () => {
    // Answers each PUT as soon as its body is in, as S3 would; the proxy in front caps the rate.
    server = createServer((request, response) => {
      request.on('data', (chunk: Buffer) => (received += chunk.length));
      request.on('end', () => response.writeHead(200, { ETag: '"e"' }).end());
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
    proxy = await startFaultProxy({ host: '127.0.0.1', port: (server.address() as AddressInfo).port });
  });

  afterAll(async () => {
    await proxy.close();
    await new Promise((done) => server.close(done));
  });

  it('sends a body that takes longer than the socket timeout, because its bytes keep moving', async () => {
    const client = createS3Client({
      ...S3_STORE_DEFAULTS,
      bucket: 'b',
      prefix: '',
      region: 'us-east-1',
      endpoint: proxy.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      maxAttempts: 1,
      socketTimeoutMs: 2_000,
    });
    // 24 MiB at 4 MiB/s: the body takes about 6 s to pass, three socket timeouts: the socket
    // timeout must measure silence, not the length of a request.
    proxy.setFault({ bytesPerSecond: 4 * 1024 * 1024 });
    const body = Buffer.alloc(24 * 1024 * 1024, 7);
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'slow.bin', Body: body }));
    expect(received).toBe(body.length);
    client.destroy();
  }, 60_000);
});
