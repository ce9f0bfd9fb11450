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
import { TestCluster, collectBytes, pollUntil, serverBinDir, startCluster } from '@rookery/testing';
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

/**
 * Summaries end at checkpoints' redo points: after one, the summarizer catches up to it. (The
 * server waits for the summarizer itself too, up to the backup's start; this keeps that wait short.)
 */
async function waitForSummaries(cluster: TestCluster): Promise<void> {
  await cluster.query('checkpoint');
  const [row] = await cluster.query(`select redo_lsn::text as lsn from pg_control_checkpoint()`);
  await pollUntil(
    async () =>
      (await cluster.query(`select summarized_lsn >= $1::pg_lsn as done from pg_get_wal_summarizer_state()`, [row?.['lsn']]))[0]?.['done'],
    (done) => done === true,
    { timeoutMs: 60_000, what: 'WAL summarization' },
  );
}

async function chownTree(path: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(path, owner.uid, owner.gid);
  if (!(await stat(path)).isDirectory()) return;
  for (const name of await readdir(path)) await chownTree(join(path, name), owner);
}

describe.each([17, 18] as const)(
  'PostgreSQL %i BASE_BACKUP INCREMENTAL (UPLOAD_MANIFEST) through writeIncremental and combineChain',
  (major) => {
    let source: TestCluster;
    let work: string;
    const spills: SpillStore[] = [];
    const spill = () => {
      const store = new SpillStore({ memoryBytes: 16 * 1024 * 1024, directory: work });
      spills.push(store);
      return store;
    };

    beforeAll(async () => {
      source = await startCluster({ name: `pg${major}-incremental`, major, settings: { summarize_wal: 'on' } });
      work = await mkdtemp(join(tmpdir(), `rookery-pg${major}-incremental-`));
    });

    afterAll(async () => {
      for (const store of spills) await store.close().catch(() => undefined);
      await source?.destroy();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** UPLOAD_MANIFEST + BASE_BACKUP INCREMENTAL, read by writeIncremental: the artifact, the new index, the server's manifest. */
    async function takeIncremental(link: { backupId: string; parentId: string; parentManifest: Buffer; parentIndex: Buffer }) {
      const backup = startReplicationBaseBackup({
        url: source.url,
        label: link.backupId,
        checkpoint: 'fast',
        incremental: { parentManifest: link.parentManifest, parentLabel: `backup ${link.parentId}` },
      });
      const manifest = collectBytes(backup.manifest);
      const store = spill();
      const parent = await PageIndexLookup.load(Readable.from([link.parentIndex]), `page index of backup ${link.parentId}`, store);
      const writing = writeIncremental({
        tar: backup.archive,
        label: `base tar of ${link.backupId}`,
        header: { backupId: link.backupId, parentId: link.parentId },
        parent,
        index: new PageIndexWriter(store),
        serverIncremental: true,
      });
      const artifact = await collectBytes(writing.artifact);
      const { counts, index } = await writing.result;
      await backup.result;
      return { artifact, counts, index: await collectBytes(index.serialize()), manifest: await manifest };
    }

    it('restores a full and two incrementals combined: every table as the source held it, far fewer pages sent', async () => {
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
      const [fullTar, fullManifest] = await Promise.all([collectBytes(full.archive), collectBytes(full.manifest)]);
      await full.result;
      const fullIndex = await collectBytes(
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
      await waitForSummaries(source);
      expect((await source.query(`select count(*)::int as n from pg_available_wal_summaries()`))[0]?.['n']).toBeGreaterThan(0);
      const first = await takeIncremental({ backupId: 'incr-1', parentId: 'full', parentManifest: fullManifest, parentIndex: fullIndex });

      // Most relation files came as INCREMENTAL.* members; the unchanged table's pages were never sent.
      const { counts } = first;
      expect(counts.serverIncrementalFiles).toBeGreaterThan(100);
      expect(counts.pagesSkipped).toBeGreaterThan(1500);
      expect(counts.pagesRead).toBeLessThan((counts.pagesRead + counts.pagesSkipped) / 2);
      expect(counts.removed).toBeGreaterThan(0);

      // An incremental of an incremental: the server reads the INCREMENTAL.* names of the
      // uploaded manifest, rookery compares against the index the first one built unread.
      await source.query(`
      update kept set v = 'again' where id % 5000 = 0;
      insert into created select g, 'z' from generate_series(1, 500) g;
      delete from grown where id % 2 = 0;`);
      await waitForSummaries(source);
      const expected = await tableDigests((sql) => source.query(sql));
      const second = await takeIncremental({
        backupId: 'incr-2',
        parentId: 'incr-1',
        parentManifest: first.manifest,
        parentIndex: first.index,
      });
      expect(second.counts.pagesSkipped).toBeGreaterThan(second.counts.pagesRead);

      const combined = combineChain({
        base: { backupId: 'full', tar: Readable.from([fullTar]) },
        incrementals: [
          { backupId: 'incr-1', artifact: Readable.from([first.artifact]) },
          { backupId: 'incr-2', artifact: Readable.from([second.artifact]) },
        ],
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

      const ctl = new PgCtlDriver(runner, await PgBinaries.resolve({ binDir: serverBinDir(major), requiredTool: 'initdb' }));
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
      const unsummarized = await startCluster({ name: `pg${major}-no-summaries`, major });
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
  },
);

describe('BASE_BACKUP INCREMENTAL before PostgreSQL 17', () => {
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
