import { createHash } from 'node:crypto';
import { chmod, lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { SeededRandom, TestCluster, acquireS3, differentialSeeds, s3StoreUrl, startCluster } from '@rookery/testing';
import { createEngine } from './engine.factory';

/**
 * Differential proof of the server-compressed backup (compression.location server: BASE_BACKUP
 * over the replication protocol, the server compressing, slabs reused or not per
 * backup.reuseBuffers) against the plain one (location client: pg_basebackup's tar compressed
 * here). A real cluster, quiet between the backups (autovacuum off, a checkpoint first), gets
 * generated content per case: databases created and dropped, tables of random sizes, TOAST,
 * unlogged tables, large objects, many small relations, empty tables and databases. It is backed
 * up both ways (the server's slabs reused into an S3 store, or fresh into a filesystem one, by the
 * seed's parity) and each backup restored (extracted, not started); the data directories must be
 * identical file by file (names, types, modes, owners, sizes, contents, symlinks), except files that
 * differ between any two backups of a cluster: backup_label, backup_manifest, tablespace_map,
 * global/pg_control (the checkpoint each backup starts with) and pg_wal's segments. A failure
 * prints its seed; ROOKERY_DIFF_SEED=<seed> replays that case.
 */
const CASES = 2;
const DIFFERENT_PER_BACKUP = /^(backup_label|backup_manifest|tablespace_map|global\/pg_control)$/;
/** The WAL each backup brings (its own segments, their .done files): only the directories are compared. */
const WAL_FILE = /^pg_wal\/(.+\/)?[^/]+$/;

interface Entry {
  kind: 'file' | 'directory' | 'symlink';
  mode: number;
  uid: number;
  gid: number;
  detail: string;
}

async function tree(root: string, relative = '', into = new Map<string, Entry>()): Promise<Map<string, Entry>> {
  for (const name of (await readdir(join(root, relative))).sort()) {
    const path = relative ? `${relative}/${name}` : name;
    const stats = await lstat(join(root, path));
    const common = {
      mode: stats.mode & 0o7777,
      uid: stats.uid,
      gid: stats.gid,
    };
    if (WAL_FILE.test(path) && !stats.isDirectory()) continue;
    if (stats.isSymbolicLink())
      into.set(path, {
        kind: 'symlink',
        ...common,
        detail: await readlink(join(root, path)),
      });
    else if (stats.isDirectory()) {
      into.set(path, { kind: 'directory', ...common, detail: '' });
      await tree(root, path, into);
    } else if (DIFFERENT_PER_BACKUP.test(path)) into.set(path, { kind: 'file', ...common, detail: 'differs per backup' });
    else
      into.set(path, {
        kind: 'file',
        ...common,
        detail: `${stats.size} ${createHash('sha256')
          .update(await readFile(join(root, path)))
          .digest('hex')}`,
      });
  }
  return into;
}

function differences(a: Map<string, Entry>, b: Map<string, Entry>): string[] {
  const found: string[] = [];
  for (const path of new Set([...a.keys(), ...b.keys()])) {
    const [left, right] = [a.get(path), b.get(path)];
    if (JSON.stringify(left) !== JSON.stringify(right)) found.push(`${path}: ${JSON.stringify(left)} vs ${JSON.stringify(right)}`);
  }
  return found;
}

describe('server-compressed backups against pg_basebackup with client compression, over generated clusters', () => {
  let cluster: TestCluster;
  let work: string;
  const databases: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-server-diff-'));
    // Restored directories belong to the postgres account when run as root: it must reach them.
    await chmod(work, 0o711);
    cluster = await startCluster({
      name: 'server-compression-diff',
      settings: { autovacuum: 'off' },
    });
  }, 180_000);

  afterAll(async () => {
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  /** Generated content, deterministic per seed (setseed for the rows, SeededRandom for the shapes). */
  async function generate(random: SeededRandom, seed: number): Promise<string> {
    if (databases.length > 0 && random.chance(0.5)) {
      const dropped = databases.splice(random.int(0, databases.length - 1), 1)[0];
      await cluster.query(`DROP DATABASE ${dropped}`);
    }
    const database = `diff_${seed}`;
    await cluster.query(`CREATE DATABASE ${database}`);
    databases.push(database);
    if (random.chance(0.25)) {
      await cluster.query(`CREATE DATABASE ${database}_empty`);
      databases.push(`${database}_empty`);
    }
    const sql: string[] = [`SELECT setseed(${(seed % 1000) / 1000})`];
    const tables = random.int(2, 7);
    for (let index = 0; index < tables; index++) {
      const table = `t${index}`;
      switch (random.pick(['numbers', 'toast', 'unlogged', 'small-relations', 'large-object', 'empty'] as const)) {
        case 'numbers':
          sql.push(`CREATE TABLE ${table} (id bigint PRIMARY KEY, value double precision, note text)`);
          sql.push(`INSERT INTO ${table} SELECT g, random(), md5(g::text) FROM generate_series(1, ${random.int(0, 40_000)}) g`);
          break;
        case 'toast':
          sql.push(`CREATE TABLE ${table} (id int, body text)`);
          sql.push(`ALTER TABLE ${table} ALTER COLUMN body SET STORAGE EXTERNAL`);
          sql.push(
            `INSERT INTO ${table} SELECT g, repeat(md5(random()::text), ${random.int(100, 2_000)}) FROM generate_series(1, ${random.int(1, 100)}) g`,
          );
          break;
        case 'unlogged':
          sql.push(`CREATE UNLOGGED TABLE ${table} (id int, note text)`);
          sql.push(`INSERT INTO ${table} SELECT g, md5(g::text) FROM generate_series(1, ${random.int(0, 10_000)}) g`);
          break;
        case 'small-relations':
          sql.push(
            `DO $$ BEGIN FOR i IN 1..${random.int(20, 200)} LOOP EXECUTE format('CREATE TABLE ${table}_%s (id int)', i); EXECUTE format('INSERT INTO ${table}_%s VALUES (%s)', i, i); END LOOP; END $$`,
          );
          break;
        case 'large-object':
          sql.push(`SELECT lo_from_bytea(0, decode(repeat(md5(random()::text), ${random.int(1, 5_000)}), 'hex'))`);
          break;
        case 'empty':
          sql.push(`CREATE TABLE ${table} (id int)`);
          break;
      }
    }
    for (const statement of sql) await cluster.query(statement, undefined, database);
    await cluster.query('CHECKPOINT');
    return `${tables} tables in ${database}; databases ${databases.join(', ')}`;
  }

  it.each(differentialSeeds(CASES, 90_210))(
    'restores the same data directory either way (seed %s)',
    async (seed) => {
      const random = new SeededRandom(seed);
      const shape = await generate(random, seed);
      const level = random.int(1, 3);
      const encrypted = random.chance(0.5);
      // Slabs reused in every other case (the seeds alternate in parity), fresh in the others:
      // two backups a case, not three, for the CPU of every npm test.
      const reuseBuffers = seed % 2 === 0;
      // The server path's store: S3 (multipart parts hold chunks until uploaded: the store where
      // handing a slab back too early would show) for reused slabs, the filesystem otherwise.
      const ways = [
        {
          label: `server, slabs ${reuseBuffers ? 'reused' : 'fresh'}`,
          location: 'server',
          reuseBuffers,
          store: reuseBuffers ? 's3' : 'fs',
        },
        {
          label: 'client (pg_basebackup)',
          location: 'client',
          reuseBuffers: true,
          store: 'fs',
        },
      ] as const;
      const trees: Map<string, Entry>[] = [];
      for (const way of ways) {
        const name = `${seed}-${way.location}-${way.reuseBuffers}`;
        const config = buildConfig(
          {
            repositories: [way.store === 's3' ? await s3Repository(`diff-${seed}`) : `file://${join(work, `repo-${name}`)}`],
            compression: { codec: 'zstd', level, location: way.location },
            backup: { reuseBuffers: way.reuseBuffers },
            ...(encrypted ? { encryption: { keyEnv: 'TEST_ROOKERY_KEY' } } : {}),
            // Fulls only: a tier that takes block incrementals indexes its tars, which turns slab
            // reuse off and takes every backup over the protocol (physical-roundtrip covers it).
            tiers: { oltp: { pgUrl: cluster.url, policy: { physical: { incremental: null } } } },
          },
          'test',
          {},
          { TEST_ROOKERY_KEY: Buffer.alloc(32, seed % 251).toString('hex') },
        );
        const engine = await createEngine(config, { actor: 'test' });
        const dir = join(work, `restored-${name}`);
        try {
          const manifest = await engine.backup({ tier: 'oltp' });
          expect(manifest.artifacts.map((artifact) => artifact.kind)).toEqual(
            way.location === 'server' ? ['base-tar', 'pg-manifest'] : ['base-tar'],
          );
          await engine.restore({ tier: 'oltp', backup: 'latest', to: dir });
          trees.push(await tree(dir));
        } finally {
          await engine.close();
          await rm(dir, { recursive: true, force: true });
          await rm(join(work, `repo-${name}`), {
            recursive: true,
            force: true,
          });
        }
      }
      const where = `seed ${seed} (replay: ROOKERY_DIFF_SEED=${seed}); ${shape}; zstd level ${level}, encrypted ${encrypted}`;
      for (const [index, way] of ways.entries()) {
        if (index === ways.length - 1) continue;
        const found = differences(trees[index], trees[ways.length - 1]);
        if (found.length > 0)
          throw new Error(
            `${way.label} restored another data directory than ${ways[ways.length - 1].label}: ${where}\n${found.slice(0, 20).join('\n')}`,
          );
      }
      expect(trees[0].size).toBeGreaterThan(500);
    },
    300_000,
  );
});

/** A fresh bucket of the shared S3-compatible server. */
async function s3Repository(bucket: string): Promise<string> {
  const s3 = await acquireS3('primary');
  await s3.createBucket(bucket);
  return s3StoreUrl(s3, bucket, 'rookery');
}
