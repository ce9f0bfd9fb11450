import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { ConfigError, RestoreTargetError, parseRecoveryTarget } from '@rookery/core';
import { lookupOsUser } from '@rookery/postgres';
import {
  TestCluster,
  acquireS3,
  diffTableChecksums,
  freeLoopbackPort,
  startCluster,
  switchAndWaitArchived,
  tableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

jest.setTimeout(300_000);

const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const DATABASES = ['postgres', 'inspace'] as const;
type Checksums = Record<(typeof DATABASES)[number], Awaited<ReturnType<typeof tableChecksums>>>;

/**
 * A cluster as users build one: two user tablespaces outside the data directory (a table in one,
 * its index in the other, an index of an ordinary table in the first), and a database created in
 * the second. Backed up over both base-backup paths (server-compressed, and plain tars compressed
 * here), to the filesystem and S3 stores, with and without encryption; restored remapped, to the
 * original directories, and to a point between two writes; every table of every database compared.
 */
describe('tablespaces in physical backups', () => {
  let work: string;
  let source: TestCluster;
  let repoUrl: string;
  let fast: string;
  let cold: string;
  let before: Checksums;
  let owner: { uid: number; gid: number };
  const started: { engine: RookeryEngine; dir: string }[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-tablespaces-'));
    await chmod(work, 0o711);
    owner = lookupOsUser('postgres');
    // archive_command runs as the server's account: it writes the repository's wal/ folder.
    const repoDir = join(work, 'repo');
    await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')]) await chown(dir, owner.uid, owner.gid);
    repoUrl = `file://${repoDir}`;
    const archiveCommand = `${process.execPath} ${bin} wal-push %p --tier oltp --repo ${repoUrl}`;
    source = await startCluster({ name: 'tablespaces', settings: { archive_mode: 'on', archive_command: archiveCommand } });
    fast = join(work, 'disks', 'fast');
    cold = join(work, 'disks', 'cold');
    await mkdir(join(work, 'disks'), { mode: 0o711 });
    for (const dir of [fast, cold]) {
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, owner.uid, owner.gid);
    }
    await source.query(`create tablespace fast location '${fast}'`);
    await source.query(`create tablespace cold location '${cold}'`);
    await source.query(
      `create table hot (id int primary key, note text not null) tablespace fast;
       create index hot_note on hot (note) tablespace cold;
       insert into hot select g, md5(g::text) || repeat('h', 100) from generate_series(1, 120000) g;
       create table plain_rows (id int primary key, payload text);
       create index plain_payload on plain_rows (payload) tablespace fast;
       insert into plain_rows select g, repeat(md5(g::text), 3) from generate_series(1, 20000) g;
       create table marks (id int primary key, note text) tablespace fast;`,
    );
    await source.query('create database inspace tablespace cold');
    await source.query(
      `create table docs (id int primary key, body text);
       insert into docs select g, repeat(md5(g::text), 20) from generate_series(1, 8000) g;`,
      [],
      'inspace',
    );
    before = await checksums((database) => source.urlFor(database));
    await switchAndWaitArchived(source);
  }, 300_000);

  afterAll(async () => {
    for (const { engine, dir } of started) await engine.stopRestored(dir).catch(() => undefined);
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  async function checksums(urlFor: (database: string) => string): Promise<Checksums> {
    const result = {} as Checksums;
    for (const database of DATABASES) result[database] = await tableChecksums(urlFor(database));
    return result;
  }

  async function engineFor(
    repository: string,
    extra: Record<string, unknown> = {},
    env: Record<string, string> = {},
  ): Promise<RookeryEngine> {
    const config = buildConfig({ repositories: [repository], tiers: { oltp: { pgUrl: source.url } }, ...extra }, 'test', {}, env);
    return createEngine(config, { actor: 'test', selfCommand: [process.execPath, bin, '--repo', repository] });
  }

  async function s3Repository(bucket: string): Promise<string> {
    const s3 = await acquireS3('primary');
    await s3.createBucket(bucket);
    return `s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
  }

  /** Starts the restored directory and compares every table of every database with `expected`. */
  async function startAndCompare(engine: RookeryEngine, dir: string, expected: Checksums): Promise<void> {
    const port = await freeLoopbackPort();
    await engine.startRestored(dir, { port });
    started.push({ engine, dir });
    const after = await checksums((database) => `postgres://postgres@127.0.0.1:${port}/${database}`);
    for (const database of DATABASES)
      expect({ database, diff: diffTableChecksums(expected[database], after[database]) }).toEqual({ database, diff: [] });
    expect(Object.keys(after.postgres)).toEqual(expect.arrayContaining(['public.hot', 'public.plain_rows']));
    expect(Object.keys(after.inspace)).toEqual(['public.docs']);
    await engine.stopRestored(dir);
  }

  const variants = [
    { store: 'fs', location: 'server', encrypted: false, map: 'all', directWrites: true },
    { store: 's3', location: 'client', encrypted: true, map: 'each', directWrites: true },
    { store: 's3', location: 'server', encrypted: true, map: 'each', directWrites: false },
    { store: 'fs', location: 'client', encrypted: false, map: 'all', directWrites: false },
  ] as const;

  it.each(variants)(
    'backs up every tablespace as an artifact and restores identical: $store store, compressed by $location, encrypted=$encrypted, mapped $map, directWrites=$directWrites',
    async (variant) => {
      const name = `${variant.store}-${variant.location}-${variant.encrypted}-${variant.directWrites}`;
      const repository = variant.store === 'fs' ? `file://${join(work, `repo-${name}`)}` : await s3Repository(`ts-${name}`);
      const engine = await engineFor(
        repository,
        {
          compression: { codec: 'zstd', level: 1, location: variant.location },
          restore: { directWrites: variant.directWrites },
          ...(variant.encrypted ? { encryption: { keyEnv: 'TEST_ROOKERY_KEY' } } : {}),
        },
        { TEST_ROOKERY_KEY: randomBytes(32).toString('hex') },
      );
      try {
        const manifest = await engine.backup({ tier: 'oltp' });
        const tablespaceArtifacts = manifest.artifacts.filter((artifact) => artifact.kind === 'tablespace-tar');
        expect(tablespaceArtifacts.map((artifact) => artifact.tablespace)).toEqual([
          { oid: expect.any(Number), name: 'fast', location: fast },
          { oid: expect.any(Number), name: 'cold', location: cold },
        ]);
        for (const artifact of tablespaceArtifacts) {
          expect(artifact.name).toBe(`tablespace-${artifact.tablespace?.oid}.tar.zst${variant.encrypted ? '.enc' : ''}`);
          expect(artifact.bytes).toBeGreaterThan(artifact.storedBytes);
          expect(artifact.encryption.algorithm).toBe(variant.encrypted ? 'aes-256-gcm' : 'none');
        }
        expect((await engine.verify('oltp', manifest.id)).ok).toBe(true);

        const dir = join(work, `restored-${name}`);
        const moved = join(work, `moved-${name}`);
        const tablespaces =
          variant.map === 'all' ? { all: moved } : { map: { [fast]: join(moved, 'fast-disk'), cold: join(moved, 'cold-disk') } };
        const result = await engine.restore({ tier: 'oltp', backup: manifest.id, to: dir, tablespaces });
        const oidOf = (tablespace: string) =>
          String(tablespaceArtifacts.find((artifact) => artifact.tablespace?.name === tablespace)?.tablespace?.oid);
        const expectedDirs =
          variant.map === 'all'
            ? { fast: join(moved, oidOf('fast')), cold: join(moved, oidOf('cold')) }
            : { fast: join(moved, 'fast-disk'), cold: join(moved, 'cold-disk') };
        expect(result.tablespaces.map((tablespace) => [tablespace.name, tablespace.restoredTo])).toEqual([
          ['fast', expectedDirs.fast],
          ['cold', expectedDirs.cold],
        ]);
        // pg_tblspc links to the new directories, owned by the server's account like the directories (0700).
        for (const [tablespace, restoredTo] of Object.entries(expectedDirs)) {
          const link = join(dir, 'pg_tblspc', oidOf(tablespace));
          expect(await readlink(link)).toBe(restoredTo);
          expect((await lstat(link)).uid).toBe(owner.uid);
          const info = await stat(restoredTo);
          expect({ uid: info.uid, mode: info.mode & 0o777 }).toEqual({ uid: owner.uid, mode: 0o700 });
          expect((await readdir(restoredTo)).some((entry) => entry.startsWith('PG_15_'))).toBe(true);
        }
        // The archive's tablespace_map (which PostgreSQL would follow to the original directories) is gone.
        expect(await readdir(dir)).not.toContain('tablespace_map');
        await startAndCompare(engine, dir, before);
      } finally {
        await engine.close();
      }
    },
  );

  it('restores to a point between two writes into a tablespace (PITR), remapped', async () => {
    const engine = await engineFor(repoUrl);
    try {
      await engine.backup({ tier: 'oltp' });
      await source.query("insert into marks values (1, 'before the restore point')");
      await source.query("select pg_create_restore_point('between-writes')");
      await source.query("insert into marks values (2, 'after the restore point')");
      await switchAndWaitArchived(source);
      const dir = join(work, 'restored-pitr');
      const port = await freeLoopbackPort();
      const result = await engine.restore({
        tier: 'oltp',
        backup: 'latest',
        to: dir,
        tablespaces: { all: join(work, 'pitr-tablespaces') },
        target: parseRecoveryTarget({ targetName: 'between-writes' }),
        archiveMode: 'off',
        start: true,
        port,
      });
      started.push({ engine, dir });
      expect(result.recovery?.outcome).toBeDefined();
      const restored = await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`);
      const sourceNow = await tableChecksums(source.url);
      expect(restored['public.marks']?.rows).toBe(1);
      expect(sourceNow['public.marks']?.rows).toBe(2);
      // Everything else as at the backup: the other tables did not change.
      for (const table of ['public.hot', 'public.plain_rows']) expect(restored[table]).toEqual(before.postgres[table]);
      await engine.stopRestored(dir);
    } finally {
      await engine.close();
    }
  });

  it('refuses, before writing anything, a mapping that names no tablespace of the backup, a tablespace directory that is not empty, and one inside the data directory', async () => {
    const engine = await engineFor(repoUrl);
    try {
      const dir = join(work, 'refused');
      await expect(
        engine.restore({ tier: 'oltp', backup: 'latest', to: dir, tablespaces: { map: { '/no/such/tablespace': join(work, 'x') } } }),
      ).rejects.toThrow(ConfigError);
      const occupied = join(work, 'occupied');
      await mkdir(join(occupied, 'fast'), { recursive: true });
      await writeFile(join(occupied, 'fast', 'keep-me'), 'operator data');
      await expect(
        engine.restore({ tier: 'oltp', backup: 'latest', to: dir, tablespaces: { map: { fast: join(occupied, 'fast') } } }),
      ).rejects.toThrow(/tablespace 'fast' '.*' is not empty/);
      await expect(
        engine.restore({ tier: 'oltp', backup: 'latest', to: dir, tablespaces: { all: join(dir, 'tablespaces') } }),
      ).rejects.toThrow(RestoreTargetError);
      // The original directories are the running source's: not empty, so the default restore is refused too.
      await expect(engine.restore({ tier: 'oltp', backup: 'latest', to: dir })).rejects.toThrow(/is not empty/);
      expect(await readdir(join(occupied, 'fast'))).toEqual(['keep-me']);
      await expect(readdir(dir)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await engine.close();
    }
  });

  it('refuses to back up a cluster with a tablespace inside its data directory, naming it, and writes nothing', async () => {
    const inside = join(source.dataDir, 'inside_tablespace');
    await mkdir(inside, { mode: 0o700 });
    await chown(inside, owner.uid, owner.gid);
    // PostgreSQL only warns: "tablespace location should not be inside the data directory".
    await source.query(`create tablespace inside_data location '${inside}'`);
    const repository = join(work, 'repo-inside');
    const engine = await engineFor(`file://${repository}`);
    try {
      await expect(engine.backup({ tier: 'oltp' })).rejects.toThrow(/tablespace 'inside_data' \(\d+\) is inside the data directory/);
      expect((await engine.list('oltp')).backups).toEqual([]);
    } finally {
      await engine.close();
      await source.query('drop tablespace inside_data');
    }
  });

  it('restores to the original directories by default once they are empty (the source cluster is gone)', async () => {
    const engine = await engineFor(repoUrl);
    try {
      const manifest = await engine.backup({ tier: 'oltp' });
      const expected = await checksums((database) => source.urlFor(database));
      await source.stop();
      // The disks are replaced: the original directories are empty again.
      for (const dir of [fast, cold]) {
        await rename(dir, `${dir}.lost`);
        await mkdir(dir, { mode: 0o700 });
      }
      const dir = join(work, 'restored-original');
      const result = await engine.restore({ tier: 'oltp', backup: manifest.id, to: dir });
      expect(result.tablespaces.map((tablespace) => tablespace.restoredTo)).toEqual([fast, cold]);
      expect(await readlink(join(dir, 'pg_tblspc', String(result.tablespaces[0].oid)))).toBe(fast);
      await startAndCompare(engine, dir, expected);
    } finally {
      await engine.close();
    }
  });
});
