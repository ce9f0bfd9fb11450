import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  InvariantError,
  ObjectInfo,
  Store,
  StoreCapability,
  StorageConflictError,
  StorageNotFoundError,
  StorageUnsupportedError,
  hasStoreFeature,
  objectLockSupport,
  requireStoreFeature,
} from '@rookery/core';

/**
 * The Store port's contract (core store.port.ts), run against every driver. `makeStore` returns a
 * store rooted at a fresh, empty location (directory or bucket prefix) and a cleanup. Each optional
 * capability is checked both ways: what a store declares it does, what it does not declare it
 * refuses with a clear StorageUnsupportedError (or ignores, as a storage class on write).
 */
export interface ContractStore {
  store: Store;
  cleanup?: () => Promise<void>;
}

const MiB = 1024 * 1024;

/** The members each optional capability adds to the port (write-completion hooks add an option, not a member). */
const CAPABILITY_MEMBERS: Readonly<Partial<Record<StoreCapability, readonly string[]>>> = {
  storageClasses: ['changeStorageClass', 'isReadable', 'requestRestore'],
  objectLock: ['objectLock', 'retain'],
};
const BIG = 40 * MiB + 12_345;

export function describeStoreContract(name: string, makeStore: () => Promise<ContractStore>): void {
  describe(`Store contract: ${name}`, () => {
    let subject: ContractStore;
    let store: Store;

    beforeAll(async () => {
      subject = await makeStore();
      store = subject.store;
    }, 120_000);

    afterAll(async () => {
      await store?.close();
      await subject?.cleanup?.();
    });

    it('round-trips a 40 MB stream exactly (multipart), reporting progress and size', async () => {
      const data = randomBytes(BIG);
      let progress = 0;
      const info = await store.write('big/base.tar', chunked(data, 64 * 1024), {
        onProgress: (bytes) => (progress = bytes),
      });
      expect(info).toMatchObject({ key: 'big/base.tar', size: BIG });
      expect(progress).toBe(BIG);
      expect(await store.stat('big/base.tar')).toMatchObject({ key: 'big/base.tar', size: BIG });
      expect(await sha256(await store.read('big/base.tar'))).toBe(sha256Of(data));
    }, 120_000);

    it('implements every capability it declares in features, and only those', () => {
      for (const [feature, members] of Object.entries(CAPABILITY_MEMBERS)) {
        for (const member of members) {
          expect({ feature, member, implemented: typeof (store as unknown as Record<string, unknown>)[member] === 'function' }).toEqual({
            feature,
            member,
            implemented: store.features[feature as StoreCapability],
          });
        }
      }
      expect(typeof store.features.writeCompletion).toBe('boolean');
    });

    it('hands back (onWritten) only chunks it no longer needs where it has write-completion hooks: overwriting them leaves the object intact', async () => {
      if (!hasStoreFeature(store, 'writeCompletion')) {
        expect(() => requireStoreFeature(store, 'writeCompletion', 'recycle written chunks')).toThrow(StorageUnsupportedError);
        expect(() => requireStoreFeature(store, 'writeCompletion', 'recycle written chunks')).toThrow(
          `cannot recycle written chunks: ${store.description} has no write-completion hooks`,
        );
        return;
      }
      const data = randomBytes(6 * MiB + 777);
      const { body, given } = recordingChunks(data, 256 * 1024);
      const handedBack = new Set<Buffer>();
      let twice = 0;
      await store.write('reuse/base.tar.zst', body, {
        onWritten: (chunk) => {
          if (handedBack.has(chunk)) twice++;
          handedBack.add(chunk);
          // The caller reuses the memory at once (one of its chunks, or one a stream joined them into).
          chunk.fill(0xee);
        },
      });
      expect(twice).toBe(0);
      expect(await sha256(await store.read('reuse/base.tar.zst'))).toBe(sha256Of(data));
      // Only what the body gave was handed back, nothing of the store's own; and a store that
      // declares the hooks does hand chunks back.
      expect([...handedBack].reduce((sum, chunk) => sum + chunk.length, 0)).toBeLessThanOrEqual(data.length);
      expect(handedBack.size).toBeGreaterThan(0);
      expect(given.size).toBeGreaterThan(0);
    }, 120_000);

    it('keeps the storage class asked for and moves objects between classes where it has storage classes, else ignores the class', async () => {
      await store.write('classes/base.tar', Buffer.from('archived bytes'), { storageClass: 'STANDARD_IA' });
      expect((await readAll(await store.read('classes/base.tar'))).toString()).toBe('archived bytes');
      if (!hasStoreFeature(store, 'storageClasses')) {
        expect((await store.stat('classes/base.tar'))?.storageClass).toBeUndefined();
        expect(() => requireStoreFeature(store, 'storageClasses', "move object 'classes/base.tar'")).toThrow(
          `cannot move object 'classes/base.tar': ${store.description} has no storage classes`,
        );
        return;
      }
      expect(await store.stat('classes/base.tar')).toMatchObject({ storageClass: 'STANDARD_IA' });
      expect(await store.isReadable('classes/base.tar')).toBe(true);
      expect(await store.changeStorageClass('classes/base.tar', 'STANDARD')).toMatchObject({
        key: 'classes/base.tar',
        size: 14,
        storageClass: 'STANDARD',
      });
      expect(await store.stat('classes/base.tar')).toMatchObject({ storageClass: 'STANDARD' });
      expect((await readAll(await store.read('classes/base.tar'))).toString()).toBe('archived bytes');
      await expect(store.changeStorageClass('classes/missing', 'STANDARD')).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(store.isReadable('classes/missing')).rejects.toBeInstanceOf(StorageNotFoundError);
      // A readable object needs no restore; a server without the restore API says so.
      const restore = await store.requestRestore('classes/base.tar', { days: 1, tier: 'Standard' }).catch((error: unknown) => error);
      expect(restore === 'not-needed' || (restore instanceof StorageUnsupportedError && /archive restores/.test(restore.message))).toBe(
        true,
      );
    }, 60_000);

    it('says whether it can lock objects, and never claims a lock it cannot hold', async () => {
      await store.write('locked/base.tar', Buffer.from('kept'));
      const support = await objectLockSupport(store);
      expect(support).toEqual({ supported: expect.any(Boolean), detail: expect.stringMatching(/\S/) });
      if (!hasStoreFeature(store, 'objectLock')) {
        expect(support).toEqual({
          supported: false,
          detail: `${store.description} has no object lock: its objects can be deleted by anyone with write access`,
        });
        expect(() => requireStoreFeature(store, 'objectLock', "lock object 'locked/base.tar'")).toThrow(StorageUnsupportedError);
        return;
      }
      expect(await store.objectLock()).toEqual(support);
      const until = new Date(Date.now() + 60_000);
      if (!support.supported) {
        await expect(store.retain('locked/base.tar', until)).rejects.toMatchObject({
          code: 'STORAGE_UNSUPPORTED',
          message: `cannot lock object 'locked/base.tar': ${support.detail}`,
        });
        expect((await store.stat('locked/base.tar'))?.retention).toBeUndefined();
        return;
      }
      await store.retain('locked/base.tar', until);
      const retention = (await store.stat('locked/base.tar'))?.retention;
      expect(retention?.mode).toBe('COMPLIANCE');
      expect(retention?.retainUntil.getTime()).toBeGreaterThanOrEqual(until.getTime() - 1000);
      // Never shortened.
      await store.retain('locked/base.tar', new Date(Date.now() + 1000));
      expect((await store.stat('locked/base.tar'))?.retention?.retainUntil.getTime()).toBe(retention?.retainUntil.getTime());
    }, 60_000);

    it('writes and reads an empty object, from a buffer and from a stream', async () => {
      await store.write('empty/from-buffer', Buffer.alloc(0));
      await store.write('empty/from-stream', Readable.from([]));
      for (const key of ['empty/from-buffer', 'empty/from-stream']) {
        expect(await store.stat(key)).toMatchObject({ key, size: 0 });
        expect((await readAll(await store.read(key))).length).toBe(0);
      }
    });

    it('writes a buffer body and overwrites it when ifAbsent is not asked', async () => {
      await store.write('buffer/manifest.json', Buffer.from('{"v":1}'));
      expect((await readAll(await store.read('buffer/manifest.json'))).toString()).toBe('{"v":1}');
      const info = await store.write('buffer/manifest.json', Buffer.from('{"v":22}'));
      expect(info.size).toBe(8);
      expect((await readAll(await store.read('buffer/manifest.json'))).toString()).toBe('{"v":22}');
    });

    it('stats, lists recursively under a prefix, and removes idempotently', async () => {
      const keys = ['tree/a/1', 'tree/a/2', 'tree/a/deep/3', 'tree/b/4', 'treetop/5'];
      for (const key of keys) await store.write(key, Buffer.from(key));

      const stat = await store.stat('tree/a/1');
      expect(stat).toMatchObject({ key: 'tree/a/1', size: 8 });
      // modifiedAt is a Date near now (not instanceof-checked: fs dates come from another realm).
      expect(Math.abs(Date.now() - (stat?.modifiedAt.getTime() ?? 0))).toBeLessThan(10 * 60_000);
      expect(await store.stat('tree/a/missing')).toBeNull();
      expect(await store.stat('tree/a')).toBeNull();

      expect(await listKeys(store, 'tree/')).toEqual(['tree/a/1', 'tree/a/2', 'tree/a/deep/3', 'tree/b/4']);
      expect(await listKeys(store, 'tree/a/')).toEqual(['tree/a/1', 'tree/a/2', 'tree/a/deep/3']);
      expect(await listKeys(store, 'tree')).toEqual([...keys].sort());
      expect(await listKeys(store, 'tree/a/de')).toEqual(['tree/a/deep/3']);
      expect(await listKeys(store, 'nothing-here/')).toEqual([]);
      const listed = await collect(store.list('tree/b/'));
      expect(listed).toEqual([expect.objectContaining({ key: 'tree/b/4', size: 8 })]);

      await store.remove('tree/a/2');
      await store.remove('tree/a/2');
      await store.remove('never/written');
      expect(await store.stat('tree/a/2')).toBeNull();
      expect(await listKeys(store, 'tree/a/')).toEqual(['tree/a/1', 'tree/a/deep/3']);
    });

    it('rejects a read of a missing key with StorageNotFoundError', async () => {
      await expect(store.read('missing/object')).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(store.read('missing/object')).rejects.toMatchObject({ code: 'STORAGE_NOT_FOUND', key: 'missing/object' });
    });

    it('creates with ifAbsent once, then rejects with StorageConflictError and keeps the first object', async () => {
      await store.write('wal/000000010000000000000001', Buffer.from('first'), { ifAbsent: true });
      await expect(store.write('wal/000000010000000000000001', Buffer.from('second'), { ifAbsent: true })).rejects.toBeInstanceOf(
        StorageConflictError,
      );
      expect((await readAll(await store.read('wal/000000010000000000000001'))).toString()).toBe('first');
    });

    it('leaves no object when the source stream fails mid-way, and rethrows the source error', async () => {
      const failure = new Error('pg_basebackup died');
      const source = chunked(randomBytes(24 * MiB), 64 * 1024, { failAfter: 20 * MiB, error: failure });
      await expect(store.write('failed/base.tar', source)).rejects.toBe(failure);
      await expectNoObject(store, 'failed/base.tar', 'failed/');
    }, 60_000);

    it('leaves no object when the AbortSignal fires mid-way', async () => {
      const controller = new AbortController();
      const write = store.write('aborted/base.tar', chunked(randomBytes(24 * MiB), 64 * 1024), {
        signal: controller.signal,
        onProgress: (bytes) => {
          if (bytes >= 18 * MiB) controller.abort();
        },
      });
      await expect(write).rejects.toMatchObject({ name: 'AbortError' });
      await expectNoObject(store, 'aborted/base.tar', 'aborted/');
    }, 60_000);

    it('rejects a write whose signal is already aborted without creating anything', async () => {
      const controller = new AbortController();
      controller.abort();
      await expect(store.write('aborted/early', Buffer.from('x'), { signal: controller.signal })).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(await store.stat('aborted/early')).toBeNull();
    });

    it('refuses keys that escape the root', async () => {
      for (const key of ['', '/abs', '../up', 'a//b', 'a/./b']) {
        await expect(store.stat(key)).rejects.toBeInstanceOf(InvariantError);
      }
    });

    it('passes check() and leaves no probe object behind', async () => {
      await store.check();
      expect(await listKeys(store, '.rookery-probe')).toEqual([]);
    });

    it('describes itself without credentials', () => {
      expect(store.description).not.toMatch(/secret|credential|password/i);
    });
  });
}

