import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { IntegrityError, StorageAccessDeniedError, StorageUnavailableError } from '@rookery/core';
// Integration specs start their S3-compatible server through the test harness (DESIGN §11).
import { FaultProxy, S3ProxyHandle, acquireS3, freeLoopbackPort, pollUntil, s3StoreUrl, startFaultProxy } from '@rookery/testing';
import { S3StoreConfig, S3StoreDriver, createS3Client } from './s3-store.driver';
import { createStore, parseStoreUrl, StoreOptions } from './store.factory';
import { chunked, collect, describeStoreContract, listKeys, readAll, sha256, sha256Of } from './store.contract';

// One S3Proxy per file: the one the jest global setup published, else one started for this file.
const BUCKET = 'rookery-storage-spec';
let server: Promise<S3ProxyHandle> | undefined;

function s3Server(): Promise<S3ProxyHandle> {
  server ??= acquireS3('primary').then(async (handle) => {
    await handle.createBucket(BUCKET);
    return handle;
  });
  return server;
}

afterAll(async () => {
  await (await server)?.stop();
}, 30_000);

function freshPrefix(label: string): string {
  return `spec-${label}-${randomBytes(4).toString('hex')}`;
}

function urlFor(handle: S3ProxyHandle, prefix: string, extra = '', bucket = BUCKET): string {
  return `${s3StoreUrl(handle, bucket, prefix)}${extra}`;
}

function optionsFor(handle: S3ProxyHandle, s3: StoreOptions['s3'] = {}): StoreOptions {
  return { s3: { credentials: { accessKeyId: handle.accessKeyId, secretAccessKey: handle.secretAccessKey }, ...s3 } };
}

function configFor(handle: S3ProxyHandle, prefix: string, extra = ''): S3StoreConfig {
  const location = parseStoreUrl(urlFor(handle, prefix, extra), optionsFor(handle));
  if (location.kind !== 's3') throw new Error('expected an s3 url');
  return location.config;
}

interface Seen {
  command: string;
  headers: Record<string, string>;
}

/** A driver whose client records the headers of every request it sends. */
function recordingDriver(config: S3StoreConfig): { store: S3StoreDriver; seen: Seen[]; client: S3Client } {
  const client = createS3Client(config);
  const seen: Seen[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      seen.push({ command: String(context.commandName), headers: { ...(request.headers ?? {}) } });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'rookeryRecordHeaders' },
  );
  return { store: new S3StoreDriver(config, { client }), seen, client };
}

describeStoreContract('s3 (S3Proxy)', async () => {
  const handle = await s3Server();
  return { store: createStore(urlFor(handle, freshPrefix('contract')), optionsFor(handle)) };
});

