import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, opendir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { PgSqlClient, ProcessRunner } from '@rookery/postgres';
import {
  TableChecksums,
  TestCluster,
  acquireS3,
  diffTableChecksums,
  freeLoopbackPort,
  startCluster,
  tableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';

/**
 * A physical backup and restore --start of one cluster shaped as users have it, compared database
 * by database: every table by an order-independent checksum of its rows, every large object by its
 * bytes, every sequence by its value. The shapes:
 *
 * - pgbench data in `postgres` (base/5: a round trip of such a cluster once failed there);
 * - `late`: a database whose base/<oid> directory holds a big file with less than one of GNU tar's
 *   1 MiB records of smaller members before it (the restore once deadlocked on exactly that);
 * - `shapes`: a relation over 2 GiB (segment files .1 and .2), unlogged tables and an unlogged
 *   sequence, large objects, TOAST (external, compressed with pglz and lz4), sequences;
 * - `empty`: a database with no tables; `many`: 3000 small tables (12000 relations).
 *
 * Store × encryption × the restore's direct writes are rotated (pgBackRest style), not multiplied:
 * two round trips give each of them both values (each one reads and writes over 2 GiB).
 */
const matrix: { store: 'fs' | 's3'; encrypted: boolean; directWrites: boolean }[] = [
  { store: 'fs', encrypted: false, directWrites: true },
  { store: 's3', encrypted: true, directWrites: false },
];

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** PostgreSQL's segment size (RELSEG_SIZE): a bigger relation continues in <relfilenode>.1, .2, … */
const SEGMENT_PAGES = GiB / 8192;
/**
 * Two full segments and 20 MiB of a third: .2 is itself over the restore's 1 MiB direct-write
 * threshold. One ~700-byte row per page (fillfactor 10) keeps it cheap to fill, scan and compress.
 */
const BIG_RELATION_PAGES = 2 * SEGMENT_PAGES + 2560;
/** GNU tar's record in a restore (--blocking-factor=2048) and the splitter's direct-write threshold. */
const TAR_RECORD_BYTES = MiB;
const DIRECT_MIN_BYTES = MiB;
const SMALL_TABLES = 3000;

describe('physical backup and restore of a cluster shaped as users have it', () => {
  let source: TestCluster;
  let work: string;
  let before: ClusterState;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-shapes-'));
    // Restored servers run as the postgres account: it must be able to reach their directories.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'shapes-source' });
    await pgbenchInit(source, 5);
    await createLateDatabase(source);
    await createShapesDatabase(source);
    await source.query('create database empty');
    await createManyTablesDatabase(source);
    // Hint bits and the visibility map set here, once: a restored server reading the same pages
    // then has nothing to write back (with data checksums every first hint is a full-page image).
    for (const database of ['postgres', 'late', 'shapes', 'many']) await source.query('vacuum (freeze, analyze)', [], database);
    await source.query('checkpoint');
    before = await clusterState(source.port);
  }, 900_000);

  afterAll(async () => {
    await source?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('holds every shape the round trips below depend on', async () => {
    expect(Object.keys(before).sort()).toEqual(['empty', 'late', 'many', 'postgres', 'shapes']);
    expect(before['postgres'].tables['public.pgbench_accounts']).toMatchObject({ rows: 500_000 });
    expect(Object.keys(before['empty'].tables)).toEqual([]);
    expect(Object.keys(before['many'].tables)).toHaveLength(SMALL_TABLES);
    expect(Object.values(before['many'].tables).every((table) => table.rows === 1)).toBe(true);

    const [big] = await source.query<{ bytes: string; path: string }>(
      `select pg_relation_size('event_archive')::text as bytes, pg_relation_filepath('event_archive') as path`,
      [],
      'shapes',
    );
    expect(Number(big.bytes)).toBe(BIG_RELATION_PAGES * 8192);
    for (const segment of ['', '.1', '.2']) expect((await stat(join(source.dataDir, `${big.path}${segment}`))).isFile()).toBe(true);

    const [toast] = await source.query<{ bytes: string }>(
      `select pg_relation_size(reltoastrelid)::text as bytes from pg_class where oid = 'documents'::regclass`,
      [],
      'shapes',
    );
    expect(Number(toast.bytes)).toBeGreaterThan(10 * MiB);

    const shapes = before['shapes'];
    expect(shapes.unlogged.sort()).toEqual(['public.session_cache', 'public.session_cache_id_seq', 'public.unlogged_wide']);
    for (const name of ['public.session_cache', 'public.unlogged_wide']) expect(shapes.tables[name].rows).toBeGreaterThan(0);
    expect(
      Object.values(shapes.largeObjects)
        .map((object) => object.bytes)
        .sort((a, b) => a - b),
    ).toEqual([0, 5, 320_000]);
    expect(shapes.sequences['public.invoice_numbers']).toEqual({ lastValue: '424242', isCalled: true, start: '1000' });
    expect(shapes.sequences['public.never_used']).toEqual({ lastValue: '1', isCalled: false, start: '1' });
    expect(shapes.sequences['public.session_cache_id_seq'].lastValue).not.toBe('1');

    expect(await tarBytesBeforeFirstBigFile(await databaseDirectory(source, 'late'))).toBeLessThan(TAR_RECORD_BYTES);
  });

  it.each(matrix)(
    'restores every database identical: $store store, encrypted=$encrypted, directWrites=$directWrites',
    async (variant) => {
      const label = `${variant.store}-${variant.encrypted ? 'enc' : 'plain'}-${variant.directWrites ? 'direct' : 'tar'}`;
      const repository = variant.store === 'fs' ? `file://${join(work, `repo-${label}`)}` : await s3Repository(`shapes-${label}`);
      const config = buildConfig(
        {
          repositories: [repository],
          restore: { directWrites: variant.directWrites },
          ...(variant.encrypted ? { encryption: { keyEnv: 'TEST_ROOKERY_KEY' } } : {}),
          tiers: { oltp: { pgUrl: source.url } },
        },
        'test',
        {},
        { TEST_ROOKERY_KEY: randomBytes(32).toString('hex') },
      );
      const engine = await createEngine(config, { actor: 'test' });
      const dir = join(work, `restored-${label}`);
      try {
        const manifest = await engine.backup({ tier: 'oltp' });
        expect(manifest.bytes).toBeGreaterThan(2 * GiB);
        expect(manifest.artifacts[0].encryption.algorithm).toBe(variant.encrypted ? 'aes-256-gcm' : 'none');

        const port = await freeLoopbackPort();
        const result = await engine.restore({ tier: 'oltp', backup: manifest.id, to: dir, start: true, port });
        expect(result.manifest.id).toBe(manifest.id);
        // With direct writes the relation segments bypassed tar (the scratch directory is on ext4);
        // without, tar wrote every byte.
        if (variant.directWrites) expect(result.directBytes).toBeGreaterThan(2 * GiB);
        else expect(result.directBytes).toBe(0);

        const after = await clusterState(port);
        expect(diffClusterStates(expectedAfterRestore(before), after)).toEqual([]);
        // The unlogged tables came back empty and usable, as PostgreSQL documents for a crash.
        const url = `postgres://postgres@127.0.0.1:${port}/shapes`;
        const sql = new PgSqlClient({ applicationName: 'rookery-shapes' });
        await sql.query(url, `insert into session_cache (payload) values ('after restore')`);
        expect(await sql.query(url, 'select id, payload from session_cache')).toEqual([{ id: 1, payload: 'after restore' }]);
      } finally {
        await engine.stopRestored(dir).catch(() => undefined);
        await engine.close();
        // Two gigabytes a restore: each one goes before the next.
        await rm(dir, { recursive: true, force: true });
      }
    },
    900_000,
  );
});

/** `pgbench -i -s <scale>` into the `postgres` database, as a user benchmarking a new server does. */
async function pgbenchInit(cluster: TestCluster, scale: number): Promise<void> {
  const runner = new ProcessRunner({ baseEnv: process.env });
  const [{ bindir }] = await cluster.query<{ bindir: string }>(`select setting as bindir from pg_config where name = 'BINDIR'`);
  await runner.run(join(bindir, 'pgbench'), [
    '-i',
    '-q',
    '-s',
    String(scale),
    '-h',
    '127.0.0.1',
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    'postgres',
  ]);
}

/**
 * A database created after the cluster whose directory has a big file (over the direct-write
 * threshold) with less than one tar record of members before it. pg_basebackup sends a directory's
 * files in readdir order (hash order on ext4), which no name choice controls: the table is
 * rewritten (VACUUM FULL gives it a new file name) until its file lands early enough.
 */
async function createLateDatabase(cluster: TestCluster): Promise<void> {
  await cluster.query('create database late');
  await cluster.query(
    'create table first_big (id int primary key, note text) with (fillfactor = 10, autovacuum_enabled = off)',
    [],
    'late',
  );
  await cluster.query(`insert into first_big select i, lpad(i::text, 700, 'late ') from generate_series(1, 200) i`, [], 'late');
  const directory = await databaseDirectory(cluster, 'late');
  for (let attempt = 1; (await tarBytesBeforeFirstBigFile(directory)) >= TAR_RECORD_BYTES; attempt++) {
    if (attempt > 500) throw new Error(`first_big never came within ${TAR_RECORD_BYTES} bytes of the start of ${directory}`);
    await cluster.query('vacuum full first_big', [], 'late');
  }
  // The rewrites left empty files under the old names until the next checkpoint.
  await cluster.query('checkpoint');
}

async function createShapesDatabase(cluster: TestCluster): Promise<void> {
  await cluster.query('create database shapes');
  const statements = [
    // Over 2 GiB on disk: segment files <relfilenode>, .1 and .2.
    `create table event_archive (id int, note text) with (fillfactor = 10, autovacuum_enabled = off)`,
    `insert into event_archive select i, lpad(i::text, 700, 'event ') from generate_series(1, ${BIG_RELATION_PAGES}) i`,
    // TOAST: out-of-line values that barely compress (hex text, random bytes) and ones that do (pglz, lz4).
    `create table documents (id serial primary key, title text, body text, blob bytea, packed text compression lz4, squeezed text compression pglz)`,
    `insert into documents (title, body, blob, packed, squeezed)
       select 'document ' || i,
              (select string_agg(md5(i || ':' || j), '') from generate_series(1, 2000) j),
              (select decode(string_agg(md5(j || ':' || i), ''), 'hex') from generate_series(1, 4000) j),
              repeat('lz4 ' || i || ' ', 5000),
              repeat('pglz ' || i || ' ', 5000)
       from generate_series(1, 200) i`,
    // Unlogged: main forks are not in a base backup; recovery resets them from their init forks.
    `create unlogged table session_cache (id serial primary key, payload text)`,
    `insert into session_cache (payload) select 'session ' || i from generate_series(1, 10000) i`,
    `create unlogged table unlogged_wide (id int, body text)`,
    `insert into unlogged_wide select i, (select string_agg(md5(i || '/' || j), '') from generate_series(1, 200) j) from generate_series(1, 100) i`,
    // Large objects (empty, small, spanning many 2 KiB pages) and a table that refers to them.
    `create table attachments (name text primary key, content oid)`,
    `insert into attachments values
       ('empty', lo_from_bytea(0, '')),
       ('small', lo_from_bytea(0, 'hello')),
       ('large', lo_from_bytea(0, (select decode(string_agg(md5(j::text), ''), 'hex') from generate_series(1, 20000) j)))`,
    `create sequence invoice_numbers start 1000`,
    `select setval('invoice_numbers', 424242)`,
    `create sequence never_used`,
  ];
  for (const statement of statements) await cluster.query(statement, [], 'shapes');
}

/**
 * 3000 tables, each with a primary key, a TOAST table and its index: four relations and a row each.
 * Created 500 to a transaction: all at once would outgrow the default lock table.
 */
async function createManyTablesDatabase(cluster: TestCluster): Promise<void> {
  await cluster.query('create database many');
  const batch = 500;
  for (let first = 1; first <= SMALL_TABLES; first += batch) {
    await cluster.query(
      `do $$ begin
         for i in ${first}..${first + batch - 1} loop
           execute format('create table small_%s (id int primary key, note text)', i);
           execute format('insert into small_%s values (%s, %L)', i, i, 'row of table ' || i);
         end loop;
       end $$`,
      [],
      'many',
    );
  }
}

async function databaseDirectory(cluster: TestCluster, database: string): Promise<string> {
  const [{ oid }] = await cluster.query<{ oid: string }>(`select oid::text from pg_database where datname = $1`, [database]);
  return join(cluster.dataDir, 'base', oid);
}

/**
 * The tar bytes (headers and padded contents) of a directory's members that come before its first
 * file of DIRECT_MIN_BYTES or more, in the order pg_basebackup sends them (readdir order, which
 * opendir keeps; fs.readdir sorts).
 */
async function tarBytesBeforeFirstBigFile(directory: string): Promise<number> {
  let bytes = 0;
  for await (const entry of await opendir(directory)) {
    const size = (await stat(join(directory, entry.name))).size;
    if (size >= DIRECT_MIN_BYTES) return bytes;
    bytes += 512 + Math.ceil(size / 512) * 512;
  }
  return Infinity;
}

interface SequenceState {
  lastValue: string;
  isCalled: boolean;
  start: string;
}

interface DatabaseState {
  tables: TableChecksums;
  /** schema.name of the unlogged tables and sequences. */
  unlogged: string[];
  /** By oid: length and md5 of the content. */
  largeObjects: Record<string, { bytes: number; md5: string }>;
  sequences: Record<string, SequenceState>;
}

/** Every non-template database of the cluster on `port`, by name. */
type ClusterState = Record<string, DatabaseState>;

async function clusterState(port: number): Promise<ClusterState> {
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  const sql = new PgSqlClient({ applicationName: 'rookery-shapes' });
  const databases = await sql.query<{ name: string }>(
    url('postgres'),
    'select datname as name from pg_database where not datistemplate order by 1',
  );
  const state: ClusterState = {};
  for (const { name } of databases) state[name] = await databaseState(sql, url(name));
  return state;
}

async function databaseState(sql: PgSqlClient, url: string): Promise<DatabaseState> {
  const tables = await tableChecksums(url);
  return sql.withSession(url, async (session) => {
    const unlogged = await session.query<{ name: string }>(
      `select n.nspname || '.' || c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relpersistence = 'u' and c.relkind in ('r', 'S') order by 1`,
    );
    const objects = await session.query<{ oid: string; bytes: number; md5: string }>(
      `select oid::text, length(content) as bytes, md5(content) from (select oid, lo_get(oid) as content from pg_largeobject_metadata) o order by oid`,
    );
    const sequenceNames = await session.query<{ name: string; start: string }>(
      `select format('%I.%I', schemaname, sequencename) as name, start_value::text as start from pg_sequences order by 1`,
    );
    const sequences: Record<string, SequenceState> = {};
    for (const { name, start } of sequenceNames) {
      const [row] = await session.query<{ last_value: string; is_called: boolean }>(`select last_value::text, is_called from ${name}`);
      sequences[name] = { lastValue: row.last_value, isCalled: row.is_called, start };
    }
    return {
      tables,
      unlogged: unlogged.map((row) => row.name),
      largeObjects: Object.fromEntries(objects.map(({ oid, bytes, md5 }) => [oid, { bytes: Number(bytes), md5 }])),
      sequences,
    };
  });
}

/**
 * What a restore must give back: everything as it was, except that recovery resets unlogged
 * relations from their init forks (PostgreSQL's documented behaviour after a crash, which a
 * restored base backup goes through): unlogged tables empty, unlogged sequences at their start.
 */
function expectedAfterRestore(source: ClusterState): ClusterState {
  return Object.fromEntries(
    Object.entries(source).map(([database, state]) => {
      const tables = { ...state.tables };
      const sequences = { ...state.sequences };
      for (const name of state.unlogged) {
        if (tables[name]) tables[name] = { rows: 0, checksum: '0' };
        if (sequences[name]) sequences[name] = { ...sequences[name], lastValue: sequences[name].start, isCalled: false };
      }
      return [database, { ...state, tables, sequences }];
    }),
  );
}

/** Readable differences between two cluster states, database by database; empty when equal. */
function diffClusterStates(expected: ClusterState, actual: ClusterState): string[] {
  const differences: string[] = [];
  for (const database of [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort()) {
    const a = expected[database];
    const b = actual[database];
    if (!a || !b) {
      differences.push(`database '${database}' is ${b ? 'unexpected' : 'missing'}`);
      continue;
    }
    differences.push(...diffTableChecksums(a.tables, b.tables).map((difference) => `${database}: ${difference}`));
    for (const part of ['unlogged', 'largeObjects', 'sequences'] as const) {
      if (JSON.stringify(a[part]) !== JSON.stringify(b[part])) {
        differences.push(`${database}: ${part} differ: expected ${JSON.stringify(a[part])}, got ${JSON.stringify(b[part])}`);
      }
    }
  }
  return differences;
}

/** A repository in a bucket of the primary S3-compatible server. */
async function s3Repository(bucket: string): Promise<string> {
  const s3 = await acquireS3('primary');
  await s3.createBucket(bucket);
  return `s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
}