async function expectNoObject(store: Store, key: string, prefix: string): Promise<void> {
  expect(await store.stat(key)).toBeNull();
  expect(await listKeys(store, prefix)).toEqual([]);
  await expect(store.read(key)).rejects.toBeInstanceOf(StorageNotFoundError);
}

/** A byte stream over `data` in `size` chunks, optionally failing after `failAfter` bytes. */
export function chunked(data: Buffer, size: number, fail?: { failAfter: number; error: Error }): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (fail && offset >= fail.failAfter) {
        this.destroy(fail.error);
        return;
      }
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const end = Math.min(offset + size, data.length);
      // Copy: a consumer may hold a chunk after the next one is produced.
      this.push(Buffer.from(data.subarray(offset, end)));
      offset = end;
    },
  });
}

/** A byte stream over `data` in `size` chunks, and the set of the Buffers it gave. */
export function recordingChunks(data: Buffer, size: number): { body: Readable; given: Set<Buffer> } {
  const given = new Set<Buffer>();
  let offset = 0;
  const body = new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      const chunk = Buffer.from(data.subarray(offset, offset + size));
      offset += chunk.length;
      given.add(chunk);
      this.push(chunk);
    },
  });
  return { body, given };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256Of(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const items: ObjectInfo[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export async function listKeys(store: Store, prefix: string): Promise<string[]> {
  return (await collect(store.list(prefix))).map((info) => info.key).sort();
}