describe('S3StoreDriver against S3Proxy', () => {
  let handle: S3ProxyHandle;

  beforeAll(async () => {
    handle = await s3Server();
  }, 120_000);

  it('declares its features and a description without credentials', async () => {
    const store = createStore(urlFor(handle, 'repo/primary'), optionsFor(handle));
    expect(store.features).toEqual({
      conditionalCreate: false,
      serverSideEncryption: true,
      storageClasses: true,
      objectLock: true,
      writeCompletion: false,
    });
    expect(store.description).toBe(`s3://${BUCKET}/repo/primary (region ${handle.region}, endpoint ${handle.endpoint})`);
    expect(store.description).not.toContain(handle.secretAccessKey);
    expect(store.description).not.toContain(handle.accessKeyId);
    await store.close();
  });

  it.each(['when_required', 'when_supported'])(
    'round-trips bytes exactly with checksum=%s',
    async (mode) => {
      const store = createStore(urlFor(handle, freshPrefix(mode), `&checksum=${mode}`), optionsFor(handle, { partSize: 5 * 1024 * 1024 }));
      const big = randomBytes(17 * 1024 * 1024 + 7);
      const small = randomBytes(1000);
      await store.write('multipart.bin', chunked(big, 100_000));
      await store.write('single.bin', chunked(small, 100));
      expect(await sha256(await store.read('multipart.bin'))).toBe(sha256Of(big));
      expect(await sha256(await store.read('single.bin'))).toBe(sha256Of(small));
      await store.close();
    },
    60_000,
  );

  it('sends server-side encryption (AES256 by default) and the storage class on every write', async () => {
    const { store, seen } = recordingDriver({ ...configFor(handle, freshPrefix('sse')), partSize: 5 * 1024 * 1024 });
    await store.write('single', Buffer.from('small'), { storageClass: 'STANDARD_IA' });
    await store.write('multi', chunked(randomBytes(11 * 1024 * 1024), 65536), { storageClass: 'STANDARD_IA' });
    const writes = seen.filter((s) => s.command === 'PutObjectCommand' || s.command === 'CreateMultipartUploadCommand');
    expect(writes.map((s) => s.command).sort()).toEqual(['CreateMultipartUploadCommand', 'PutObjectCommand']);
    for (const write of writes) {
      expect(write.headers['x-amz-server-side-encryption']).toBe('AES256');
      expect(write.headers['x-amz-storage-class']).toBe('STANDARD_IA');
    }
    // S3Proxy keeps the storage class and reports it back; it ignores SSE (no header to assert).
    expect(await store.stat('single')).toMatchObject({ storageClass: 'STANDARD_IA' });
    expect(await store.stat('multi')).toMatchObject({ storageClass: 'STANDARD_IA', size: 11 * 1024 * 1024 });
    const listed = await collect(store.list(''));
    expect(listed.map((info) => [info.key, info.storageClass]).sort()).toEqual([
      ['multi', 'STANDARD_IA'],
      ['single', 'STANDARD_IA'],
    ]);
    await store.close();
  }, 60_000);

  it('sends aws:kms with the key id when the url asks for it', async () => {
    const { store, seen } = recordingDriver(configFor(handle, freshPrefix('kms'), '&sse=aws:kms&kmsKeyId=alias/rookery'));
    await store.write('kms', Buffer.from('secret-ish'));
    const put = seen.find((s) => s.command === 'PutObjectCommand');
    expect(put?.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    expect(put?.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/rookery');
    await store.close();
  });

  it('sends If-None-Match on ifAbsent writes, which S3Proxy does not enforce (hence conditionalCreate: false)', async () => {
    const config = configFor(handle, freshPrefix('inm'));
    const { store, seen, client } = recordingDriver(config);
    await store.write('segment', Buffer.from('one'), { ifAbsent: true });
    expect(seen.find((s) => s.command === 'PutObjectCommand')?.headers['if-none-match']).toBe('*');
    // The server itself overwrites despite If-None-Match: *, so the driver's check-then-put is all
    // that stands between two writers here.
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${config.prefix}/segment`, Body: 'two', IfNoneMatch: '*' }));
    expect((await readAll(await store.read('segment'))).toString()).toBe('two');
    await store.close();
  });

  it('makes a multipart object visible only once the upload completes', async () => {
    const { store, seen } = recordingDriver({ ...configFor(handle, freshPrefix('visible')), partSize: 5 * 1024 * 1024 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const data = randomBytes(12 * 1024 * 1024);
    async function* gated(): AsyncGenerator<Buffer> {
      yield data.subarray(0, 11 * 1024 * 1024);
      await gate;
      yield data.subarray(11 * 1024 * 1024);
    }
    const write = store.write('visible.bin', Readable.from(gated()));
    await pollUntil(async () => seen.some((s) => s.command === 'UploadPartCommand'), Boolean, { what: 'a part upload', intervalMs: 20 });
    expect(await store.stat('visible.bin')).toBeNull();
    expect(await listKeys(store, '')).toEqual([]);
    release();
    await write;
    expect(await store.stat('visible.bin')).toMatchObject({ size: data.length });
    await store.close();
  }, 60_000);

  it('aborts the multipart upload when the source fails', async () => {
    const config = { ...configFor(handle, freshPrefix('mpu-abort')), partSize: 5 * 1024 * 1024 };
    const { store, client } = recordingDriver(config);
    const failure = new Error('source failed');
    await expect(
      store.write('broken.bin', chunked(randomBytes(16 * 1024 * 1024), 65536, { failAfter: 12 * 1024 * 1024, error: failure })),
    ).rejects.toBe(failure);
    const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: config.prefix }));
    expect(uploads.Uploads ?? []).toEqual([]);
    await store.close();
  }, 60_000);

  it('translates wrong credentials to StorageAccessDeniedError', async () => {
    for (const credentials of [
      { accessKeyId: handle.accessKeyId, secretAccessKey: 'not-the-secret' },
      { accessKeyId: 'nobody', secretAccessKey: 'not-the-secret' },
    ]) {
      const store = createStore(urlFor(handle, freshPrefix('denied')), { s3: { credentials } });
      await expect(store.check()).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await expect(store.stat('x')).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await expect(store.read('x')).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await expect(listKeys(store, '')).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await expect(store.write('x', Buffer.from('x'))).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await expect(store.remove('x')).rejects.toBeInstanceOf(StorageAccessDeniedError);
      await store.close();
    }
  });

  // How fast it fails is a figure for tools/bench, not a bound here: specs judge data (issue 11).
  it('fails with StorageUnavailableError when the endpoint is unreachable', async () => {
    const port = await freeLoopbackPort();
    const store = createStore(
      `s3://${BUCKET}/x?region=us-east-1&endpoint=http://127.0.0.1:${port}&forcePathStyle=true`,
      optionsFor(handle),
    );
    await expect(store.check()).rejects.toBeInstanceOf(StorageUnavailableError);
    await expect(store.write('x', Buffer.from('x'))).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
    await expect(store.stat('x')).rejects.toThrow(/unreachable \(ECONNREFUSED\)/);
    await store.close();
  }, 120_000);

  it('reports a missing bucket by name', async () => {
    const store = createStore(urlFor(handle, 'x', '', 'no-such-rookery-bucket'), optionsFor(handle));
    await expect(store.check()).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      retryable: false,
      message: `bucket 'no-such-rookery-bucket' does not exist at ${handle.endpoint}`,
    });
    await expect(listKeys(store, '')).rejects.toThrow(/bucket 'no-such-rookery-bucket' does not exist/);
    await expect(store.write('x', Buffer.from('x'))).rejects.toThrow(/bucket 'no-such-rookery-bucket' does not exist/);
    await store.close();
  });
});

