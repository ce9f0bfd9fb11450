import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  ArtifactRecord,
  BackupManifest,
  EncryptionKeyError,
  IntegrityError,
  ObjectInfo,
  Store,
  StorageUnavailableError,
  ToolFailedError,
  WriteOptions,
} from '@rookery/core';
import { encryptionRequired } from '@rookery/wal';
import {
  ArtifactConsumer,
  ArtifactEncoding,
  artifactBinding,
  keyMaterialFor,
  readArtifact,
  readArtifactInto,
  writeArtifact,
} from './artifact.codec';

const KEY = 'oltp/backups/2026-12-06/20261206T010000Z-oltp/base.tar.zst';
const ENCODING: ArtifactEncoding = { compression: { codec: 'zstd', level: 1 }, key: null };

function enospc(): StorageUnavailableError {
  const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return new StorageUnavailableError(`write of object '${KEY}' failed: ENOSPC`, { cause, retryable: false });
}

/**
 * A store that reads `failAfter` bytes of a write, then gives up on a full disk: it tears the
 * stream down first (the pipeline sees "The operation was aborted" at once) and rejects after its
 * cleanup (slow, as aborting a multipart upload is), with the real reason unless its caller
 * aborted the write meanwhile.
 */
function fullStore(failAfter: number): Store & { writes: number } {
  const store = {
    description: 'file:///srv/backups',
    writes: 0,
    async write(_key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectInfo> {
      store.writes++;
      const stream = body as Readable;
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += (chunk as Buffer).length;
        options.signal?.throwIfAborted();
        if (bytes < failAfter) continue;
        stream.destroy(Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
        break;
      }
      // A delay on purpose: the store's own error must reach the caller after the abort its
      // destroy() caused, as a real store's does (its close and unlink take a while).
      await new Promise((resolve) => setTimeout(resolve, 300));
      // As the filesystem store does: a write whose caller aborted it reports the caller's reason.
      if (options.signal?.aborted) throw options.signal.reason;
      throw enospc();
    },
  };
  return store as unknown as Store & { writes: number };
}

const NOISE = randomBytes(8 * 1024 * 1024);

/** Incompressible bytes, in chunks, optionally failing before the end. */
function source(bytes: number, failure?: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return void (failure ? this.destroy(failure) : this.push(null));
      const chunk = NOISE.subarray(sent % NOISE.length, (sent % NOISE.length) + 64 * 1024);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

const options = {
  name: 'base.tar.zst',
  kind: 'base-tar' as const,
  backup: { tier: 'oltp' as const, id: '20261206T010000Z-oltp' },
  encoding: ENCODING,
};

describe('writeArtifact failures', () => {
  it("reports the store's ENOSPC naming the artifact, backup and store, not the abort it caused", async () => {
    const failure = await writeArtifact(fullStore(256 * 1024), KEY, source(8 * 1024 * 1024), options).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to file:///srv/backups: no space left on device (ENOSPC)",
    );
    expect(failure).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: false, hint: expect.stringContaining('free space') });
  });

  it("reports the source's own failure as it is", async () => {
    const toolFailed = new ToolFailedError('pg_basebackup', 1, 'pg_basebackup: error: connection lost');
    const store = fullStore(Number.MAX_SAFE_INTEGER);
    await expect(writeArtifact(store, KEY, source(512 * 1024, toolFailed), options)).rejects.toBe(toolFailed);
  });

  it('settles when the store fails before reading anything', async () => {
    const store = {
      description: 's3://bucket/prefix',
      write: async () => {
        throw new StorageUnavailableError('cannot reach s3://bucket/prefix', {
          cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        });
      },
    } as unknown as Store;
    await expect(writeArtifact(store, KEY, source(64 * 1024 * 1024), options)).rejects.toThrow(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to s3://bucket/prefix: connection refused (ECONNREFUSED)",
    );
  });
});

const BACKUP = { id: '20261206T010000Z-oltp', tier: 'oltp' } as BackupManifest;

