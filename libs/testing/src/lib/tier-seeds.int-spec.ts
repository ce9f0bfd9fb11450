import { TestCluster, startCluster } from './cluster.harness';
import { CONTENT_DATABASE, OLAP_DATABASE, OLAP_MATERIALIZED_VIEWS, seedContent, seedOlap, tableChecksums } from '@rookery/demo';

jest.setTimeout(180_000);

describe('seedContent and seedOlap', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ name: 'tier-seeds' });
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('seeds penguinmails_content at about the requested size, dominated by content_objects', async () => {
    const result = await seedContent(cluster.url, { sizeMb: 8, seed: 3 });
    expect(result.database).toBe(CONTENT_DATABASE);
    expect(result.dataBytes / (8 * 1024 * 1024)).toBeGreaterThan(0.75);
    expect(result.dataBytes / (8 * 1024 * 1024)).toBeLessThan(1.25);
    const [share] = await cluster.query<{ share: number }>(
      `select pg_total_relation_size('content_objects')::float8 / sum(pg_total_relation_size(c.oid)) as share
       from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public' and c.relkind = 'r'`,
      [],
      CONTENT_DATABASE,
    );
    expect(Number(share.share)).toBeGreaterThan(0.7);
    const [foreignKeys] = await cluster.query<{ count: string }>(
      `select count(*) from pg_constraint where contype = 'f'`,
      [],
      CONTENT_DATABASE,
    );
    expect(Number(foreignKeys.count)).toBe(3);
  });

  it('seeds the same rows for the same seed', async () => {
    await seedContent(cluster.url, { sizeMb: 2, seed: 5, database: 'content_a' });
    await seedContent(cluster.url, { sizeMb: 2, seed: 5, database: 'content_b' });
    await seedContent(cluster.url, { sizeMb: 2, seed: 6, database: 'content_c' });
    const a = await tableChecksums(cluster.urlFor('content_a'));
    expect(await tableChecksums(cluster.urlFor('content_b'))).toEqual(a);
    expect(await tableChecksums(cluster.urlFor('content_c'))).not.toEqual(a);
  });

  it('seeds penguinmails_olap with populated materialized views and an audit log', async () => {
    const result = await seedOlap(cluster.url, { sizeMb: 8, seed: 3 });
    expect(result.database).toBe(OLAP_DATABASE);
    expect(result.dataBytes / (8 * 1024 * 1024)).toBeGreaterThan(0.75);
    expect(result.dataBytes / (8 * 1024 * 1024)).toBeLessThan(1.25);
    const views = await cluster.query<{ name: string; populated: boolean }>(
      `select schemaname || '.' || matviewname as name, ispopulated as populated from pg_matviews order by 1`,
      [],
      OLAP_DATABASE,
    );
    expect(views).toEqual(
      OLAP_MATERIALIZED_VIEWS.map((view) => ({ name: view.name, populated: true })).sort((a, b) => a.name.localeCompare(b.name)),
    );
    const sums = await tableChecksums(cluster.urlFor(OLAP_DATABASE));
    expect(sums['public.admin_audit_log'].rows).toBeGreaterThan(0);
    expect(Object.keys(sums).filter((table) => table.startsWith('analytics.'))).toHaveLength(5);
  });
});
