import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, open, readdir, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { ArtifactRecord, BackupManifest, Store, isArchiveStorageClass } from '@rookery/core';
import { BackupRepository, hashObject, repositoryLayout } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import {
  S3Region,
  TestCluster,
  acquireS3,
  createTablespaces,
  diffTableChecksums,
  freeLoopbackPort,
  runRookery,
  s3StoreUrl,
  startCluster,
  tableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

jest.setTimeout(300_000);

const DAY_MS = 24 * 3600 * 1000;
const DATABASES = ['postgres', 'inspace'] as const;
type Checksums = Record<(typeof DATABASES)[number], Awaited<ReturnType<typeof tableChecksums>>>;

/** Every file under `dir`, relative to it, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const path of await readdir(dir, { recursive: true })) if ((await lstat(join(dir, path))).isFile()) files.push(path);
  return files.sort();
}

function tablespaceArtifacts(manifest: BackupManifest): ArtifactRecord[] {
  return manifest.artifacts.filter((artifact) => artifact.kind === 'tablespace-tar');
}

/**
 * A backup's tablespace artifacts go wherever its other artifacts go, against real stores and a
 * real cluster with two tablespaces (the bigger one holding rows that compress poorly): copied
 * to the secondary region (a second S3 server) and restored from there identical, moved to a
 * colder storage class, removed by expire; a flipped byte in one fails the restore naming it and
 * leaves the data directory and every tablespace directory empty; a backup whose tablespace
 * write fails (a full file system) leaves nothing behind.
 */
describe('tablespace artifacts in replication, storage classes, expire and faults', () => {
  let work: string;
  let source: TestCluster;
  let before: Checksums;
  const engines: RookeryEngine[] = [];
  const stores: Store[] = [];
  const restored: { engine: RookeryEngine; dir: string }[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-tablespace-artifacts-'));
    await chmod(work, 0o711);
    source = await startCluster({ name: 'tablespace-artifacts' });
    await createTablespaces(source, join(work, 'disks'), ['fast', 'cold']);
    // ~30 MiB of hexadecimal rows in 'fast' (about 19 MiB stored: well over the rest of a backup,
    // its WAL included, which the full-store case below needs), an index in 'cold'.
    await source.query(
      `create table hot (id int primary key, note text not null) tablespace fast;
       insert into hot select g, md5(g::text) || md5(random()::text) || md5(random()::text) from generate_series(1, 330000) g;
       create index hot_note_prefix on hot (left(note, 8)) tablespace cold;
       create table plain_rows as select g as id, repeat('p', 40) as payload from generate_series(1, 5000) g;`,
    );
    await source.query('create database inspace tablespace cold');
    await source.query(
      'create table docs as select g as id, repeat(md5(g::text), 10) as body from generate_series(1, 3000) g',
      [],
      'inspace',
    );
    before = await checksums((database) => source.urlFor(database));
  }, 300_000);

  afterAll(async () => {
    for (const { engine, dir } of restored) await engine.stopRestored(dir).catch(() => undefined);
    for (const engine of engines) await engine.close();
    for (const store of stores) await store.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  async function checksums(urlFor: (database: string) => string): Promise<Checksums> {
    const result = {} as Checksums;
    for (const database of DATABASES) result[database] = await tableChecksums(urlFor(database));
    return result;
  }

  async function engineFor(repositories: string[], policy: Record<string, unknown> = {}): Promise<RookeryEngine> {
    const config = buildConfig({ repositories, tiers: { oltp: { pgUrl: source.url, policy } } }, 'test');
    const engine = await createEngine(config, { actor: 'test' });
    engines.push(engine);
    return engine;
  }

  async function s3Repository(region: S3Region, name: string): Promise<string> {
    const server = await acquireS3(region);
    const bucket = `${name}-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucket);
    return s3StoreUrl(server, bucket, 'rookery');
  }

  function openStore(url: string): Store {
    const store = createStore(url);
    stores.push(store);
    return store;
  }

  /** A backup whose manifest lists both tablespaces, each as its own artifact. */
  async function backupWithTablespaces(engine: RookeryEngine): Promise<BackupManifest> {
    const manifest = await engine.backup({ tier: 'oltp' });
    expect(tablespaceArtifacts(manifest).map((artifact) => artifact.tablespace?.name)).toEqual(['fast', 'cold']);
    return manifest;
  }

  it('copies every tablespace artifact to the secondary region, and the secondary alone restores every table identical', async () => {
    const primaryUrl = await s3Repository('primary', 'ts-repl-a');
    const secondaryUrl = await s3Repository('secondary', 'ts-repl-b');
    const engine = await engineFor([primaryUrl, secondaryUrl]);
    const manifest = await backupWithTablespaces(engine);

    const run = await engine.replicate('oltp');
    expect(run.regions[0].error).toBeUndefined();
    expect(run.regions[0].backups).toMatchObject([{ backupId: manifest.id, outcome: 'copied' }]);
    const secondary = openStore(secondaryUrl);
    const copy = await new BackupRepository(secondary).find('oltp', manifest.id);
    expect(copy.artifacts).toEqual(manifest.artifacts);
    for (const artifact of tablespaceArtifacts(manifest)) {
      expect((await hashObject(secondary, engine.artifactKey(manifest, artifact.name))).sha256).toBe(artifact.sha256);
    }

    // The primary region is gone: only the secondary's store is configured.
    const fromSecondary = await engineFor([secondaryUrl]);
    await expect(fromSecondary.verify('oltp', manifest.id)).resolves.toMatchObject({ ok: true });
    const dir = join(work, 'restored-secondary');
    const result = await fromSecondary.restore({
      tier: 'oltp',
      backup: manifest.id,
      to: dir,
      tablespaces: { all: join(work, 'secondary-tablespaces') },
    });
    expect(result.tablespaces.map((tablespace) => tablespace.restoredTo)).toEqual(
      tablespaceArtifacts(manifest).map((artifact) => join(work, 'secondary-tablespaces', String(artifact.tablespace?.oid))),
    );
    const port = await freeLoopbackPort();
    await fromSecondary.startRestored(dir, { port });
    restored.push({ engine: fromSecondary, dir });
    const after = await checksums((database) => `postgres://postgres@127.0.0.1:${port}/${database}`);
    for (const database of DATABASES)
      expect({ database, diff: diffTableChecksums(before[database], after[database]) }).toEqual({ database, diff: [] });
    expect(Object.keys(after.postgres)).toEqual(expect.arrayContaining(['public.hot', 'public.plain_rows']));
    await fromSecondary.stopRestored(dir);
  });

  it('moves the tablespace artifacts to a colder storage class with the others, and they still verify', async () => {
    const primaryUrl = await s3Repository('primary', 'ts-class');
    const engine = await engineFor([primaryUrl], {
      storageClass: 'STANDARD_IA',
      transitions: [{ afterDays: 30, storageClass: 'GLACIER' }],
    });
    const manifest = await backupWithTablespaces(engine);
    const later = new Date(Date.parse(manifest.finishedAt) + 31 * DAY_MS);
    const done = await engine.transition('oltp', { now: later });
    // Every artifact but the page indexes of the tier's newest backup, which its next block
    // incremental reads (storage-class.service keeps them readable).
    expect(done.moves.map((move) => [move.artifact, move.done])).toEqual(
      manifest.artifacts.filter((artifact) => artifact.kind !== 'page-index').map((artifact) => [artifact.name, true]),
    );
    const store = openStore(primaryUrl);
    for (const artifact of tablespaceArtifacts(manifest)) {
      expect(isArchiveStorageClass((await store.stat(engine.artifactKey(manifest, artifact.name)))?.storageClass)).toBe(true);
    }
    await expect(engine.verify('oltp', manifest.id)).resolves.toMatchObject({ ok: true });
  });

  it('expire removes an expired backup’s tablespace artifacts with the rest of it, and keeps the newest backup whole', async () => {
    const repoDir = join(work, 'repo-expire');
    const engine = await engineFor([`file://${repoDir}`]);
    const old = await backupWithTablespaces(engine);
    const kept = await backupWithTablespaces(engine);
    const oldKeys = old.artifacts.map((artifact) => engine.artifactKey(old, artifact.name));
    for (const key of oldKeys) expect(existsSync(join(repoDir, key))).toBe(true);

    const retentionDays = engine.config.tiers.oltp.policy.retentionDays;
    const result = await engine.expire({ tier: 'oltp', now: new Date(Date.now() + (retentionDays + 2) * DAY_MS) });
    expect(result.deleted.backups).toEqual([old.id]);
    for (const key of oldKeys) expect(existsSync(join(repoDir, key))).toBe(false);
    expect(await filesUnder(join(repoDir, repositoryLayout.backupFolder('oltp', old.id, new Date(old.startedAt))))).toEqual([]);
    expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toEqual([kept.id]);
    await expect(engine.verify('oltp', kept.id)).resolves.toMatchObject({ ok: true });
  });

  it('a byte flipped in a stored tablespace artifact: verify names it, the restore fails naming it and leaves every directory empty', async () => {
    const repoDir = join(work, 'repo-flipped');
    const engine = await engineFor([`file://${repoDir}`]);
    const manifest = await backupWithTablespaces(engine);
    // The last tablespace restored: the data directory and the first tablespace are written by then.
    const damaged = tablespaceArtifacts(manifest).at(-1) as ArtifactRecord;
    const handle = await open(join(repoDir, engine.artifactKey(manifest, damaged.name)), 'r+');
    try {
      const position = Math.floor(damaged.storedBytes / 2);
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, position);
      byte[0] ^= 0xff;
      await handle.write(byte, 0, 1, position);
    } finally {
      await handle.close();
    }

    const verified = await engine.verify('oltp', manifest.id);
    expect(verified.ok).toBe(false);
    expect(verified.artifacts.filter((artifact) => !artifact.ok).map((artifact) => artifact.name)).toEqual([damaged.name]);

    const dir = join(work, 'restored-flipped');
    const targets = { fast: join(work, 'flipped-fast'), cold: join(work, 'flipped-cold') };
    await expect(engine.restore({ tier: 'oltp', backup: manifest.id, to: dir, tablespaces: { map: targets } })).rejects.toThrow(
      new RegExp(`'${damaged.name.replace(/\./g, '\\.')}'`),
    );
    for (const target of [dir, targets.fast, targets.cold])
      expect({ target, entries: await readdir(target) }).toEqual({ target, entries: [] });
  });

  describe('a tablespace artifact that cannot be written (a full file system)', () => {
    let mount: string;

    beforeAll(() => {
      mount = join(work, 'full');
      spawnSync('mkdir', ['-p', mount]);
      const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', mount], { encoding: 'utf8' });
      if (mounted.status !== 0) {
        throw new Error(
          `this case mounts a small tmpfs to fill it (as root): mount failed: ${mounted.stderr.trim() || mounted.error?.message}`,
        );
      }
    });

    afterAll(() => {
      if (mount) spawnSync('umount', ['-l', mount]);
    });

    let storeDir: string;
    let sizing: BackupManifest;
    let fast: ArtifactRecord;

    /** Room on the mount for everything but the tablespace 'fast' (halfway between the two sizes). */
    async function fillBesideStore(): Promise<string> {
      const filler = join(mount, 'filler');
      const others = sizing.storedBytes - fast.storedBytes;
      const { bavail, bsize } = await statfs(mount);
      let remaining = Math.max(0, bavail * bsize - Math.round((others + fast.storedBytes) / 2));
      const handle = await open(filler, 'w');
      try {
        const zeros = Buffer.alloc(1024 * 1024);
        while (remaining > 0) remaining -= (await handle.write(zeros, 0, Math.min(zeros.length, remaining))).bytesWritten;
      } finally {
        await handle.close();
      }
      return filler;
    }
    /**
     * The tablespace's write fills the store; the base tar's, which starts as soon as the server
     * has sent the tablespaces, may meet the full store first while the tablespace's last bytes
     * are still being written: either write is named, with ENOSPC.
     */
    const WRITE_FAILED =
      /^(rookery: )?cannot write artifact '(tablespace-\d+|base)\.tar\.zst' of backup \S+ to file:\/\/.*no space left on device \(ENOSPC\)/;

    beforeAll(async () => {
      storeDir = join(mount, 'store');
      await mkdir(storeDir);
      // Measured on a roomy store first: the tablespace 'fast' holds far more than the rest.
      sizing = await backupWithTablespaces(await engineFor([`file://${join(work, 'repo-sizing')}`]));
      fast = tablespaceArtifacts(sizing).find((artifact) => artifact.tablespace?.name === 'fast') as ArtifactRecord;
      expect(fast.storedBytes).toBeGreaterThan(sizing.storedBytes - fast.storedBytes + 4 * 1024 * 1024);
    });

    it('fails the backup naming the write that met the full store, and leaves no manifest nor any object', async () => {
      const engine = await engineFor([`file://${storeDir}`]);
      const filler = await fillBesideStore();
      try {
        await expect(engine.backup({ tier: 'oltp' })).rejects.toThrow(WRITE_FAILED);
        expect(await filesUnder(storeDir)).toEqual([]);
        expect((await engine.list('oltp')).backups).toEqual([]);
      } finally {
        await rm(filler);
      }
    });

    it('the rookery command exits non-zero naming the write that met the full store and ENOSPC, and leaves nothing', async () => {
      const filler = await fillBesideStore();
      try {
        const run = runRookery(['backup', '--tier', 'oltp', '--repo', `file://${storeDir}`, '--pg-url', source.url]);
        // One line naming the artifact whose write met the full store, and nothing left in the store.
        expect({ status: run.status, stderr: run.stderr, files: await filesUnder(storeDir) }).toEqual({
          status: 1,
          stderr: expect.stringMatching(WRITE_FAILED),
          files: [],
        });
        expect(run.stderr.trim().split('\n')).toHaveLength(1);
      } finally {
        await rm(filler);
      }
    });
  });
});
