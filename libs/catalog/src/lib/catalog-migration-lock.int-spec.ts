import { Client } from 'pg';
import { TestCluster, pollUntil, startCluster } from '@rookery/testing';
import { BackupCatalog } from './backup.catalog';
import { CATALOG_MIGRATION_LOCK } from './catalog-data-source.factory';
import { EventLedger } from './event.ledger';

jest.setTimeout(300_000);

const MIGRATIONS = [
  'CreateBackupRecord1767225600000',
  'CreateOutboxEvent1795651200000',
  'CreateLedgerEvent1795654800000',
  'AddBackupRecordParent1795737600000',
];

describe('catalog migrations on one empty PostgreSQL database (advisory lock)', () => {
  let cluster: TestCluster;
  let n = 0;

  async function emptyCatalog(): Promise<string> {
    const database = `race_${++n}`;
    await cluster.query(`create database ${database}`);
    return database;
  }

  beforeAll(async () => {
    cluster = await startCluster({ name: 'catalog-lock' });
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('several openers at once all open, and the schema is migrated once', async () => {
    const database = await emptyCatalog();
    const url = cluster.urlFor(database);
    const opened = await Promise.all([BackupCatalog.open(url), EventLedger.open(url), BackupCatalog.open(url), EventLedger.open(url)]);
    try {
      const rows = await cluster.query<{ name: string }>('select name from catalog_migrations order by id', [], database);
      expect(rows.map((row) => row.name)).toEqual(MIGRATIONS);
      await expect((opened[0] as BackupCatalog).check()).resolves.toBeUndefined();
      expect(await (opened[1] as EventLedger).count()).toBe(0);
    } finally {
      await Promise.all(opened.map((catalog) => catalog.close()));
    }
  });

  it('an opener waits while another holds the migration lock, then finds the schema migrated', async () => {
    const database = await emptyCatalog();
    const url = cluster.urlFor(database);
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1)', [CATALOG_MIGRATION_LOCK]);
      let settled = false;
      const opening = BackupCatalog.open(url).finally(() => (settled = true));
      // The opener is queued on the lock (pg_locks shows its ungranted advisory lock)...
      await pollUntil(
        async () =>
          (
            await holder.query<{ waiting: string }>(
              `select count(*) as waiting from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = $1)`,
              [database],
            )
          ).rows[0].waiting,
        (waiting) => waiting === '1',
        { what: 'the opener to wait for the migration lock' },
      );
      expect(settled).toBe(false);
      expect((await holder.query(`select to_regclass('catalog_migrations') as found`)).rows[0].found).toBeNull();
      // ...and migrates once the holder lets go.
      await holder.query('select pg_advisory_unlock($1)', [CATALOG_MIGRATION_LOCK]);
      const catalog = await opening;
      await catalog.close();
      expect((await holder.query<{ name: string }>('select name from catalog_migrations order by id')).rows.map((row) => row.name)).toEqual(
        MIGRATIONS,
      );
    } finally {
      await holder.end();
    }
  });
});
