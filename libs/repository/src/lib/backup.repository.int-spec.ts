import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupManifest, IntegrityError, LockHeldError, StorageNotFoundError, UnsignedManifest } from '@rookery/core';
import { FsStoreDriver } from '@rookery/storage';
import { makeManifest as makeTestManifest, pollUntil } from '@rookery/testing';
import { BackupRepository } from './backup.repository';
import { repositoryLayout } from './repository.layout';
import { RepositoryLock } from './repository.lock';

/** `driver` with its `methods` called on `key` going through `around` (given the call to make); the rest untouched. */
function aroundCalls(
  driver: FsStoreDriver,
  key: string,
  methods: string[],
  around: (method: string, call: () => Promise<unknown>) => unknown,
): FsStoreDriver {
  return new Proxy(driver, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof property !== 'string' || !methods.includes(property) || typeof value !== 'function') return value;
      return (path: string, ...rest: unknown[]) => {
        const call = () => (value as (...args: unknown[]) => Promise<unknown>).call(target, path, ...rest);
        return path === key ? around(property, call) : call();
      };
    },
  });
}

/** The factory's manifest, with a 5-byte stored artifact these specs write for real. */
function makeManifest(overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  return makeTestManifest({ bytes: 10, storedBytes: 5, ...overrides });
}

describe('BackupRepository on the filesystem store', () => {
  let root: string;
  let store: FsStoreDriver;
  let repository: BackupRepository;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rookery-repo-'));
    store = new FsStoreDriver(root);
    repository = new BackupRepository(store);
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('commits a manifest only when every artifact is there with its recorded size', async () => {
    const manifest = makeManifest();
    await expect(repository.commit(manifest)).rejects.toBeInstanceOf(StorageNotFoundError);
    await store.write(repository.artifactKey(manifest, 'base.tar.zst'), Buffer.from('1234'));
    await expect(repository.commit(manifest)).rejects.toThrow('has 4 bytes in the store, expected 5');
    expect((await repository.list('oltp')).backups).toEqual([]);

    await store.write(repository.artifactKey(manifest, 'base.tar.zst'), Buffer.from('12345'));
    await repository.commit(manifest);
    expect((await repository.list('oltp')).backups.map((backup) => backup.id)).toEqual([manifest.id]);
    expect((await repository.find('oltp', 'latest')).id).toBe(manifest.id);
  });

  it('lists newest last and reports a damaged manifest instead of listing it', async () => {
    const older = makeManifest({ id: '20261125T020000Z-oltp', startedAt: '2026-11-25T02:00:00.000Z' });
    const newer = makeManifest();
    for (const manifest of [newer, older]) {
      await store.write(repository.artifactKey(manifest, 'base.tar.zst'), Buffer.from('12345'));
      await repository.commit(manifest);
    }
    const tampered = repositoryLayout.manifestKey('oltp', older.id, new Date(older.startedAt));
    await writeFile(join(root, tampered), JSON.stringify({ ...older, stopLsn: '0/9' }));

    const listing = await repository.list('oltp');
    expect(listing.backups.map((backup) => backup.id)).toEqual([newer.id]);
    expect(listing.damaged).toEqual([
      { key: tampered, problem: expect.stringContaining('does not match its checksum'), hint: expect.any(String) },
    ]);
    await expect(repository.readManifest(tampered)).rejects.toBeInstanceOf(IntegrityError);
    // Its manifest is there: untrusted, not missing.
    await expect(repository.find('oltp', older.id)).rejects.toThrow('does not match its checksum');
  });

  it("discards what a failed backup wrote and nothing of another backup, nor a committed one's", async () => {
    const committed = makeManifest({ id: '20261125T020000Z-oltp', startedAt: '2026-11-25T02:00:00.000Z' });
    await store.write(repository.artifactKey(committed, 'base.tar.zst'), Buffer.from('12345'));
    await repository.commit(committed);
    const failed = makeManifest({ id: '20261126T020000Z-oltp' });
    // Another run of the same date whose id begins with the failed one's.
    const sibling = makeManifest({ id: '20261126T020000Z-oltp-2' });
    for (const key of [
      repository.artifactKey(failed, 'base.tar.zst'),
      repository.artifactKey(failed, 'backup_manifest'),
      repository.artifactKey(sibling, 'base.tar.zst'),
    ]) {
      await store.write(key, Buffer.from('12345'));
    }

    expect((await repository.discard(failed)).sort()).toEqual([
      repository.artifactKey(failed, 'backup_manifest'),
      repository.artifactKey(failed, 'base.tar.zst'),
    ]);
    expect(await repository.discard(committed)).toEqual([]);
    const left: string[] = [];
    for await (const object of store.list('oltp/')) left.push(object.key);
    expect(left.sort()).toEqual(
      [
        repository.artifactKey(committed, 'base.tar.zst'),
        repositoryLayout.manifestKey('oltp', committed.id, new Date(committed.startedAt)),
        repository.artifactKey(sibling, 'base.tar.zst'),
      ].sort(),
    );
    expect(await repository.backupIdsInUse('oltp')).toEqual(new Set([committed.id, sibling.id]));
  });
});

