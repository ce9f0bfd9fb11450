import { Readable } from 'node:stream';
import { ObjectInfo, RequestOptions, Store, StorageNotFoundError } from '@rookery/core';
import { BackupRepository, RepositoryLock, repositoryLayout } from '@rookery/repository';
import { cleanUpFailedBackup } from './backup-cleanup';

const BACKUP = { tier: 'oltp' as const, id: '20261207T010000Z-oltp', startedAt: '2026-12-07T01:00:00.000Z' };
const FOLDER = repositoryLayout.backupFolder('oltp', BACKUP.id, new Date(BACKUP.startedAt));

/**
 * An in-memory store that either answers or, once `silent`, never does (as an S3 endpoint that
 * stalled): each request then waits until its caller's signal gives up on it.
 */
function memoryStore(): Store & { objects: Map<string, Buffer>; silent: boolean } {
  const objects = new Map<string, Buffer>();
  const store = {
    description: 's3://bucket/repo',
    objects,
    silent: false,
    async answer(options: RequestOptions = {}): Promise<void> {
      if (!store.silent) return;
      // As the SDK does: a request whose signal already fired is not sent.
      options.signal?.throwIfAborted();
      await new Promise((_resolve, reject) => options.signal?.addEventListener('abort', () => reject(options.signal?.reason)));
    },
    async stat(key: string, options?: RequestOptions): Promise<ObjectInfo | null> {
      await store.answer(options);
      const body = objects.get(key);
      return body ? { key, size: body.length, modifiedAt: new Date() } : null;
    },
    async *list(prefix: string, options?: RequestOptions): AsyncIterable<ObjectInfo> {
      await store.answer(options);
      for (const [key, body] of objects) if (key.startsWith(prefix)) yield { key, size: body.length, modifiedAt: new Date() };
    },
    async read(key: string, options?: RequestOptions): Promise<Readable> {
      await store.answer(options);
      const body = objects.get(key);
      if (!body) throw new StorageNotFoundError(key);
      return Readable.from([body]);
    },
    async write(key: string, body: Buffer, options: { ifAbsent?: boolean } = {}): Promise<ObjectInfo> {
      if (options.ifAbsent && objects.has(key)) throw new Error('exists');
      objects.set(key, body);
      return { key, size: body.length, modifiedAt: new Date() };
    },
    async remove(key: string, options?: RequestOptions): Promise<void> {
      await store.answer(options);
      objects.delete(key);
    },
  };
  return store as unknown as Store & { objects: Map<string, Buffer>; silent: boolean };
}

async function failedBackup(store: ReturnType<typeof memoryStore>) {
  const lock = await new RepositoryLock(store).acquire('oltp', { holder: 'rookery backup (test)' });
  store.objects.set(`${FOLDER}base.tar.zst`, Buffer.from('partial'));
  return lock;
}

describe('cleanUpFailedBackup', () => {
  it('removes what the backup wrote and its lock, and warns of nothing', async () => {
    const store = memoryStore();
    const lock = await failedBackup(store);
    const warnings: string[] = [];
    await cleanUpFailedBackup(
      new BackupRepository(store),
      { tier: 'oltp', lock, backup: BACKUP },
      { onWarning: (message) => warnings.push(message) },
    );
    expect({ objects: [...store.objects.keys()], warnings }).toEqual({ objects: [], warnings: [] });
  });

  it('gives up on a silent store at its deadline and names what it left: the partial objects and the lock', async () => {
    const store = memoryStore();
    const lock = await failedBackup(store);
    store.silent = true;
    const warnings: string[] = [];
    await cleanUpFailedBackup(
      new BackupRepository(store),
      { tier: 'oltp', lock, backup: BACKUP },
      { onWarning: (message) => warnings.push(message), deadlineMs: 50 },
    );
    expect(warnings).toEqual([
      `the partial objects of failed backup '${BACKUP.id}' under ${FOLDER} and the lock of tier 'oltp' could not be removed from s3://bucket/repo: ` +
        'the store did not answer within 0 s; they have no manifest, so they are never restored, and rookery expire removes them once they are a day old; ' +
        'the next backup takes the lock over once this process has exited (on this host), or when it is 10 minutes without a heartbeat',
    ]);
    expect([...store.objects.keys()].sort()).toEqual([`${FOLDER}base.tar.zst`, repositoryLayout.lockKey('oltp')].sort());
  });

  it('a failure before the backup had a name leaves only the lock to release', async () => {
    const store = memoryStore();
    const lock = await new RepositoryLock(store).acquire('oltp', { holder: 'rookery backup (test)' });
    const warnings: string[] = [];
    await cleanUpFailedBackup(new BackupRepository(store), { tier: 'oltp', lock }, { onWarning: (message) => warnings.push(message) });
    expect({ objects: [...store.objects.keys()], warnings }).toEqual({ objects: [], warnings: [] });
  });
});
