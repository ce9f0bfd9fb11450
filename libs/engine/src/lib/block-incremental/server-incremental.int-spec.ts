import { chown, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Client } from 'pg';
import { ConfigError, SourceUnavailableError } from '@rookery/core';
import {
  PgBinaries,
  PgCtlDriver,
  ProcessRunner,
  TarDriver,
  freeLoopbackPort,
  lookupOsUser,
  startReplicationBaseBackup,
} from '@rookery/postgres';
import { TestCluster, pollUntil, serverBinDir, startCluster } from '@rookery/testing';
import { combineChain } from './chain-combiner';
import { buildPageIndex, writeIncremental } from './incremental-writer';
import { PageIndexLookup, PageIndexWriter } from './page-index';
import { SpillStore } from './spill-store';

jest.setTimeout(240_000);

/**
 * PostgreSQL 17's own incremental base backup, end to end on a real server (summarize_wal on):
 * a full over rookery's protocol client and its page index; inserts, updates, deletes, a dropped
 * table, a created one, a TRUNCATE, a relation grown by many pages; UPLOAD_MANIFEST + BASE_BACKUP
 * INCREMENTAL read by writeIncremental (serverIncremental); the chain combined in one pass,
 * extracted, and started by PostgreSQL 17: every table must hold the rows the source held. And
 * the refusals: a PostgreSQL 15 server, summarize_wal off, a manifest the server rejects.
 */

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Each user table's name and the md5 of its rows in order: what a restore must give back. */
async function tableDigests(query: (sql: string) => Promise<Record<string, unknown>[]>): Promise<Record<string, string>> {
  const tables = await query(`select relname from pg_class where relkind = 'r' and relnamespace = 'public'::regnamespace order by 1`);
  const digests: Record<string, string> = {};
  for (const { relname } of tables) {
    const [row] = await query(
      `select count(*)::text || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '') as d from "${relname}" t`,
    );
    digests[String(relname)] = String(row?.['d']);
  }
  return digests;
}

async function chownTree(path: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(path, owner.uid, owner.gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), owner);
}