describe('RepositoryLock', () => {
  let root: string;
  let lock: RepositoryLock;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'rookery-lock-'));
    lock = new RepositoryLock(new FsStoreDriver(root));
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('lets one holder in per tier and the next in after release', async () => {
    const first = await lock.acquire('oltp', { holder: 'first' });
    await expect(lock.acquire('oltp', { holder: 'second' })).rejects.toBeInstanceOf(LockHeldError);
    const otherTier = await lock.acquire('queue', { holder: 'queue backup' });
    await first.release();
    const second = await lock.acquire('oltp', { holder: 'second' });
    await second.release();
    await otherTier.release();
  });

  it('breaks a lock whose holder on this host is dead', async () => {
    const crashed = await lock.acquire('oltp', { holder: 'crashed', isProcessAlive: () => true });
    await expect(lock.acquire('oltp', { holder: 'next', isProcessAlive: () => true })).rejects.toThrow('already running');
    const next = await lock.acquire('oltp', { holder: 'next', isProcessAlive: () => false });
    expect(next.record.holder).toBe('next');
    await next.release();
    // The broken holder's heartbeat stops (its release leaves the lock it no longer holds alone):
    // left running, it wrote the lock again into the directory afterEach had removed.
    await crashed.release();
  });

  it('breaks a lock whose heartbeat is older than staleAfterMs', async () => {
    const start = Date.now();
    const hung = await lock.acquire('oltp', { holder: 'hung', now: () => new Date(start) });
    const later = () => new Date(start + 11 * 60 * 1000);
    const next = await lock.acquire('oltp', { holder: 'next', now: later, isProcessAlive: () => true });
    expect(next.record.holder).toBe('next');
    await next.release();
    await hung.release();
  });

  it('a holder whose lock was broken and taken over stops its heartbeat, never writing its record over the new one', async () => {
    // Every operation on the lock object after the takeover is the broken holder's heartbeat.
    const key = repositoryLayout.lockKey('oltp');
    const driver = new FsStoreDriver(root);
    let watching = false;
    const beats: string[] = [];
    const watched = aroundCalls(driver, key, ['read', 'write'], (method, call) => {
      if (watching) beats.push(method);
      return call();
    });
    // Long enough that the takeover (a few file operations) ends before the first beat: a beat
    // during it could see the lock absent and stop before anything is watched (seen in CI: a 20 ms
    // beat, and the spec waited for a beat that never came).
    const HEARTBEAT_MS = 1_000;
    const stale = await new RepositoryLock(watched).acquire('oltp', { holder: 'hung', heartbeatMs: HEARTBEAT_MS });
    const next = await new RepositoryLock(driver).acquire('oltp', { holder: 'next', isProcessAlive: () => false });
    watching = true;
    await pollUntil(
      async () => beats.length,
      (count) => count > 0,
      { what: "the broken holder's first heartbeat after the takeover", timeoutMs: 60_000, intervalMs: 50 },
    );
    // Three more beats' time: a heartbeat still running would have read or written again.
    await new Promise((resolve) => setTimeout(resolve, 3 * HEARTBEAT_MS));
    expect(beats).toEqual(['read']);
    expect((await new RepositoryLock(driver).read(key))?.holder).toBe('next');
    await stale.release();
    await next.release();
  });

  it('release waits for a heartbeat in flight, so the beat never writes the lock back after it is removed', async () => {
    const key = repositoryLayout.lockKey('oltp');
    const driver = new FsStoreDriver(root);
    let holdWrites = false;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let heldWrite: Promise<unknown> | null = null;
    const gated = aroundCalls(driver, key, ['write'], (_method, write) => {
      if (!holdWrites) return write();
      heldWrite = gate.then(write);
      return heldWrite;
    });
    const held = await new RepositoryLock(gated).acquire('oltp', { holder: 'releasing', heartbeatMs: 50 });
    holdWrites = true;
    await pollUntil(
      // A boolean, not the write itself: an async probe returning the promise would wait for it.
      async () => heldWrite !== null,
      (held) => held,
      { what: 'a heartbeat write held at the gate', timeoutMs: 60_000, intervalMs: 10 },
    );
    // The beat has read its lock and is writing it; the release starts now and the write lands a
    // moment later (a release that does not wait removes the lock first and the write recreates it).
    const release = held.release();
    setTimeout(openGate, 300);
    await release;
    await heldWrite;
    expect(await new RepositoryLock(driver).read(key)).toBeNull();
    const next = await new RepositoryLock(driver).acquire('oltp', { holder: 'next', isProcessAlive: () => true });
    await next.release();
  });

  it('release leaves a lock taken over by someone else alone', async () => {
    const stale = await lock.acquire('oltp', { holder: 'slow' });
    const next = await lock.acquire('oltp', { holder: 'next', isProcessAlive: () => false });
    await stale.release();
    await expect(lock.acquire('oltp', { holder: 'third', isProcessAlive: () => true })).rejects.toBeInstanceOf(LockHeldError);
    await next.release();
  });
});
