import { TestCluster, startCluster } from './cluster.harness';
import { OLTP_DATABASE, SeedProgress, diffTableChecksums, seedOltp, tableChecksums } from '@rookery/demo';

jest.setTimeout(120_000);

describe('seedOltp and tableChecksums', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ name: 'seed' });
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('seeds penguinmails_oltp with keys, a table without one, and about the requested size', async () => {
    const progress: SeedProgress[] = [];
    const result = await seedOltp(cluster.url, { sizeMb: 5, seed: 7, onProgress: (p) => progress.push(p) });

    expect(result.database).toBe(OLTP_DATABASE);
    expect(result.dataBytes / (5 * 1024 * 1024)).toBeGreaterThan(0.75);
    expect(result.dataBytes / (5 * 1024 * 1024)).toBeLessThan(1.25);
    expect(progress[progress.length - 1]).toEqual({ phase: 'done', fraction: 1 });
    expect(progress.map((p) => p.fraction)).toEqual([...progress.map((p) => p.fraction)].sort((a, b) => a - b));

    const withoutKey = await cluster.query<{ name: string }>(
      `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'public' and c.relkind = 'r'
         and not exists (select 1 from pg_constraint k where k.conrelid = c.oid and k.contype = 'p')`,
      [],
      OLTP_DATABASE,
    );
    expect(withoutKey.map((row) => row.name)).toEqual(['email_events']);
    const [nulls] = await cluster.query<{ phones: string; opened: string }>(
      `select count(*) filter (where phone is null) as phones,
              (select count(*) filter (where opened_at is null) from sent_emails) as opened from contacts`,
      [],
      OLTP_DATABASE,
    );
    expect(Number(nulls.phones)).toBeGreaterThan(0);
    expect(Number(nulls.opened)).toBeGreaterThan(0);
  });

  it('gives every user table a row count and checksum', async () => {
    const sums = await tableChecksums(cluster.urlFor(OLTP_DATABASE));
    expect(Object.keys(sums).sort()).toEqual(
      ['campaigns', 'contacts', 'email_events', 'organisations', 'sent_emails', 'users'].map((t) => `public.${t}`),
    );
    expect(sums['public.sent_emails'].rows).toBeGreaterThan(1000);
  });

  it('is deterministic for a seed', async () => {
    await seedOltp(cluster.url, { sizeMb: 5, seed: 7, database: 'oltp_again' });
    await seedOltp(cluster.url, { sizeMb: 5, seed: 8, database: 'oltp_other' });
    const first = await tableChecksums(cluster.urlFor(OLTP_DATABASE));
    expect(diffTableChecksums(first, await tableChecksums(cluster.urlFor('oltp_again')))).toEqual([]);
    expect(diffTableChecksums(first, await tableChecksums(cluster.urlFor('oltp_other')))).not.toEqual([]);
  });

  it('ignores physical row order but sees one changed row', async () => {
    await cluster.query('create database order_test');
    await cluster.query(
      `create table items (id int, label text, price numeric, at timestamptz);
       insert into items select g, 'item ' || g, g * 1.5, timestamptz '2025-01-01' + g * interval '1 hour' from generate_series(1, 500) g;
       create table items_reversed as select * from items order by id desc;
       create table items_dup as select * from items;`,
      [],
      'order_test',
    );
    const url = cluster.urlFor('order_test');
    const before = await tableChecksums(url);
    expect(before['public.items']).toEqual(before['public.items_reversed']);

    // Same rows, different physical order: update moves tuples, cluster-like rewrite reorders.
    await cluster.query(`update items set label = label where id % 3 = 0`, [], 'order_test');
    await cluster.query(`vacuum full items`, [], 'order_test');
    expect((await tableChecksums(url))['public.items']).toEqual(before['public.items']);

    await cluster.query(`update items_dup set price = price + 0.01 where id = 250`, [], 'order_test');
    const after = await tableChecksums(url);
    expect(diffTableChecksums(before, after)).toEqual([expect.stringMatching(/^table 'public.items_dup' content differs \(same 500 rows/)]);

    // A duplicated row with another removed keeps the count but not the multiset.
    await cluster.query(
      `delete from items_reversed where id = 1; insert into items_reversed select * from items where id = 2`,
      [],
      'order_test',
    );
    expect((await tableChecksums(url))['public.items_reversed'].rows).toBe(500);
    expect((await tableChecksums(url))['public.items_reversed']).not.toEqual(before['public.items_reversed']);
  });
});

describe('diffTableChecksums', () => {
  it('names missing, unexpected, row-count and content differences', () => {
    const a = { 'public.a': { rows: 1, checksum: '1' }, 'public.b': { rows: 2, checksum: '2' }, 'public.c': { rows: 3, checksum: '3' } };
    const b = { 'public.b': { rows: 3, checksum: '2' }, 'public.c': { rows: 3, checksum: '4' }, 'public.d': { rows: 0, checksum: '0' } };
    expect(diffTableChecksums(a, b)).toEqual([
      "table 'public.a' is missing (expected 1 rows)",
      "table 'public.b' has 3 rows, expected 2",
      "table 'public.c' content differs (same 3 rows, checksum 4, expected 3)",
      "table 'public.d' is unexpected (0 rows)",
    ]);
  });
});