/** An artifact written through the real pipeline into memory: its record and stored bytes. */
async function storedArtifact(bytes: number): Promise<{ record: ArtifactRecord; stored: Buffer }> {
  const chunks: Buffer[] = [];
  const memory = {
    description: 'memory',
    async write(key: string, body: Readable | Buffer): Promise<ObjectInfo> {
      for await (const chunk of body as Readable) chunks.push(chunk as Buffer);
      return { key, size: Buffer.concat(chunks).length, modifiedAt: new Date() };
    },
  } as unknown as Store;
  const record = await writeArtifact(memory, KEY, source(bytes), options);
  return { record, stored: Buffer.concat(chunks) };
}

/**
 * An S3-like store whose read hands over `failAt` bytes, then fails the way the S3 driver does
 * once its resume attempts are spent: a storage error wrapping the socket's ECONNRESET ('aborted').
 */
function resettingStore(stored: Buffer, failAt: number): Store {
  return {
    description: 's3://bucket/prefix',
    async read(): Promise<Readable> {
      let sent = 0;
      return new Readable({
        read() {
          if (sent >= stored.length) return void this.push(null);
          if (sent >= failAt) {
            const reset = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
            return void this.destroy(
              new StorageUnavailableError(`read of object '${KEY}' (stopped at byte ${sent}, 3 attempts in a row)`, {
                cause: reset,
                retryable: true,
              }),
            );
          }
          const chunk = stored.subarray(sent, Math.min(failAt, sent + 64 * 1024));
          sent += chunk.length;
          this.push(chunk);
        },
      });
    },
  } as unknown as Store;
}

/** A store that hands the whole artifact over. */
function servingStore(stored: Buffer): Store {
  return resettingStore(stored, Number.MAX_SAFE_INTEGER);
}

/** A sink on a full disk: takes `room` bytes, then fails the write with Node's ENOSPC. */
function fullDisk(room: number): Writable {
  let taken = 0;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      taken += chunk.length;
      if (taken <= room) return void setImmediate(callback);
      callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }));
    },
  });
}

/**
 * A consumer like tar extracting: its stdin takes `room` bytes, then tar dies on a full disk. The
 * read sees the broken pipe first; tar's exit (its stderr naming ENOSPC) comes later.
 */
function dyingTar(room: number): ArtifactConsumer<void> & { aborted: Error[] } {
  let settle: (error: Error) => void = () => undefined;
  const result = new Promise<void>((_resolve, reject) => (settle = reject));
  const aborted: Error[] = [];
  let taken = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      taken += chunk.length;
      if (taken <= room) return void setImmediate(callback);
      callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' }));
      // A delay on purpose: a dead tar's exit status reaches us after the EPIPE of its closed stdin.
      setTimeout(
        () =>
          settle(
            new ToolFailedError(
              'tar',
              2,
              'tar: base/5/16384: Cannot write: No space left on device\ntar: Exiting with failure status due to previous errors',
            ),
          ),
        50,
      );
    },
  });
  return { sink, result, aborted, abort: (error) => void aborted.push(error) };
}