describe('S3StoreDriver through a faulty network (fault proxy in front of S3Proxy)', () => {
  let handle: S3ProxyHandle;
  let proxy: FaultProxy;
  // Short timeouts so a stall is noticed in a second; three attempts per request and per read body.
  const timeouts = '&connectTimeoutMs=2000&socketTimeoutMs=1500&requestTimeoutMs=20000&maxAttempts=3';

  beforeAll(async () => {
    handle = await s3Server();
    const target = new URL(handle.endpoint);
    proxy = await startFaultProxy({ host: target.hostname, port: Number(target.port) });
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
  });

  afterEach(() => proxy.clearFault());

  /** A store reaching S3Proxy through the proxy, and one reaching it directly to look at the truth. */
  function stores(label: string, partSize = 5 * 1024 * 1024) {
    const prefix = freshPrefix(label);
    const config = parseStoreUrl(`${urlFor({ ...handle, endpoint: proxy.endpoint }, prefix)}${timeouts}`, optionsFor(handle, { partSize }));
    if (config.kind !== 's3') throw new Error('expected an s3 url');
    return {
      prefix,
      faulty: new S3StoreDriver(config.config),
      direct: new S3StoreDriver(configFor(handle, prefix)),
    };
  }

  it('resumes a read whose connections are reset mid-body, and the bytes are exact', async () => {
    const { faulty, direct } = stores('resume');
    const data = randomBytes(3 * 1024 * 1024 + 17);
    await direct.write('object.bin', data);
    // Every connection is cut after 400 KiB from the server: the read needs several bodies.
    proxy.setFault({ direction: 'down', resetAfterBytes: [300 * 1024, 500 * 1024] });
    const body = await faulty.read('object.bin');
    expect(await sha256(body)).toBe(sha256Of(data));
    expect(proxy.stats().resets).toBeGreaterThanOrEqual(6);
    await Promise.all([faulty.close(), direct.close()]);
  }, 120_000);

  it('fails a read whose object changed before the resume, instead of splicing two versions', async () => {
    const { faulty, direct } = stores('changed');
    const data = randomBytes(2 * 1024 * 1024);
    await direct.write('object.bin', data);
    proxy.setFault({ direction: 'down', stallAfterBytes: 256 * 1024, limit: 1 });
    const body = await faulty.read('object.bin');
    // Replaced after the read began and before it is consumed: the body stalls, then resumes.
    await direct.write('object.bin', randomBytes(2 * 1024 * 1024));
    const outcome = await readAll(body).catch((error: unknown) => error);
    expect(proxy.stats().stalls).toBe(1);
    expect(outcome).toBeInstanceOf(IntegrityError);
    expect((outcome as Error).message).toMatch(/object 'object.bin' in bucket .* changed while it was being read/);
    await Promise.all([faulty.close(), direct.close()]);
  }, 120_000);

  it('a stalled part is timed out and retried; the upload completes with every byte', async () => {
    const { faulty, direct } = stores('stalled-part');
    const data = randomBytes(12 * 1024 * 1024);
    proxy.setFault({ direction: 'up', stallAfterBytes: 6 * 1024 * 1024, limit: 1 });
    await faulty.write('object.bin', chunked(data, 64 * 1024));
    expect(proxy.stats().stalls).toBeGreaterThanOrEqual(1);
    expect(await sha256(await direct.read('object.bin'))).toBe(sha256Of(data));
    expect(await direct.incompleteUploads()).toEqual([]);
    await Promise.all([faulty.close(), direct.close()]);
  }, 120_000);

  it('an upload whose parts keep failing is aborted: an error naming the object, no multipart upload left', async () => {
    const { prefix, faulty, direct } = stores('aborted');
    // Control: the listing sees an upload left open, so an empty one below means something.
    const client = createS3Client(configFor(handle, 'unused'));
    const open = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: `${prefix}/left-open.bin` }));
    expect((await direct.incompleteUploads()).map((upload) => upload.key)).toEqual(['left-open.bin']);
    await client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: `${prefix}/left-open.bin`, UploadId: open.UploadId }));
    client.destroy();

    // Requests carrying more than 1 MiB (the parts) are reset; small ones (create, abort) pass.
    proxy.setFault({ direction: 'up', resetAfterBytes: 1024 * 1024 });
    const failure = await faulty.write('object.bin', chunked(randomBytes(12 * 1024 * 1024), 64 * 1024)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StorageUnavailableError);
    expect((failure as Error).message).toMatch(
      /write of object 'object.bin' in bucket 'rookery-storage-spec' failed: .* unreachable \((ECONNRESET|EPIPE)\)/,
    );
    expect(proxy.stats().resets).toBeGreaterThanOrEqual(3);
    expect(await direct.incompleteUploads()).toEqual([]);
    expect(await direct.stat('object.bin')).toBeNull();
    await Promise.all([faulty.close(), direct.close()]);
  }, 120_000);

  it('a stalled server fails a request after the configured timeouts, naming the object', async () => {
    const { faulty, direct } = stores('stalled');
    await direct.write('object.bin', Buffer.from('x'));
    proxy.setFault({ stallAfterBytes: 0 });
    await expect(faulty.stat('object.bin')).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
      message: expect.stringMatching(
        /stat of object 'object.bin' in bucket 'rookery-storage-spec' failed: .* timed out \(the request socket timed out after 1500 ms of inactivity\)/,
      ),
    });
    await expect(faulty.write('other.bin', randomBytes(1024))).rejects.toThrow(/write of object 'other.bin' .* timed out/);
    expect(await direct.stat('other.bin')).toBeNull();
    await Promise.all([faulty.close(), direct.close()]);
  }, 120_000);
});
