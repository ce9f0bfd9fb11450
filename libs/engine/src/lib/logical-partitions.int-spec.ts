import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildConfig } from '@rookery/config';
import { BackupManifest, IncrementalChainError } from '@rookery/core';
import { DEFAULT_PG_BIN_DIR } from '@rookery/postgres';
import { TableChecksums, TestCluster, acquireS3, diffTableChecksums, startCluster, tableChecksums } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

jest.setTimeout(300_000);

const DATABASE = 'partitioned_content';

/** The user tables' rows: rookery's own change log is not user data. */
async function userTables(url: string): Promise<TableChecksums> {
  return Object.fromEntries(Object.entries(await tableChecksums(url)).filter(([table]) => !table.startsWith('rookery.')));
}

/** pg_dump --schema-only, without comments and blank lines. */
async function schemaOf(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(join(DEFAULT_PG_BIN_DIR, 'pg_dump'), ['--schema-only', '--no-password', `--dbname=${url}`], {
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('--') && !/^\\(un)?restrict\b/.test(line))
    .join('\n');
}

async function s3Repository(): Promise<string> {
  const s3 = await acquireS3('primary');
  const bucket = `partitions-${randomBytes(3).toString('hex')}`;
  await s3.createBucket(bucket);
  return `s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
}

/**
 * A content database whose big table is partitioned (monthly ranges, a default partition, a
 * primary key including the partition key), under the default content policy (incrementals):
 * the full tracks the leaves, incrementals across routed inserts, cross-partition updates,
 * deletes and a truncate restore identical at every point of the chain, with the same schema; then
 * a partition attached (a table holding rows), one detached (its rows changed after), one created,
 * one dropped, then a sub-partitioned one created and one re-bound, each followed by an
 * incremental, every point restoring identical with the same schema; a detach of a partition a
 * view reads refused naming the view; any other schema change still refuses the incremental; --table of the partitioned
 * table restores its partitions. On the filesystem and the S3 store.
 */
describe.each(['filesystem', 'S3'] as const)('content incrementals of a partitioned table (%s store)', (store) => {
  let source: TestCluster;
  let target: TestCluster;
  let engine: RookeryEngine;
  let work: string;
  const warnings: string[] = [];
  const chain: { manifest: BackupManifest; sums: TableChecksums; schema: string }[] = [];
  const url = () => source.urlFor(DATABASE);
  const run = (statement: string) => source.query(statement, [], DATABASE);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-partitions-'));
    [source, target] = await Promise.all([
      startCluster({ name: `partitions-source-${store}` }),
      startCluster({ name: `partitions-target-${store}` }),
    ]);
    await source.query(`create database ${DATABASE}`);
    await run(`
      create table events (
        id bigserial, created_at date not null, kind text not null, payload text,
        primary key (id, created_at)
      ) partition by range (created_at);
      create table events_2026_01 partition of events for values from ('2026-01-01') to ('2026-02-01');
      create table events_2026_02 partition of events for values from ('2026-02-01') to ('2026-03-01');
      create table events_2026_03 partition of events for values from ('2026-03-01') to ('2026-04-01');
      create table events_default partition of events default;
      create index events_kind_idx on events (kind);
      create table notes (id int primary key, body text);
      -- The content policy dumps this table's rows into an artifact of their own.
      create table content_objects (id bigint primary key, body text);
      insert into content_objects select g, 'object ' || g from generate_series(1, 10) g;
      insert into events (created_at, kind, payload)
        select date '2026-01-01' + (g % 120), 'k' || (g % 5), repeat('x', g % 50) from generate_series(1, 2000) g;
      insert into notes select g, 'note ' || g from generate_series(1, 20) g;`);
    const repository = store === 'filesystem' ? `file://${join(work, 'repo')}` : await s3Repository();
    const config = buildConfig({ repositories: [repository], tiers: { content: { pgUrl: url() } } }, 'test', {}, {});
    engine = await createEngine(config, { actor: 'test' });
  }, 240_000);

  afterAll(async () => {
    await engine?.close();
    await Promise.all([source?.destroy(), target?.destroy()]);
    await rm(work, { recursive: true, force: true });
  });

  async function backup(type: 'full' | 'incremental'): Promise<BackupManifest> {
    const manifest = await engine.backup({ tier: 'content', type, onWarning: (warning: string) => warnings.push(warning) });
    chain.push({ manifest, sums: await userTables(url()), schema: await schemaOf(url()) });
    return manifest;
  }

  it('backs up with the default policy, tracking the leaves, and restores every point of the chain identical', async () => {
    const full = await backup('full');
    const point = full.logical?.changeTracking;
    expect(point?.tracked).toEqual(
      expect.arrayContaining([
        'public.events_2026_01',
        'public.events_2026_02',
        'public.events_2026_03',
        'public.events_default',
        'public.notes',
      ]),
    );
    expect(point?.tracked).not.toContain('public.events');
    expect(point?.partitioned).toEqual([
      {
        table: 'public.events',
        partitions: expect.arrayContaining([
          { table: 'public.events_default', bound: 'DEFAULT' },
          { table: 'public.events_2026_02', bound: "FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')" },
        ]),
      },
    ]);
    expect(point?.untracked).toEqual([]);
    expect(warnings).toEqual([]);

    // Routed inserts (the default partition too), updates moving rows between partitions and
    // into and out of the default one, updates in place, deletes.
    await run(
      `insert into events (created_at, kind, payload) values ('2026-01-15', 'new', 'a'), ('2026-03-02', 'new', 'b'), ('2027-06-01', 'new', 'later')`,
    );
    await run(`update events set created_at = created_at + 31 where id between 1 and 40`);
    await run(`update events set created_at = date '2030-01-01' where id between 41 and 45`);
    await run(`update events set created_at = date '2026-02-10' where created_at >= date '2026-04-01' and id between 100 and 300`);
    await run(`update events set payload = 'edited' where id between 500 and 520`);
    await run(`delete from events where id between 600 and 650`);
    await run(`update notes set body = 'edited' where id = 3`);
    const first = await backup('incremental');
    expect(first.parent).toBe(full.id);
    const carried = (first.logical?.changes?.tables ?? []).map((table) => table.table);
    expect(carried).toEqual(expect.arrayContaining(['public.events_2026_01', 'public.events_2026_02', 'public.events_default']));
    expect(carried).not.toContain('public.events');

    // Rows the first incremental carried move again; a leaf is truncated and refilled through its
    // root; rows come back to the default partition.
    await run(`update events set created_at = created_at - 31 where id between 1 and 20`);
    await run(`update events set created_at = date '2026-03-31', payload = 'from the future' where created_at = date '2030-01-01'`);
    await run(`delete from events where kind = 'new'`);
    await run(`truncate events_2026_03`);
    await run(
      `insert into events (created_at, kind, payload) select date '2026-03-01' + (g % 31), 'refill', 'r' from generate_series(1, 50) g`,
    );
    await run(`delete from notes where id > 15`);
    const second = await backup('incremental');
    expect(second.parent).toBe(first.id);

    for (const [index, link] of chain.entries()) {
      const database = `point_${index}`;
      await engine.restore({ tier: 'content', backup: link.manifest.id, targetUrl: target.urlFor(database) });
      const sums = await userTables(target.urlFor(database));
      expect({ point: index, differences: diffTableChecksums(link.sums, sums) }).toEqual({ point: index, differences: [] });
      expect(sums['public.events_default'].rows).toBeGreaterThan(0);
      expect(await schemaOf(target.urlFor(database))).toBe(link.schema);
    }
  });

  it('restores a partitioned table with its partitions by --table', async () => {
    const full = chain[0];
    const database = 'only_events';
    await engine.restore({ tier: 'content', backup: full.manifest.id, targetUrl: target.urlFor(database), table: 'public.events' });
    const sums = await userTables(target.urlFor(database));
    expect(Object.keys(sums).sort()).toEqual([
      'public.events_2026_01',
      'public.events_2026_02',
      'public.events_2026_03',
      'public.events_default',
    ]);
    for (const [table, sum] of Object.entries(sums)) expect({ table, sum }).toEqual({ table, sum: full.sums[table] });
    const [attached] = await target.query<{ partitions: number; rows: number }>(
      `select (select count(*)::int from pg_inherits where inhparent = 'public.events'::regclass) as partitions,
              (select count(*)::int from public.events) as rows`,
      [],
      database,
    );
    expect(attached).toEqual({
      partitions: 4,
      rows:
        full.sums['public.events_2026_01'].rows +
        full.sums['public.events_2026_02'].rows +
        full.sums['public.events_2026_03'].rows +
        full.sums['public.events_default'].rows,
    });
  });

  it('follows partitions attached, detached, created and dropped: every point of the chain restores identical, with the same schema', async () => {
    const follow: typeof chain = [];
    const point = async (type: 'full' | 'incremental') => {
      const manifest = await engine.backup({ tier: 'content', type, onWarning: (warning: string) => warnings.push(warning) });
      follow.push({ manifest, sums: await userTables(url()), schema: await schemaOf(url()) });
      return manifest;
    };
    // A table of its own at the full, with rows, attached later.
    await run(`create table events_2028_01 (like events including all)`);
    await run(
      `insert into events_2028_01 (id, created_at, kind, payload) select 900000 + g, date '2028-01-01' + (g % 31), 'standalone', 's' from generate_series(1, 40) g`,
    );
    const full = await point('full');

    // Rows only: routed inserts, moves between partitions and the default one, deletes.
    await run(`insert into events (created_at, kind, payload) values ('2026-02-11', 'rows', 'a'), ('2029-05-01', 'rows', 'default')`);
    await run(`update events set created_at = created_at + 28 where id between 1000 and 1060`);
    await run(`update events set created_at = date '2031-01-01' where id between 1061 and 1070`);
    await run(`delete from events where id between 1100 and 1130`);
    await run(`update events_2028_01 set payload = 'before attach' where id < 900010`);
    await point('incremental');

    // ATTACH of a table that already holds rows, rows written through the root into it.
    await run(`delete from events_2028_01 where id > 900035`);
    await run(`alter table events attach partition events_2028_01 for values from ('2028-01-01') to ('2028-02-01')`);
    await run(`insert into events (created_at, kind, payload) values ('2028-01-15', 'routed', 'to the attached one')`);
    await run(`update events set created_at = '2028-01-20' where id between 1200 and 1210`);
    const attached = await point('incremental');
    expect(attached.logical?.changes?.layout).toEqual({
      changes: ['public.events_2028_01 was attached to public.events'],
      recreated: ['public.events_2028_01'],
      dropped: [],
    });
    expect(attached.logical?.changes?.tables).toContainEqual(
      expect.objectContaining({ table: 'public.events_2028_01', mode: 'whole', rows: follow[2].sums['public.events_2028_01'].rows }),
    );
    expect(warnings.at(-1)).toMatch(
      /the partitions changed since backup '.*': public\.events_2028_01 was attached to public\.events; the incremental follows/,
    );

    // DETACH of a partition, then rows changed in the detached table and January rows routed to
    // the default partition.
    await run(`alter table events detach partition events_2026_01`);
    await run(`update events_2026_01 set payload = 'after detach' where id % 7 = 0`);
    await run(`delete from events_2026_01 where id % 11 = 0`);
    await run(`insert into events_2026_01 (id, created_at, kind, payload) values (990001, '2026-01-09', 'detached', 'd')`);
    await run(`insert into events (created_at, kind, payload) values ('2026-01-10', 'january', 'now in the default partition')`);
    const detached = await point('incremental');
    expect(detached.logical?.changes?.layout).toEqual({
      changes: ['public.events_2026_01 was detached from public.events'],
      recreated: ['public.events_2026_01'],
      dropped: [],
    });

    // CREATE of a new partition, rows inserted into it and moved into it.
    await run(`create table events_2028_02 partition of events for values from ('2028-02-01') to ('2028-03-01')`);
    await run(
      `insert into events (created_at, kind, payload) select date '2028-02-01' + (g % 28), 'created', 'c' from generate_series(1, 30) g`,
    );
    await run(`update events set created_at = '2028-02-14' where id between 1300 and 1310`);
    const created = await point('incremental');
    expect(created.logical?.changes?.layout).toEqual({
      changes: ['partition public.events_2028_02 of public.events was created'],
      recreated: ['public.events_2028_02'],
      dropped: [],
    });
    expect(created.logical?.changes?.tables).toContainEqual(expect.objectContaining({ table: 'public.events_2028_02', mode: 'whole' }));

    // DROP of a partition, and the rows of the new one change again (its triggers track it now).
    await run(`drop table events_2026_03`);
    await run(`update events set payload = 'tracked' where created_at >= '2028-02-01' and created_at < '2028-02-10'`);
    await run(`delete from events where created_at = '2028-02-20'`);
    const last = await point('incremental');
    expect(last.logical?.changes?.layout).toEqual({
      changes: ['partition public.events_2026_03 of public.events was dropped'],
      recreated: [],
      dropped: ['public.events_2026_03'],
    });
    const tables = Object.fromEntries((last.logical?.changes?.tables ?? []).map((table) => [table.table, table.mode]));
    expect(tables['public.events_2028_02']).toBe('keys');
    expect(last.logical?.changeTracking?.tracked).toEqual(expect.arrayContaining(['public.events_2028_02']));
    expect(last.logical?.changeTracking?.tracked).not.toContain('public.events_2026_03');

    // A partition created with partitions of its own, and one re-bound (detached, attached again
    // with a wider range) in the same interval.
    await run(
      `create table events_2029 partition of events for values from ('2029-06-01') to ('2030-01-01') partition by range (created_at)`,
    );
    await run(`create table events_2029_h2 partition of events_2029 default`);
    await run(`insert into events (created_at, kind, payload) values ('2029-07-01', 'sub', 's'), ('2029-12-31', 'sub', 't')`);
    await run(`alter table events detach partition events_2028_02`);
    await run(`alter table events attach partition events_2028_02 for values from ('2028-02-01') to ('2028-04-01')`);
    await run(`insert into events (created_at, kind, payload) values ('2028-03-15', 'wider', 'w')`);
    const nested = await point('incremental');
    expect(nested.logical?.changes?.layout?.recreated).toEqual(['public.events_2028_02', 'public.events_2029', 'public.events_2029_h2']);

    expect(follow.map((link) => link.manifest.parent)).toEqual([null, ...follow.slice(0, -1).map((link) => link.manifest.id)]);
    expect(follow[0].manifest.id).toBe(full.id);
    for (const [index, link] of follow.entries()) {
      const database = `follow_${index}`;
      await engine.restore({ tier: 'content', backup: link.manifest.id, targetUrl: target.urlFor(database) });
      const sums = await userTables(target.urlFor(database));
      expect({ point: index, differences: diffTableChecksums(link.sums, sums) }).toEqual({ point: index, differences: [] });
      expect({ point: index, schema: await schemaOf(target.urlFor(database)) }).toEqual({ point: index, schema: link.schema });
    }
  });

  it('refuses to follow a detach of a partition a view reads, naming the view (the restore could not drop the partition)', async () => {
    await run(`create view recent_events as select * from events_2028_02`);
    await backup('full');
    await run(`alter table events detach partition events_2028_02`);
    const refused = engine.backup({ tier: 'content', type: 'incremental' });
    await expect(refused).rejects.toBeInstanceOf(IncrementalChainError);
    await expect(refused).rejects.toThrow(
      /public\.events_2028_02 was detached from public\.events\) in a way an incremental cannot follow: rule _RETURN on view recent_events depends on public\.events_2028_02/,
    );
    await run(`alter table events attach partition events_2028_02 for values from ('2028-02-01') to ('2028-04-01')`);
    const followed = await backup('incremental');
    expect(followed.logical?.changes?.layout).toBeUndefined();
  });

  it('still refuses an incremental across any other schema change', async () => {
    await run(`alter table notes add column archived boolean`);
    const refused = engine.backup({ tier: 'content', type: 'incremental' });
    await expect(refused).rejects.toBeInstanceOf(IncrementalChainError);
    await expect(refused).rejects.toThrow(/the schema of database '[a-z_]+' changed since backup .*public\.notes/);
    await expect(refused).rejects.toMatchObject({ hint: expect.stringMatching(/rookery backup --tier content --type full/) });
  });
});