describe('readArtifact failures', () => {
  it("names the store's reset (artifact, backup, store) when the download fails mid-way", async () => {
    const { record, stored } = await storedArtifact(4 * 1024 * 1024);
    const failure = await readArtifact(resettingStore(stored, stored.length / 2), BACKUP, record, KEY, fullDisk(Number.MAX_SAFE_INTEGER), {
      keyMaterial: null,
      requireEncryption: false,
      target: '/restore/dir',
    }).catch((error: unknown) => error);
    expect((failure as Error).message).toBe(
      "cannot read artifact 'base.tar.zst' of backup 20261206T010000Z-oltp from s3://bucket/prefix: connection reset by peer (ECONNRESET)",
    );
    expect(failure).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: true });
  });

  it('names the restore target when the sink fails with ENOSPC', async () => {
    const { record, stored } = await storedArtifact(4 * 1024 * 1024);
    const failure = await readArtifact(servingStore(stored), BACKUP, record, KEY, fullDisk(1024 * 1024), {
      keyMaterial: null,
      requireEncryption: false,
      target: '/restore/dir',
    }).catch((error: unknown) => error);
    expect((failure as Error).message).toBe(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp into /restore/dir: no space left on device (ENOSPC)",
    );
    expect(failure).toMatchObject({ code: 'RESTORE_TARGET', hint: expect.stringContaining('free space under /restore/dir') });
  });

  it("reports a consumer's own failure (tar on a full disk) over the broken pipe it left the read with", async () => {
    const { record, stored } = await storedArtifact(4 * 1024 * 1024);
    const tar = dyingTar(1024 * 1024);
    const failure = await readArtifactInto(servingStore(stored), BACKUP, record, KEY, tar, {
      keyMaterial: null,
      requireEncryption: false,
      target: '/restore/dir',
    }).catch((error: unknown) => error);
    expect((failure as Error).message).toBe(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp into /restore/dir: no space left on device (ENOSPC)",
    );
    expect(tar.aborted).toHaveLength(1);
  });

  it("reports the store's reset over the abort it caused in the consumer", async () => {
    const { record, stored } = await storedArtifact(4 * 1024 * 1024);
    const controller = new AbortController();
    // A checker that reports its abort (as pg_restore --list does when its signal fires).
    const result = new Promise<number>((_resolve, reject) =>
      controller.signal.addEventListener('abort', () =>
        reject(Object.assign(new Error('The operation was aborted', { cause: controller.signal.reason }), { name: 'AbortError' })),
      ),
    );
    const consumer = { sink: fullDisk(Number.MAX_SAFE_INTEGER), result, abort: (error: Error) => controller.abort(error) };
    await expect(
      readArtifactInto(resettingStore(stored, 1024 * 1024), BACKUP, record, KEY, consumer, { keyMaterial: null, requireEncryption: false }),
    ).rejects.toThrow(
      "cannot read artifact 'base.tar.zst' of backup 20261206T010000Z-oltp from s3://bucket/prefix: connection reset by peer (ECONNRESET)",
    );
  });

  it("returns the consumer's result when both sides succeed", async () => {
    const { record, stored } = await storedArtifact(1024 * 1024);
    const sink = fullDisk(Number.MAX_SAFE_INTEGER);
    const consumer = { sink, result: finished(sink).then(() => 42), abort: () => undefined };
    await expect(
      readArtifactInto(servingStore(stored), BACKUP, record, KEY, consumer, { keyMaterial: null, requireEncryption: false }),
    ).resolves.toBe(42);
  });
});