describe('PostgreSQL 17 BASE_BACKUP INCREMENTAL (UPLOAD_MANIFEST) through writeIncremental and combineChain', () => {
  let source: TestCluster;
  let work: string;
  const spills: SpillStore[] = [];
  const spill = () => {
    const store = new SpillStore({ memoryBytes: 16 * 1024 * 1024, directory: work });
    spills.push(store);
    return store;
  };

  beforeAll(async () => {
    source = await startCluster({ name: 'pg17-incremental', major: 17, settings: { summarize_wal: 'on' } });
    work = await mkdtemp(join(tmpdir(), 'rookery-pg17-incremental-'));
  });

  afterAll(async () => {
    for (const store of spills) await store.close().catch(() => undefined);
    await source?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('restores the incremental combined with its full: every table as the source held it, far fewer pages sent', async () => {
    await source.query(`
      create table kept as select g as id, md5(g::text) as v from generate_series(1, 400000) g;
      create table updated (id int primary key, v text);
      insert into updated select g, md5(g::text) from generate_series(1, 20000) g;
      create table deleted as select g as id from generate_series(1, 20000) g;
      create table dropped as select g as id from generate_series(1, 1000) g;
      create table truncated as select g as id from generate_series(1, 20000) g;
      create table grown (id int, pad text);
      insert into grown values (0, 'seed');`);
    // Hint bits set now, not by the first read after the full: with checksums each such page
    // would be WAL-logged (a full-page image) and count as changed in the summaries.
    await source.query('vacuum (freeze)');
    const full = startReplicationBaseBackup({ url: source.url, label: 'full', checkpoint: 'fast' });
    const [fullTar, fullManifest] = await Promise.all([collect(full.archive), collect(full.manifest)]);
    await full.result;
    const fullIndex = await collect(
      (await buildPageIndex(Readable.from([fullTar]), 'base tar of full', new PageIndexWriter(spill()))).serialize(),
    );

    await source.query(`
      insert into updated select g, 'new' from generate_series(20001, 20100) g;
      update updated set v = 'changed' where id % 997 = 0;
      delete from deleted where id % 3 = 0;
      drop table dropped;
      create table created as select g as id, repeat('x', 50) as v from generate_series(1, 3000) g;
      truncate truncated;
      insert into truncated values (42);
      insert into grown select g, repeat('y', 200) from generate_series(1, 40000) g;`);
    // Summaries end at checkpoints' redo points: after one, the summarizer catches up to it. (The
    // server waits for the summarizer itself too, up to the backup's start.)
    await source.query('checkpoint');
    const [{ lsn }] = (await source.query(`select redo_lsn::text as lsn from pg_control_checkpoint()`)) as { lsn: string }[];
    await pollUntil(
      async () =>
        (await source.query(`select summarized_lsn >= $1::pg_lsn as done from pg_get_wal_summarizer_state()`, [lsn]))[0]?.['done'],
      (done) => done === true,
      { timeoutMs: 60_000, what: 'WAL summarization' },
    );
    expect((await source.query(`select count(*)::int as n from pg_available_wal_summaries()`))[0]?.['n']).toBeGreaterThan(0);
    const expected = await tableDigests((sql) => source.query(sql));

    const incremental = startReplicationBaseBackup({
      url: source.url,
      label: 'incr-1',
      checkpoint: 'fast',
      incremental: { parentManifest: fullManifest, parentLabel: 'backup full' },
    });
    const manifest = collect(incremental.manifest);
    const store = spill();
    const parent = await PageIndexLookup.load(Readable.from([fullIndex]), 'page index of backup full', store);
    const writing = writeIncremental({
      tar: incremental.archive,
      label: 'base tar of incr-1',
      header: { backupId: 'incr-1', parentId: 'full' },
      parent,
      index: new PageIndexWriter(store),
      serverIncremental: true,
    });
    const artifact = await collect(writing.artifact);
    const { counts } = await writing.result;
    expect(JSON.parse((await manifest).toString('utf8'))['PostgreSQL-Backup-Manifest-Version']).toBe(2);
    await incremental.result;

    // Most relation files came as INCREMENTAL.* members; the unchanged table's pages were never sent.
    const pages = counts.pagesRead + counts.pagesSkipped;
    expect(counts.serverIncrementalFiles).toBeGreaterThan(100);
    expect(counts.pagesSkipped).toBeGreaterThan(1500);
    expect(counts.pagesRead).toBeLessThan(pages / 2);
    expect(counts.removed).toBeGreaterThan(0);

    const combined = combineChain({
      base: { backupId: 'full', tar: Readable.from([fullTar]) },
      incrementals: [{ backupId: 'incr-1', artifact: Readable.from([artifact]) }],
      spill: spill(),
    });
    const owner = lookupOsUser('postgres');
    const restored = join(work, 'restored');
    await chown(work, owner.uid, owner.gid);
    await mkdir(restored, { mode: 0o700 });
    await chown(restored, owner.uid, owner.gid);
    const runner = new ProcessRunner({ baseEnv: process.env });
    const extraction = new TarDriver(runner).extract(
      restored,
      { from: 'no-such-member', to: 'no-such-member' },
      {
        stdin: Readable.from(combined),
        user: 'postgres',
      },
    );
    await extraction.result;
    await chownTree(restored, owner);

    const ctl = new PgCtlDriver(runner, await PgBinaries.resolve({ binDir: serverBinDir(17), requiredTool: 'initdb' }));
    const port = await freeLoopbackPort();
    await ctl.start(restored, {
      user: 'postgres',
      port,
      socketDir: restored,
      logFile: join(work, 'restored.log'),
      settings: { listen_addresses: '127.0.0.1', summarize_wal: 'off' },
    });
    const client = new Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    try {
      await client.connect();
      expect(await tableDigests(async (sql) => (await client.query(sql)).rows)).toEqual(expected);
    } finally {
      await client.end().catch(() => undefined);
      await ctl.stop(restored, 'immediate', { user: 'postgres' }).catch(() => undefined);
    }
  });

  it('refuses a manifest the server rejects, and a server with summarize_wal off, naming what to do', async () => {
    const garbage = startReplicationBaseBackup({
      url: source.url,
      label: 'incr-bad',
      checkpoint: 'fast',
      incremental: { parentManifest: Buffer.from('{"not": "a manifest"}'), parentLabel: 'backup x' },
    });
    const refused = await garbage.result.catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SourceUnavailableError);
    expect((refused as Error).message).toMatch(/refused the backup_manifest of backup x for an incremental base backup: /);

    // The source's summarize_wal is a command-line setting: another server has it off (the default).
    const unsummarized = await startCluster({ name: 'pg17-no-summaries', major: 17 });
    try {
      const off = startReplicationBaseBackup({
        url: unsummarized.url,
        label: 'incr-off',
        checkpoint: 'fast',
        incremental: { parentManifest: Buffer.from('{}'), parentLabel: 'backup x' },
      });
      const error = await off.result.catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/needs summarize_wal = on; the server has it off/);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(/needs summarize_wal = on; the server has it off/);
      expect((error as ConfigError).hint).toMatch(/set summarize_wal = on/);
    } finally {
      await unsummarized.destroy();
    }
  });

  it('refuses a PostgreSQL 15 server before sending anything', async () => {
    const pg15 = await startCluster({ name: 'pg15-incremental' });
    try {
      const backup = startReplicationBaseBackup({
        url: pg15.url,
        label: 'incr-15',
        checkpoint: 'fast',
        incremental: { parentManifest: Buffer.from('{}'), parentLabel: 'backup x' },
      });
      const error = await backup.result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/needs PostgreSQL 17 or later; the server is version 150\d{3}/);
    } finally {
      await pg15.destroy();
    }
  });
});
