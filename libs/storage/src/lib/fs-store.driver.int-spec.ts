import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { StorageConflictError } from '@rookery/core';
import { FsStoreDriver } from './fs-store.driver';
import { createStore } from './store.factory';
import { describeStoreContract, listKeys, readAll, recordingChunks } from './store.contract';

describeStoreContract('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rookery-fs-store-'));
  return {
    store: createStore(`file://${dir}/repo`),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('FsStoreDriver', () => {
  let dir: string;
  let store: FsStoreDriver;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rookery-fs-store-'));
    store = new FsStoreDriver(dir);
  });

  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('declares its features', () => {
    expect(store.features).toEqual({
      conditionalCreate: true,
      serverSideEncryption: false,
      storageClasses: false,
      objectLock: false,
      writeCompletion: true,
    });
    expect(store.description).toBe(`file://${dir}`);
  });

  it("hands back every byte of the body once it is in the file, mostly as the body's own chunks", async () => {
    const data = randomBytes(5 * 1024 * 1024 + 3);
    const { body, given } = recordingChunks(data, 1024 * 1024);
    const handedBack: Buffer[] = [];
    await store.write('base.tar.zst', body, { onWritten: (chunk) => handedBack.push(chunk) });
    expect(handedBack.reduce((sum, chunk) => sum + chunk.length, 0)).toBe(data.length);
    // A byte stream may join chunks read together; the others come back as the very Buffers given.
    expect(handedBack.some((chunk) => given.has(chunk))).toBe(true);
  });

  it('lets exactly one of many concurrent ifAbsent writes win', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => store.write('wal/segment', Buffer.from(`writer ${i}`), { ifAbsent: true })),
    );
    const won = results.filter((result) => result.status === 'fulfilled');
    expect(won).toHaveLength(1);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(StorageConflictError);
    }
    expect((await readAll(await store.read('wal/segment'))).toString()).toMatch(/^writer \d$/);
    expect(await readdir(join(dir, 'wal'))).toEqual(['segment']);
  });

  it('removes its temporary file when a write fails', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('source failed'));
      },
    });
    await expect(store.write('a/b/c', failing)).rejects.toThrow('source failed');
    expect(await readdir(join(dir, 'a/b'))).toEqual([]);
  });

  it('skips temporary files of writes in progress (or crashed) when listing', async () => {
    await store.write('x/final', Buffer.from('done'));
    await writeFile(join(dir, 'x/partial.tmp-0123456789ab'), 'half');
    expect(await listKeys(store, 'x/')).toEqual(['x/final']);
  });
});
