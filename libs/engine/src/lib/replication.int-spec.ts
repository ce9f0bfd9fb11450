import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest, Store, isArchiveStorageClass, requireStoreFeature } from '@rookery/core';
import { replicationEvents, EVENT_TYPES } from '@rookery/events';
import { BackupRepository, WalArchive, hashObject, replicationLayout } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { S3Region, TestCluster, acquireS3, freeLoopbackPort, s3StoreUrl, seedOltp, startCluster } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * Cross-region copies, storage classes and Object Lock against real stores: two S3Proxy servers
 * stand for the two regions, plus the filesystem. Each backup is a real pg_basebackup of a
 * throwaway cluster, each WAL file a real segment from its pg_wal.
 */
describe('replication, storage classes and object lock', () => {
  let source: TestCluster;
  let work: string;
  let walFiles: string[];
  const engines: RookeryEngine[] = [];
  const stores: Store[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-replication-'));
    source = await startCluster({ name: 'replication-source' });
    await seedOltp(source.url, { sizeMb: 4 });
    await source.query('select pg_switch_wal()');
    await source.query('create table more as select g from generate_series(1, 50000) g');
    await source.query('select pg_switch_wal()');
    const names = (await readdir(join(source.dataDir, 'pg_wal'))).filter((name) => /^[0-9A-F]{24}$/.test(name)).sort();
    // Copied aside: the backups' checkpoints recycle pg_wal.
    walFiles = [];
    for (const name of names.slice(0, 2)) {
      await copyFile(join(source.dataDir, 'pg_wal', name), join(work, name));
      walFiles.push(join(work, name));
    }
  }, 180_000);

  afterAll(async () => {
    for (const engine of engines) await engine.close();
    for (const store of stores) await store.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  async function s3Repository(region: S3Region, name: string): Promise<string> {
    const server = await acquireS3(region);
    const bucket = `${name}-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucket);
    return s3StoreUrl(server, bucket, 'rookery');
  }

  async function engineFor(repositories: string[], policy: Record<string, unknown> = {}): Promise<RookeryEngine> {
    const config = buildConfig({ repositories, tiers: { oltp: { pgUrl: source.url, policy } } }, 'test');
    const engine = await createEngine(config, { actor: 'test' });
    engines.push(engine);
    return engine;
  }

  function open(url: string): Store {
    const store = createStore(url);
    stores.push(store);
    return store;
  }

  async function backupWithWal(engine: RookeryEngine): Promise<BackupManifest> {
    const manifest = await engine.backup({ tier: 'oltp' });
    for (const file of walFiles) await engine.walPush('oltp', file);
    return manifest;
  }

  /** Every artifact and WAL file of the tier in `replica` reads back with the primary's sha256. */
  async function expectIdentical(primary: Store, replica: Store, manifest: BackupManifest): Promise<void> {
    const repository = new BackupRepository(replica);
    const copy = await repository.find('oltp', manifest.id);
    expect(copy.regions).toEqual([...manifest.regions, 'secondary']);
    expect(copy.artifacts).toEqual(manifest.artifacts);
    for (const artifact of manifest.artifacts) {
      expect((await hashObject(replica, repository.artifactKey(manifest, artifact.name))).sha256).toBe(artifact.sha256);
    }
    const primaryWal = await new WalArchive(primary).list('oltp');
    const replicaWal = await new WalArchive(replica).list('oltp');
    expect(replicaWal.map((file) => file.key)).toEqual(primaryWal.map((file) => file.key));
    for (const file of primaryWal) expect(await hashObject(replica, file.key)).toEqual(await hashObject(primary, file.key));
  }

  it('copies backup and WAL s3 → s3 (two servers), verified, recorded in both regions, with events', async () => {
    const primaryUrl = await s3Repository('primary', 'repl-a');
    const secondaryUrl = await s3Repository('secondary', 'repl-b');
    const engine = await engineFor([primaryUrl, secondaryUrl]);
    const manifest = await backupWithWal(engine);

    const run = await engine.replicate('oltp');
    const [region] = run.regions;
    expect(region.error).toBeUndefined();
    expect(region.backups.map((backup) => [backup.backupId, backup.outcome])).toEqual([[manifest.id, 'copied']]);
    expect(region.wal?.copied).toHaveLength(walFiles.length);
    await expectIdentical(open(primaryUrl), open(secondaryUrl), manifest);

    const status = await engine.replicationStatus('oltp');
    expect(status.regions[0].backups.map((backup) => backup.status)).toEqual(['copied']);
    expect(status.regions[0].wal).toMatchObject({ missing: 0, lagSeconds: 0, primaryFiles: walFiles.length });
    expect(await open(primaryUrl).stat(replicationLayout.copyMarkerKey(manifest, 'secondary'))).not.toBeNull();

    const events = replicationEvents(run, 'rookery/test');
    expect(events.map((event) => event.type)).toEqual(['dev.rookery.replication.copied', 'dev.rookery.replication.copied']);
    for (const event of events) EVENT_TYPES[event.type].schema.parse(event.data);

    // A second run finds everything current and copies nothing.
    const again = await engine.replicate('oltp');
    expect(again.regions[0].backups[0].outcome).toBe('current');
    expect(again.regions[0].wal?.copied).toHaveLength(0);
  }, 180_000);

  it('detects a corrupted copy in the secondary (same size, flipped byte) and copies it again', async () => {
    const primaryUrl = await s3Repository('primary', 'repl-c');
    const secondaryUrl = await s3Repository('secondary', 'repl-d');
    const engine = await engineFor([primaryUrl, secondaryUrl]);
    const manifest = await backupWithWal(engine);
    await engine.replicate('oltp');

    const secondary = open(secondaryUrl);
    const artifactKey = new BackupRepository(secondary).artifactKey(manifest, manifest.artifacts[0].name);
    const [walFile] = await new WalArchive(secondary).list('oltp');
    for (const key of [artifactKey, walFile.key]) await secondary.write(key, flipByte(await readAll(secondary, key)));

    // Sizes match, so a plain run does not notice; verification re-reads and hashes every copy.
    const plain = await engine.replicate('oltp');
    expect(plain.regions[0].backups[0].outcome).toBe('current');
    const verified = await engine.replicate('oltp', { verify: true });
    expect(verified.regions[0].backups[0]).toMatchObject({ outcome: 'copied', repaired: [manifest.artifacts[0].name] });
    expect(verified.regions[0].wal?.repaired).toEqual([walFile.key]);
    await expectIdentical(open(primaryUrl), secondary, manifest);
  }, 180_000);

  it('copies fs → s3, and the secondary alone verifies the backup', async () => {
    const primaryUrl = `file://${join(work, 'fs-primary')}`;
    const secondaryUrl = await s3Repository('secondary', 'repl-e');
    const engine = await engineFor([primaryUrl, secondaryUrl]);
    const manifest = await backupWithWal(engine);
    const run = await engine.replicate('oltp');
    expect(run.regions[0].backups[0].outcome).toBe('copied');
    await expectIdentical(open(primaryUrl), open(secondaryUrl), manifest);

    const fromSecondary = await engineFor([secondaryUrl]);
    await expect(fromSecondary.verify('oltp', manifest.id)).resolves.toMatchObject({ ok: true, backup: manifest.id });
  }, 180_000);

  it('records a failed copy when the secondary is unreachable, shows it, and retries it', async () => {
    const primaryUrl = await s3Repository('primary', 'repl-f');
    const secondaryUrl = await s3Repository('secondary', 'repl-g');
    const closedPort = await freeLoopbackPort();
    const unreachableUrl = secondaryUrl.replace(/endpoint=[^&]+/, `endpoint=${encodeURIComponent(`http://127.0.0.1:${closedPort}`)}`);
    expect(unreachableUrl).not.toBe(secondaryUrl);

    const down = await engineFor([primaryUrl, unreachableUrl]);
    const manifest = await backupWithWal(down);
    const failed = await down.replicate('oltp');
    expect(failed.regions[0].error?.code).toBe('STORAGE_UNAVAILABLE');
    expect(failed.regions[0].backups).toMatchObject([{ backupId: manifest.id, outcome: 'failed' }]);
    const lagging = await down.replicationStatus('oltp');
    expect(lagging.regions[0].backups[0]).toMatchObject({ status: 'failed', error: { code: 'STORAGE_UNAVAILABLE' } });
    expect(lagging.regions[0].error?.code).toBe('STORAGE_UNAVAILABLE');
    expect(replicationEvents(failed, 'rookery/test').map((event) => event.type)).toEqual([
      'dev.rookery.replication.failed',
      'dev.rookery.replication.failed',
    ]);

    // The region is back (same region name, reachable endpoint): the next run copies what failed.
    const up = await engineFor([primaryUrl, secondaryUrl]);
    const retried = await up.replicate('oltp');
    expect(retried.regions[0].backups[0].outcome).toBe('copied');
    const status = await up.replicationStatus('oltp');
    expect(status.regions[0].backups[0].status).toBe('copied');
    expect(status.regions[0].wal?.missing).toBe(0);
  }, 180_000);

  it('moves artifacts to a colder class by age on the real server, and they still round-trip', async () => {
    const primaryUrl = await s3Repository('primary', 'repl-h');
    const engine = await engineFor([primaryUrl], {
      storageClass: 'STANDARD_IA',
      transitions: [{ afterDays: 30, storageClass: 'GLACIER' }],
    });
    const manifest = await engine.backup({ tier: 'oltp' });
    const store = open(primaryUrl);
    const key = new BackupRepository(store).artifactKey(manifest, manifest.artifacts[0].name);
    // The server-compressed tar and PostgreSQL's backup_manifest beside it move together; the page
    // index of the tier's newest backup stays (the next block incremental reads it).
    const manifestKey = new BackupRepository(store).artifactKey(manifest, 'backup_manifest.zst');
    expect(manifest.artifacts.map((artifact) => artifact.name)).toEqual(['base.tar.zst', 'base.pgidx', 'backup_manifest.zst']);
    expect((await store.stat(key))?.storageClass).toBe('STANDARD_IA');

    const young = await engine.transition('oltp');
    expect(young.moves).toEqual([]);
    const later = new Date(Date.parse(manifest.finishedAt) + 31 * 24 * 3600 * 1000);
    const planned = await engine.transition('oltp', { dryRun: true, now: later });
    expect(planned.moves).toMatchObject([
      { key, from: 'STANDARD_IA', to: 'GLACIER', ageDays: 31 },
      { key: manifestKey, from: 'STANDARD_IA', to: 'GLACIER', ageDays: 31 },
    ]);
    expect((await store.stat(key))?.storageClass).toBe('STANDARD_IA');

    const done = await engine.transition('oltp', { now: later });
    expect(done.moves).toMatchObject([
      { key, done: true },
      { key: manifestKey, done: true },
    ]);
    // S3Proxy's filesystem backend keeps jclouds tiers: GLACIER comes back as its archive tier.
    expect(isArchiveStorageClass((await store.stat(key))?.storageClass)).toBe(true);
    const listed = [];
    for await (const object of store.list(key)) listed.push(object.storageClass);
    expect(isArchiveStorageClass(listed[0])).toBe(true);
    expect((await hashObject(store, key)).sha256).toBe(manifest.artifacts[0].sha256);

    // S3Proxy serves archived objects at once: the probe read finds it readable, no restore is asked for.
    await expect(engine.storageClasses.ensureReadable([manifest])).resolves.toEqual({ restored: [] });
    await expect(engine.verify('oltp', manifest.id)).resolves.toMatchObject({ ok: true, backup: manifest.id });
    expect((await engine.transition('oltp', { now: later })).moves).toEqual([]);
  }, 180_000);

  it('reports that object lock is not available here, instead of assuming immutability', async () => {
    const primaryUrl = await s3Repository('primary', 'repl-i');
    const fsUrl = `file://${join(work, 'fs-lock')}`;
    const engine = await engineFor([primaryUrl, fsUrl]);
    const statuses = await engine.objectLockStatus('oltp');
    expect(statuses).toEqual([
      expect.objectContaining({ region: 'primary', supported: false, detail: expect.stringMatching(/no object lock enabled/) }),
      expect.objectContaining({
        region: 'secondary',
        supported: false,
        detail: expect.stringMatching(/^file:\/\/.* has no object lock/),
      }),
    ]);
    const manifest = await engine.backup({ tier: 'oltp' });
    const store = open(primaryUrl);
    // Nothing was locked (the bucket cannot), and the store says so per object too.
    expect(await new BackupRepository(store).lockArtifacts(manifest)).toBe(false);
    expect((await store.stat(new BackupRepository(store).artifactKey(manifest, manifest.artifacts[0].name)))?.retention).toBeUndefined();
    await expect(requireStoreFeature(store, 'objectLock', 'lock objects').retain('oltp/x', new Date())).rejects.toMatchObject({
      code: 'STORAGE_UNSUPPORTED',
    });
  }, 180_000);
});

async function readAll(store: Store, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function flipByte(bytes: Buffer): Buffer {
  const copy = Buffer.from(bytes);
  copy[Math.floor(copy.length / 2)] ^= 0xff;
  return copy;
}
