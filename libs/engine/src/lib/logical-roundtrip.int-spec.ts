import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest, IntegrityError, RestoreTargetError } from '@rookery/core';
import {
  CONTENT_DATABASE,
  OLAP_DATABASE,
  OLAP_MATERIALIZED_VIEWS,
  TableChecksums,
  TestCluster,
  acquireS3,
  diffTableChecksums,
  seedContent,
  seedOlap,
  startCluster,
  tableChecksums,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

jest.setTimeout(300_000);

/**
 * The logical tiers' promise: what a restore gives back is the source at backup time, table for
 * table (order-independent row checksums), with the OLAP audit log's rows left out and every
 * materialized view usable; a damaged artifact or an occupied target never yields a half-restore.
 */
describe('logical backup and restore of the content and olap tiers', () => {
  let source: TestCluster;
  let target: TestCluster;
  let work: string;
  let content: TableChecksums;
  let olap: TableChecksums;
  const engines: RookeryEngine[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-logical-'));
    [source, target] = await Promise.all([startCluster({ name: 'logical-source' }), startCluster({ name: 'logical-target' })]);
    await Promise.all([seedContent(source.url, { sizeMb: 12, seed: 4 }), seedOlap(source.url, { sizeMb: 8, seed: 4 })]);
    content = await tableChecksums(source.urlFor(CONTENT_DATABASE));
    olap = await tableChecksums(source.urlFor(OLAP_DATABASE));
  }, 240_000);

  afterAll(async () => {
    await Promise.all(engines.map((engine) => engine.close()));
    await Promise.all([source?.destroy(), target?.destroy()]);
    await rm(work, { recursive: true, force: true });
  });

  async function engineFor(options: {
    repository: string;
    logical?: Record<string, unknown>;
    encrypted?: boolean;
    contentUrl?: string;
  }): Promise<RookeryEngine> {
    const config = buildConfig(
      {
        repositories: [options.repository],
        ...(options.encrypted ? { encryption: { keyEnv: 'TEST_ROOKERY_KEY' } } : {}),
        tiers: {
          content: {
            pgUrl: options.contentUrl ?? source.urlFor(CONTENT_DATABASE),
            policy: { logical: { compression: { codec: 'zstd', level: 6 }, ...options.logical } },
          },
          olap: { pgUrl: source.urlFor(OLAP_DATABASE), policy: { ...(options.logical ? { logical: options.logical } : {}) } },
        },
      },
      'test',
      {},
      { TEST_ROOKERY_KEY: randomBytes(32).toString('hex') },
    );
    const engine = await createEngine(config, { actor: 'test' });
    engines.push(engine);
    return engine;
  }

  async function s3Repository(prefix: string): Promise<string> {
    const s3 = await acquireS3('primary');
    const bucket = `logical-${prefix}-${randomBytes(3).toString('hex')}`;
    await s3.createBucket(bucket);
    return `s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
  }

  it.each([
    { name: 'custom format, fs store, streamed restore', store: 'fs', format: 'custom', jobs: 1, encrypted: false },
    { name: 'custom format, s3 store, encrypted, parallel restore', store: 's3', format: 'custom', jobs: 2, encrypted: true },
    { name: 'directory format with 2 dump workers, fs store', store: 'fs', format: 'directory', jobs: 2, encrypted: false },
  ])('content: $name restores every table identical', async (variant) => {
    const repository =
      variant.store === 'fs' ? `file://${join(work, `content-${variant.format}-${variant.jobs}`)}` : await s3Repository('content');
    const engine = await engineFor({ repository, encrypted: variant.encrypted, logical: { format: variant.format, jobs: 2 } });

    const manifest = await engine.backup({ tier: 'content' });
    expect(manifest.method).toBe('logical');
    expect(manifest.artifacts.map((artifact) => [artifact.name, artifact.kind])).toEqual([
      [expect.stringMatching(/^metadata\.(dump|dir\.tar)\.zst/), 'dump'],
      [expect.stringMatching(/^objects\.(dump|dir\.tar)\.zst/), 'dump'],
    ]);
    expect(manifest.artifacts[0].compression).toEqual({ codec: 'zstd', level: 6 });
    // The split: the big table's rows are in the objects artifact, not in the metadata one.
    expect(manifest.artifacts[1].bytes).toBeGreaterThan(manifest.artifacts[0].bytes);
    expect(manifest.logical?.steps.map((step) => step.sections.join('+'))).toEqual(['pre-data+data', 'data', 'post-data']);

    const database = `content_${variant.store}_${variant.format}_${variant.jobs}`;
    const result = await engine.restore({ tier: 'content', backup: manifest.id, targetUrl: target.urlFor(database), jobs: variant.jobs });
    expect(result.createdDatabase).toBe(true);
    expect(result.steps.map((step) => step.mode)).toEqual(
      variant.format === 'directory' || variant.jobs > 1 ? ['local', 'local', 'local'] : ['local', 'stream', 'local'],
    );
    // rookery's change tracking (definitions, no rows) comes along with the content tier's schema.
    const restored = await tableChecksums(target.urlFor(database));
    expect(Object.keys(restored).filter((table) => table.startsWith('rookery.'))).toEqual([
      'rookery.change_log',
      'rookery.change_tracking',
    ]);
    expect(
      diffTableChecksums(content, Object.fromEntries(Object.entries(restored).filter(([table]) => !table.startsWith('rookery.')))),
    ).toEqual([]);
    const [sequence] = await target.query<{ last: string }>('select last_value::text as last from content_objects_id_seq', [], database);
    const [max] = await source.query<{ max: string }>('select max(id)::text as max from content_objects', [], CONTENT_DATABASE);
    expect(sequence.last).toBe(max.max);
  });

  it("content: a database without the policy's split table is dumped whole in one artifact, with a warning, and restores identical", async () => {
    // The default content policy splits out public.content_objects (PenguinMails' big table); a
    // content database of another schema must still be backed up, not refused.
    await source.query('create database content_other');
    await source.query(
      `create table accounts (id bigint primary key, name text not null);
       create table notes (id bigint primary key, account bigint references accounts, body text);
       insert into accounts select g, 'account ' || g from generate_series(1, 500) g;
       insert into notes select g, 1 + g % 500, repeat(md5(g::text), 20) from generate_series(1, 3000) g;`,
      [],
      'content_other',
    );
    const expected = await tableChecksums(source.urlFor('content_other'));
    const engine = await engineFor({ repository: `file://${join(work, 'content-other')}`, contentUrl: source.urlFor('content_other') });
    const warnings: string[] = [];
    const manifest = await engine.backup({ tier: 'content', onWarning: (warning) => warnings.push(warning) });
    expect(warnings).toEqual([expect.stringContaining("splitTable 'public.content_objects' names no table of this database")]);
    expect(manifest.artifacts.map((artifact) => artifact.name)).toEqual([expect.stringMatching(/^full\.dump\.zst/)]);
    expect(manifest.logical?.steps.map((step) => step.sections.join('+'))).toEqual(['pre-data+data+post-data']);

    await engine.restore({ tier: 'content', backup: manifest.id, targetUrl: target.urlFor('content_other_restored') });
    const restored = await tableChecksums(target.urlFor('content_other_restored'));
    const userTables = (sums: TableChecksums) =>
      Object.fromEntries(Object.entries(sums).filter(([table]) => !table.startsWith('rookery.')));
    expect(Object.keys(userTables(restored)).sort()).toEqual(['public.accounts', 'public.notes']);
    expect(diffTableChecksums(userTables(expected), userTables(restored))).toEqual([]);
  });

  describe('olap', () => {
    let engine: RookeryEngine;
    let manifest: BackupManifest;

    beforeAll(async () => {
      engine = await engineFor({ repository: await s3Repository('olap') });
      manifest = await engine.backup({ tier: 'olap' });
    });

    it('restores without the audit log rows, every other table identical, every materialized view refreshed', async () => {
      expect(manifest.logical?.excludedTableData).toEqual(['*.admin_audit_log']);
      expect(manifest.logical?.materializedViews).toEqual(OLAP_MATERIALIZED_VIEWS.map((view) => view.name).sort());
      const database = 'olap_full';
      const result = await engine.restore({ tier: 'olap', backup: 'latest', targetUrl: target.urlFor(database) });

      const restored = await tableChecksums(target.urlFor(database));
      expect(restored['public.admin_audit_log']).toEqual({ rows: 0, checksum: '0' });
      const withoutAuditLog = (sums: TableChecksums) =>
        Object.fromEntries(Object.entries(sums).filter(([table]) => table !== 'public.admin_audit_log'));
      expect(diffTableChecksums(withoutAuditLog(olap), withoutAuditLog(restored))).toEqual([]);

      // The daily stats feed the monthly summary, so they must be refreshed first.
      expect(result.refreshedMaterializedViews).toEqual([
        'analytics.mv_daily_campaign_stats',
        'analytics.mv_monthly_organisation_summary',
        'analytics.mv_provider_deliverability',
      ]);
      for (const view of OLAP_MATERIALIZED_VIEWS) {
        const [row] = await target.query<{ rows: string; missing: string; extra: string }>(
          `select (select count(*) from ${view.name})::text as rows,
                  (select count(*) from ((${view.query}) except all (select * from ${view.name})) x)::text as missing,
                  (select count(*) from ((select * from ${view.name}) except all (${view.query})) y)::text as extra`,
          [],
          database,
        );
        expect({ view: view.name, ...row }).toEqual({ view: view.name, rows: expect.not.stringMatching(/^0$/), missing: '0', extra: '0' });
      }
    });

    it('takes a weekly snapshot kept snapshotRetentionDays', async () => {
      const snapshot = await engine.backup({ tier: 'olap', type: 'snapshot' });
      expect(snapshot.type).toBe('snapshot');
      const kept = Date.parse(snapshot.retentionUntil) - Date.parse(snapshot.finishedAt);
      expect(Math.round(kept / 86_400_000)).toBe(365);
      await expect(engine.backup({ tier: 'content', type: 'snapshot' })).rejects.toThrow(/not available for tier 'content'/);
    });

    it.each([
      { select: { table: 'analytics.fact_email_sends' }, tables: ['analytics.fact_email_sends'], views: [] as string[] },
      { select: { schema: 'reporting' }, tables: ['reporting.saved_reports'], views: [] as string[] },
      {
        select: { schema: 'analytics' },
        tables: [
          'analytics.dim_campaign',
          'analytics.dim_date',
          'analytics.dim_organisation',
          'analytics.fact_deliverability',
          'analytics.fact_email_sends',
        ],
        views: OLAP_MATERIALIZED_VIEWS.map((view) => view.name),
      },
    ])('restores only $select', async ({ select, tables, views }) => {
      const database = `olap_only_${(select.table ?? select.schema ?? '').replace(/\W/g, '_')}`;
      const result = await engine.restore({ tier: 'olap', backup: manifest.id, targetUrl: target.urlFor(database), ...select });
      const restored = await tableChecksums(target.urlFor(database));
      expect(Object.keys(restored).sort()).toEqual(tables);
      for (const table of tables) expect(restored[table]).toEqual(olap[table]);
      expect(result.refreshedMaterializedViews).toEqual(views);
    });

    it('refuses a database with user tables and leaves it untouched; --clean replaces it', async () => {
      const database = 'olap_occupied';
      await target.query(`create database ${database}`);
      await target.query('create table keep_me (id int primary key); insert into keep_me values (1), (2)', [], database);
      const before = await tableChecksums(target.urlFor(database));

      const refused = engine.restore({ tier: 'olap', backup: manifest.id, targetUrl: target.urlFor(database) });
      await expect(refused).rejects.toBeInstanceOf(RestoreTargetError);
      await expect(refused).rejects.toThrow(/is not empty \(1 user tables\)/);
      expect(await tableChecksums(target.urlFor(database))).toEqual(before);

      await engine.restore({ tier: 'olap', backup: manifest.id, targetUrl: target.urlFor(database), clean: true });
      const restored = await tableChecksums(target.urlFor(database));
      expect(restored['public.keep_me']).toBeUndefined();
      expect(restored['analytics.fact_email_sends']).toEqual(olap['analytics.fact_email_sends']);
    });
  });

  it.each([
    { artifact: 'objects', jobs: 1, mode: 'streamed into pg_restore' },
    { artifact: 'metadata', jobs: 1, mode: 'fetched locally' },
    { artifact: 'objects', jobs: 2, mode: 'fetched locally for -j' },
  ])('stops at a corrupted $artifact artifact ($mode) with an error naming it, leaving no database', async ({ artifact, jobs }) => {
    const directory = join(work, `corrupt-${artifact}-${jobs}`);
    const engine = await engineFor({ repository: `file://${directory}` });
    const manifest = await engine.backup({ tier: 'content' });
    const record = manifest.artifacts.find((candidate) => candidate.name.startsWith(`${artifact}.`));
    if (!record) throw new Error(`no ${artifact} artifact`);
    await flipByte(await findFile(directory, record.name), Math.floor(record.storedBytes * 0.8));

    const database = `corrupt_${artifact}_${jobs}`;
    const restore = engine.restore({ tier: 'content', backup: manifest.id, targetUrl: target.urlFor(database), jobs });
    await expect(restore).rejects.toBeInstanceOf(IntegrityError);
    await expect(restore).rejects.toThrow(new RegExp(`artifact '${record.name.replace(/\./g, '\\.')}`));
    const [exists] = await target.query<{ exists: boolean }>('select exists (select 1 from pg_database where datname = $1) as exists', [
      database,
    ]);
    expect(exists.exists).toBe(false);
  });

  it('refuses to restore a logical backup into a data directory', async () => {
    const engine = await engineFor({ repository: `file://${join(work, 'content-custom-1')}` });
    await expect(engine.restore({ tier: 'content', backup: 'latest', to: join(work, 'nowhere') })).rejects.toThrow(
      /--to restores physical backups/,
    );
  });
});

async function findFile(directory: string, name: string): Promise<string> {
  const entries = await readdir(directory, { recursive: true });
  const found = entries.find((entry) => entry.endsWith(`/${name}`));
  if (!found) throw new Error(`artifact file ${name} not found under ${directory}`);
  return join(directory, found);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, offset);
    byte[0] ^= 0x5a;
    await handle.write(byte, 0, 1, offset);
  } finally {
    await handle.close();
  }
}
