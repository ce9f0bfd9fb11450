import { ConfigError } from '@rookery/core';
import { FsStoreDriver } from './fs-store.driver';
import { S3StoreDriver, S3_STORE_DEFAULTS } from './s3-store.driver';
import { createStore, parseStoreUrl, redactStoreUrl } from './store.factory';

function configError(url: string): ConfigError {
  try {
    parseStoreUrl(url);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${url}`);
}

describe('parseStoreUrl', () => {
  it.each([
    ['file:///var/lib/rookery', '/var/lib/rookery'],
    ['file:///var/lib/rookery/', '/var/lib/rookery'],
    ['file://localhost/srv/repo', '/srv/repo'],
    ['file:///srv/with%20space', '/srv/with space'],
  ])('parses %s', (url, root) => {
    expect(parseStoreUrl(url)).toEqual({ kind: 'file', root });
  });

  it('parses an s3 url with every parameter', () => {
    const location = parseStoreUrl(
      's3://pm-backups/prod/oltp/?region=eu-west-1&endpoint=http://127.0.0.1:9000/&forcePathStyle=true' +
        '&sse=aws:kms&kmsKeyId=alias/rookery&checksum=WHEN_SUPPORTED&conditionalCreate=true' +
        '&partSize=8388608&maxAttempts=5&connectTimeoutMs=1000&socketTimeoutMs=2000&requestTimeoutMs=3000',
    );
    expect(location).toEqual({
      kind: 's3',
      config: {
        ...S3_STORE_DEFAULTS,
        bucket: 'pm-backups',
        prefix: 'prod/oltp',
        region: 'eu-west-1',
        endpoint: 'http://127.0.0.1:9000',
        forcePathStyle: true,
        sse: 'aws:kms',
        kmsKeyId: 'alias/rookery',
        checksum: 'when_supported',
        conditionalCreate: true,
        partSize: 8 * 1024 * 1024,
        maxAttempts: 5,
        connectTimeoutMs: 1000,
        socketTimeoutMs: 2000,
        requestTimeoutMs: 3000,
      },
    });
  });

  it('applies defaults, then options, then url parameters', () => {
    expect(parseStoreUrl('s3://pm-backups')).toEqual({
      kind: 's3',
      config: { ...S3_STORE_DEFAULTS, bucket: 'pm-backups', prefix: '' },
    });
    const location = parseStoreUrl('s3://pm-backups/p?checksum=when_required', {
      s3: { partSize: 32 * 1024 * 1024, checksum: 'when_supported', region: 'us-west-2' },
    });
    expect(location).toMatchObject({
      config: { partSize: 32 * 1024 * 1024, checksum: 'when_required', region: 'us-west-2', sse: 'AES256' },
    });
  });

  it.each([
    ['not a url', /invalid store url 'not a url'/],
    ['gs://bucket/x', /unsupported scheme 'gs:'/],
    ['file://relative/path', /absolute path.*host 'relative'/],
    ['file:///srv/repo?x=1', /no query/],
    ['file://', /a directory below the filesystem root.*got '\/'/],
    ['file:///', /a directory below the filesystem root/],
    ['file://localhost/', /a directory below the filesystem root/],
    ['file:///srv/..', /a directory below the filesystem root/],
    ['s3://Bad_Bucket/x', /'Bad_Bucket' is not a valid bucket name|is not a valid bucket name/],
    ['s3://ok-bucket/a//b', /has empty, '\.' or '\.\.' segments/],
    ['s3://ok-bucket/x?regoin=eu-west-1', /unknown parameter 'regoin'/],
    ['s3://ok-bucket/x?sse=aes128', /sse must be AES256 or aws:kms/],
    ['s3://ok-bucket/x?kmsKeyId=k', /kmsKeyId needs sse=aws:kms/],
    ['s3://ok-bucket/x?checksum=always', /checksum must be when_required or when_supported/],
    ['s3://ok-bucket/x?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['s3://ok-bucket/x?endpoint=ftp://host', /must be http:\/\/ or https:\/\//],
    ['s3://ok-bucket/x?endpoint=nohost', /is not a url/],
    ['s3://ok-bucket/x?socketTimeoutMs=0', /socketTimeoutMs must be a positive integer, got '0'/],
    ['s3://ok-bucket/x?requestTimeoutMs=1.5', /requestTimeoutMs must be a positive integer/],
    ['s3://ok-bucket/x?maxAttempts=many', /maxAttempts must be a positive integer/],
  ])('refuses %s', (url, message) => {
    const error = configError(url);
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(message);
  });

  it('reports every problem of one url together', () => {
    const error = configError('s3://ok-bucket/x?sse=nope&checksum=nope&bogus=1');
    expect(error.issues).toHaveLength(3);
  });

  it('refuses credentials in a url and never echoes them', () => {
    for (const url of ['s3://AKIAEXAMPLE:s3cr3t@ok-bucket/x', 's3://ok-bucket/x?endpoint=http://AKIAEXAMPLE:s3cr3t@127.0.0.1:9000']) {
      const error = configError(url);
      expect(error.message).toMatch(/credentials/);
      expect(error.message).not.toContain('s3cr3t');
    }
    // Not even a valid url: refused, still without the secret.
    expect(configError('file://user:s3cr3t@/srv').message).toBe("invalid store url 'file://***@/srv'");
  });

  it('redacts user information', () => {
    expect(redactStoreUrl('s3://key:secret@bucket/x')).toBe('s3://***@bucket/x');
    expect(redactStoreUrl('s3://bucket/x?endpoint=http://key:secret@host:1')).toBe('s3://bucket/x?endpoint=http://***@host:1');
  });
});

describe('createStore', () => {
  it('builds the driver the scheme names', async () => {
    const fs = createStore('file:///srv/repo');
    expect(fs).toBeInstanceOf(FsStoreDriver);
    expect(fs.description).toBe('file:///srv/repo');
    const s3 = createStore('s3://pm-backups/prod?region=eu-west-1');
    expect(s3).toBeInstanceOf(S3StoreDriver);
    expect(s3.description).toBe('s3://pm-backups/prod (region eu-west-1)');
    expect(s3.features).toEqual({
      conditionalCreate: false,
      serverSideEncryption: true,
      storageClasses: true,
      objectLock: true,
      writeCompletion: false,
    });
    await s3.close();
  });

  it('refuses a part size below the S3 minimum', () => {
    expect(() => createStore('s3://pm-backups/prod', { s3: { partSize: 1024 } })).toThrow(/below the 5 MiB minimum/);
  });
});
