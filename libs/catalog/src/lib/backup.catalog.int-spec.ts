import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, makeManifest, startCluster } from '@rookery/testing';
import { BackupCatalog } from './backup.catalog';
import { EventLedger } from './event.ledger';
import { CATALOG_MIGRATIONS, createCatalogDataSource } from './catalog-data-source.factory';
import { AddBackupRecordParent1795737600000 } from './migrations/add-backup-record-parent.migration';

jest.setTimeout(60_000);

interface Backend {
  name: string;
  /** Returns a fresh catalog URL for each call (a new file or database). */
  setup(): Promise<{ url: () => Promise<string>; teardown: () => Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    async setup() {
      const dir = await mkdtemp(join(tmpdir(), 'rookery-catalog-'));
      let n = 0;
      return {
        url: async () => `sqlite://${join(dir, 'nested', `catalog-${++n}.sqlite`)}`,
        teardown: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'postgresql',
    async setup() {
      const cluster: TestCluster = await startCluster({ name: 'catalog' });
      let n = 0;
      return {
        url: async () => {
          const database = `catalog_${++n}`;
          await cluster.query(`create database ${database}`);
          return cluster.urlFor(database);
        },
        teardown: () => cluster.destroy(),
      };
    },
  },
];

describe.each(backends)('BackupCatalog on $name', (backend) => {
  let env: Awaited<ReturnType<Backend['setup']>>;
  let catalog: BackupCatalog;

  beforeAll(async () => {
    env = await backend.setup();
  });

  beforeEach(async () => {
    catalog = await BackupCatalog.open(await env.url());
  });

  afterEach(async () => {
    await catalog?.close();
  });

  afterAll(async () => {
    await env?.teardown();
  });

  it('records a run from start to completion with the manifest summary', async () => {
    const manifest = makeManifest();
    const running = await catalog.recordStarted({
      id: manifest.id,
      tier: 'oltp',
      type: 'full',
      method: 'physical',
      startedAt: manifest.startedAt,
      requestedBy: 'api',
    });
    expect(running).toMatchObject({ id: manifest.id, status: 'running', finishedAt: null, bytes: null, artifacts: [] });

    await catalog.recordCompleted(manifest);
    expect(await catalog.get(manifest.id)).toEqual({
      id: manifest.id,
      tier: 'oltp',
      type: 'full',
      method: 'physical',
      status: 'completed',
      startedAt: manifest.startedAt,
      finishedAt: manifest.finishedAt,
      startLsn: '0/2000028',
      stopLsn: '0/2000100',
      bytes: 6_000_000_000,
      storedBytes: 1_000_000_000,
      artifacts: manifest.artifacts,
      error: null,
      requestedBy: 'api',
      parent: null,
    });
  });

  /** A full backup and an incremental taken against it. */
  const fullAndIncremental = () => {
    const full = makeManifest();
    return {
      full,
      incremental: makeManifest({
        id: '20261126T030000Z-oltp',
        type: 'incremental',
        startedAt: '2026-11-26T03:00:00.000Z',
        parent: full.id,
      }),
    };
  };

  it("records an incremental's parent, the backup it was taken against; a full and a running record have none", async () => {
    const { full, incremental } = fullAndIncremental();
    await catalog.recordStarted({
      id: 'in-flight',
      tier: 'oltp',
      type: 'incremental',
      method: 'physical',
      startedAt: '2026-11-26T04:00:00.000Z',
    });
    await catalog.recordCompleted(full);
    await catalog.recordCompleted(incremental);
    expect((await catalog.list('oltp')).map((record) => [record.id, record.parent])).toEqual([
      [full.id, null],
      [incremental.id, full.id],
      ['in-flight', null],
    ]);
  });

  it('replaces the running placeholder when the engine chose another id', async () => {
    await catalog.recordStarted({
      id: 'placeholder',
      tier: 'oltp',
      type: 'full',
      method: 'physical',
      startedAt: '2026-11-26T02:00:00.000Z',
      requestedBy: 'schedule',
    });
    const manifest = makeManifest();
    await catalog.recordCompleted(manifest, { runningId: 'placeholder' });
    expect(await catalog.get('placeholder')).toBeNull();
    expect(await catalog.get(manifest.id)).toMatchObject({ status: 'completed', requestedBy: 'schedule' });
  });

  it('records a failure with its message', async () => {
    await catalog.recordStarted({ id: 'x-oltp', tier: 'oltp', type: 'full', method: 'physical', startedAt: '2026-11-26T02:00:00.000Z' });
    const failed = await catalog.recordFailed('x-oltp', new Error('pg_basebackup failed with exit code 1'));
    expect(failed).toMatchObject({ status: 'failed', error: 'pg_basebackup failed with exit code 1' });
    expect(failed?.finishedAt).toEqual(expect.any(String));
  });

  it('lists a tier newest last and returns null for an unknown id', async () => {
    const later = makeManifest({ id: '20261127T020000Z-oltp', startedAt: '2026-11-27T02:00:00.000Z' });
    const earlier = makeManifest();
    const content = makeManifest({ id: '20261126T030000Z-content', tier: 'content', startedAt: '2026-11-26T03:00:00.000Z' });
    await catalog.recordCompleted(later);
    await catalog.recordCompleted(content);
    await catalog.recordCompleted(earlier);
    expect((await catalog.list('oltp')).map((record) => record.id)).toEqual([earlier.id, later.id]);
    expect((await catalog.list()).map((record) => record.id)).toEqual([earlier.id, content.id, later.id]);
    expect(await catalog.get('20990101T000000Z-oltp')).toBeNull();
  });

  it('rebuilds from the repository: upserts every manifest and drops completed records without one', async () => {
    const kept = makeManifest();
    const expired = makeManifest({ id: '20261120T020000Z-oltp', startedAt: '2026-11-20T02:00:00.000Z' });
    const fresh = makeManifest({ id: '20261127T020000Z-oltp', startedAt: '2026-11-27T02:00:00.000Z' });
    await catalog.recordCompleted(kept, { requestedBy: 'api' });
    await catalog.recordCompleted(expired);
    await catalog.recordStarted({ id: 'in-flight', tier: 'oltp', type: 'full', method: 'physical', startedAt: '2026-11-28T02:00:00.000Z' });

    expect(await catalog.reindex([kept, fresh], { tier: 'oltp' })).toEqual({ indexed: 2, removed: 1 });
    const records = await catalog.list('oltp');
    expect(records.map((record) => [record.id, record.status])).toEqual([
      [kept.id, 'completed'],
      [fresh.id, 'completed'],
      ['in-flight', 'running'],
    ]);
    expect(records[0].requestedBy).toBe('api');
    // Idempotent: the same repository gives the same catalog.
    expect(await catalog.reindex([kept, fresh], { tier: 'oltp' })).toEqual({ indexed: 2, removed: 0 });
  });

  it('marks runs interrupted by a restart as failed', async () => {
    await catalog.recordStarted({ id: 'in-flight', tier: 'oltp', type: 'full', method: 'physical', startedAt: '2026-11-28T02:00:00.000Z' });
    expect(await catalog.markInterrupted('oltp', 'service restarted')).toBe(1);
    expect(await catalog.get('in-flight')).toMatchObject({ status: 'failed', error: 'service restarted' });
  });

  it('migrates once: reopening the same database keeps its records', async () => {
    const url = await env.url();
    const first = await BackupCatalog.open(url);
    await first.recordCompleted(makeManifest());
    await first.close();
    const dataSource = createCatalogDataSource(url);
    await dataSource.initialize();
    try {
      expect(await dataSource.showMigrations()).toBe(false);
      const reopened = new BackupCatalog(dataSource);
      expect(await reopened.list('oltp')).toHaveLength(1);
      await expect(reopened.check()).resolves.toBeUndefined();
    } finally {
      await dataSource.destroy();
    }
  });

  it('adds the parent column to a catalog made by the earlier migrations; its records keep theirs and reindex fills parents in', async () => {
    const url = await env.url();
    const earlier = createCatalogDataSource(url);
    earlier.setOptions({ migrations: CATALOG_MIGRATIONS.filter((migration) => migration !== AddBackupRecordParent1795737600000) });
    await earlier.initialize();
    const { full, incremental } = fullAndIncremental();
    try {
      for (const manifest of [full, incremental])
        await earlier.query(
          `insert into backup_record (id, tier, type, method, status, started_at) values ('${manifest.id}', 'oltp', '${manifest.type}', 'physical', 'completed', '${manifest.startedAt}')`,
        );
    } finally {
      await earlier.destroy();
    }

    const upgraded = await BackupCatalog.open(url);
    try {
      expect((await upgraded.list('oltp')).map((record) => [record.id, record.parent])).toEqual([
        [full.id, null],
        [incremental.id, null],
      ]);
      await upgraded.reindex([full, incremental], { tier: 'oltp' });
      expect((await upgraded.list('oltp')).map((record) => [record.id, record.parent])).toEqual([
        [full.id, null],
        [incremental.id, full.id],
      ]);
    } finally {
      await upgraded.close();
    }
  });

  const item = (eventId: string) => ({ eventId, payload: JSON.stringify({ id: eventId }) });

  it('stores events in the transaction of the change they report, and hands them out in order', async () => {
    const manifest = makeManifest();
    await catalog.recordStarted({ id: manifest.id, tier: 'oltp', type: 'full', method: 'physical', startedAt: manifest.startedAt }, [
      item('e1'),
    ]);
    await catalog.recordCompleted(manifest, { events: [item('e2'), item('e3')] });
    await catalog.recordFailed('20261125T020000Z-oltp', new Error('x'), new Date(), [item('e4')]);
    expect((await catalog.outbox.pending(10)).map((entry) => [entry.eventId, entry.payload, entry.attempts])).toEqual([
      ['e1', '{"id":"e1"}', 0],
      ['e2', '{"id":"e2"}', 0],
      ['e3', '{"id":"e3"}', 0],
      ['e4', '{"id":"e4"}', 0],
    ]);
    expect((await catalog.outbox.pending(2)).map((entry) => entry.eventId)).toEqual(['e1', 'e2']);
  });

  it('stores neither the change nor its events when the transaction fails', async () => {
    await catalog.outbox.enqueue([item('dup')]);
    const manifest = makeManifest();
    await expect(catalog.recordCompleted(manifest, { events: [item('fresh'), item('dup')] })).rejects.toThrow();
    expect(await catalog.get(manifest.id)).toBeNull();
    expect((await catalog.outbox.pending(10)).map((entry) => entry.eventId)).toEqual(['dup']);
  });

  it('tracks relayed, failed and invalid entries and reports how far behind the bus is', async () => {
    await catalog.outbox.enqueue([item('a'), item('b'), item('c')]);
    await catalog.outbox.markFailed(['a', 'b'], 'broker down');
    await catalog.outbox.markFailed(['a'], 'broker down');
    expect((await catalog.outbox.pending(10)).map((entry) => [entry.eventId, entry.attempts])).toEqual([
      ['a', 2],
      ['b', 1],
      ['c', 0],
    ]);
    await catalog.outbox.markRelayed(['a'], new Date('2026-11-20T00:00:00Z'));
    await catalog.outbox.markInvalid(['b'], 'not an event');
    expect((await catalog.outbox.pending(10)).map((entry) => entry.eventId)).toEqual(['c']);
    const stats = await catalog.outbox.stats();
    expect(stats).toEqual({ pending: 1, invalid: 1, oldestPendingAt: expect.stringMatching(/^\d{4}-/) });
    expect(await catalog.outbox.prune(new Date('2026-11-21T00:00:00Z'))).toBe(1);
    expect(await catalog.outbox.prune(new Date('2026-11-21T00:00:00Z'))).toBe(0);
  });

  it('ledger: appends each event id once whatever the deliveries, and reads back by tier, type and time', async () => {
    const ledger = new EventLedger(catalog['dataSource']);
    const entry = (eventId: string, subject: string, type: string, time: string) => ({
      eventId,
      subject,
      type,
      time,
      source: 'rookery/test',
      data: { backupId: eventId, nested: { ok: true } },
    });
    const first = [
      entry('e1', 'oltp', 'dev.rookery.backup.completed', '2026-11-26T02:00:00.000Z'),
      entry('e2', 'queue', 'dev.rookery.backup.completed', '2026-11-26T01:00:00.000Z'),
    ];
    expect(await ledger.append(first)).toBe(2);
    // A redelivery of e1 (and a duplicate inside one batch) adds nothing.
    expect(
      await ledger.append([
        first[0],
        entry('e3', 'oltp', 'dev.rookery.drill.completed', '2026-11-27T00:00:00.000Z'),
        entry('e3', 'oltp', 'dev.rookery.drill.completed', '2026-11-27T00:00:00.000Z'),
      ]),
    ).toBe(1);
    expect(await ledger.count()).toBe(3);
    expect((await ledger.list()).map((row) => row.eventId)).toEqual(['e2', 'e1', 'e3']);
    expect((await ledger.list({ subject: 'oltp', types: ['dev.rookery.backup.completed'] }))[0]).toMatchObject({
      eventId: 'e1',
      data: { backupId: 'e1', nested: { ok: true } },
      receivedAt: expect.stringMatching(/^\d{4}-/),
    });
    expect((await ledger.list({ since: '2026-11-26T01:30:00.000Z', until: '2026-11-26T23:00:00.000Z' })).map((row) => row.eventId)).toEqual(
      ['e1'],
    );
  });
});

describe('createCatalogDataSource', () => {
  it.each([
    ['sqlite://:memory:', 'better-sqlite3', ':memory:'],
    ['sqlite:///var/lib/rookery/catalog.sqlite', 'better-sqlite3', '/var/lib/rookery/catalog.sqlite'],
  ])('%s → %s', (url, type, database) => {
    const options = createCatalogDataSource(url).options;
    expect(options).toMatchObject({ type, database, migrationsRun: true, synchronize: false });
  });

  it('resolves a relative sqlite path against the working directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rookery-catalog-rel-'));
    try {
      expect(createCatalogDataSource('sqlite://data/catalog.sqlite', { cwd: dir }).options).toMatchObject({
        database: join(dir, 'data', 'catalog.sqlite'),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses other schemes with CONFIG_INVALID and no password in the message', () => {
    expect(() => createCatalogDataSource('mysql://root:hunter2@db/catalog')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.not.stringContaining('hunter2') }),
    );
  });

  it('works in memory', async () => {
    const catalog = await BackupCatalog.open('sqlite://:memory:');
    try {
      await catalog.recordCompleted(makeManifest());
      expect(await catalog.list('oltp')).toHaveLength(1);
    } finally {
      await catalog.close();
    }
  });
});