describe('encryption decided by the configuration, not by the manifest', () => {
  const key = { material: Buffer.alloc(32, 3), id: 'abcdef0123456789' };
  const artifact = (encryption: ArtifactRecord['encryption']): ArtifactRecord => ({
    name: 'base.tar.zst',
    kind: 'base-tar',
    bytes: 1,
    storedBytes: 1,
    sha256: '0'.repeat(64),
    compression: { codec: 'zstd', level: 1 },
    encryption,
  });
  const manifest = (encryption: ArtifactRecord['encryption']) => ({ ...BACKUP, artifacts: [artifact(encryption)] }) as BackupManifest;

  it.each([
    ['no key', { key: null }, false],
    ['a key', { key }, true],
    ['a key and required: false', { key, requireEncryption: false }, false],
    ['a key and required: true', { key, requireEncryption: true }, true],
  ])('requires encryption with %s: %s', (_name, encoding, required) => {
    expect(encryptionRequired(encoding)).toBe(required);
  });

  it('refuses a plaintext artifact in a repository that requires encryption, naming it', () => {
    const plaintext = manifest({ algorithm: 'none' });
    expect(() => keyMaterialFor(plaintext, { key })).toThrow(IntegrityError);
    expect(() => keyMaterialFor(plaintext, { key })).toThrow(
      "artifact 'base.tar.zst' of backup 20261206T010000Z-oltp is not encrypted, and this repository requires encryption",
    );
  });

  it('reads a plaintext artifact when encryption is not required (backups from before the key)', () => {
    expect(keyMaterialFor(manifest({ algorithm: 'none' }), { key, requireEncryption: false })).toBeNull();
    expect(keyMaterialFor(manifest({ algorithm: 'none' }), { key: null })).toBeNull();
  });

  it('hands over the key for an encrypted artifact, and refuses another key', () => {
    expect(keyMaterialFor(manifest({ algorithm: 'aes-256-gcm', keyId: key.id, bound: true }), { key })).toBe(key.material);
    expect(() => keyMaterialFor(manifest({ algorithm: 'aes-256-gcm', keyId: 'ffffffffffffffff' }), { key })).toThrow(EncryptionKeyError);
  });

  it('refuses a plaintext artifact in readArtifact before reading a byte', async () => {
    const store = { description: 'memory', read: jest.fn() } as unknown as Store;
    const failure = readArtifact(store, manifest({ algorithm: 'none' }), artifact({ algorithm: 'none' }), KEY, new Writable(), {
      keyMaterial: key.material,
      requireEncryption: true,
    });
    await expect(failure).rejects.toThrow(
      "artifact 'base.tar.zst' of backup 20261206T010000Z-oltp is not encrypted, and this repository requires encryption",
    );
    expect(store.read).not.toHaveBeenCalled();
  });

  it('binds an artifact to its tier, backup id and name', () => {
    const bindings = new Set([
      artifactBinding({ tier: 'oltp', id: 'a' }, 'base.tar.zst'),
      artifactBinding({ tier: 'olap', id: 'a' }, 'base.tar.zst'),
      artifactBinding({ tier: 'oltp', id: 'b' }, 'base.tar.zst'),
      artifactBinding({ tier: 'oltp', id: 'a' }, 'backup_manifest.enc'),
    ]);
    expect(bindings.size).toBe(4);
  });
});

describe('an encrypted artifact bound to its backup', () => {
  const key = { material: Buffer.alloc(32, 3), id: 'abcdef0123456789' };

  async function encryptedArtifact(backup: { tier: 'oltp'; id: string }): Promise<{ record: ArtifactRecord; stored: Buffer }> {
    const chunks: Buffer[] = [];
    const memory = {
      description: 'memory',
      async write(objectKey: string, body: Readable): Promise<ObjectInfo> {
        for await (const chunk of body) chunks.push(chunk as Buffer);
        return { key: objectKey, size: Buffer.concat(chunks).length, modifiedAt: new Date() };
      },
    } as unknown as Store;
    const record = await writeArtifact(memory, KEY, source(300 * 1024), { ...options, backup, encoding: { ...ENCODING, key } });
    return { record, stored: Buffer.concat(chunks) };
  }

  it('is recorded as bound, reads back in its own backup, and is refused in another', async () => {
    const { record, stored } = await encryptedArtifact({ tier: 'oltp', id: BACKUP.id });
    expect(record.encryption).toEqual({ algorithm: 'aes-256-gcm', keyId: key.id, bound: true });
    const read = (manifest: BackupManifest) =>
      readArtifact(servingStore(stored), manifest, record, KEY, new Writable({ write: (_chunk, _encoding, callback) => callback() }), {
        keyMaterial: key.material,
        requireEncryption: true,
      });
    await expect(read(BACKUP)).resolves.toBeUndefined();
    const other = { ...BACKUP, id: '20261205T010000Z-oltp' } as BackupManifest;
    await expect(read(other)).rejects.toBeInstanceOf(IntegrityError);
    await expect(read(other)).rejects.toThrow(
      "cannot decrypt artifact 'base.tar.zst' of backup 20261205T010000Z-oltp: segment 0 fails authentication: the object was encrypted for another place",
    );
  });
});
