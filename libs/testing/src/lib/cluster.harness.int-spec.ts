import { existsSync, statSync } from 'node:fs';
import { lookupOsUser } from '@rookery/postgres';
import { TestCluster, runningClusters, startCluster } from './cluster.harness';

jest.setTimeout(60_000);

describe('startCluster', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startCluster({ name: 'harness' });
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('serves queries on a loopback port with the harness settings', async () => {
    expect(cluster.port).not.toBe(5432);
    expect(cluster.url).toBe(`postgres://postgres@127.0.0.1:${cluster.port}/postgres`);
    const rows = await cluster.query<{ wal_level: string; fsync: string; checksums: string; listen: string }>(
      `select current_setting('wal_level') as wal_level, current_setting('fsync') as fsync,
              current_setting('data_checksums') as checksums, current_setting('listen_addresses') as listen`,
    );
    expect(rows[0]).toEqual({ wal_level: 'replica', fsync: 'off', checksums: 'on', listen: '127.0.0.1' });
  });

  it('keeps the data directory owned by postgres with mode 0700 and its socket in the base dir', () => {
    const owner = lookupOsUser('postgres');
    const stat = statSync(cluster.dataDir);
    expect(stat.uid).toBe(owner.uid);
    expect(stat.mode & 0o777).toBe(0o700);
    expect(existsSync(`${cluster.socketDir}/.s.PGSQL.${cluster.port}`)).toBe(true);
  });

  it('answers on urlFor(db) for a created database', async () => {
    await cluster.query('create database harness_db');
    const rows = await cluster.query<{ db: string }>('select current_database() as db', [], 'harness_db');
    expect(rows[0].db).toBe('harness_db');
  });

  it('stops, starts again on the same port, and stops idempotently', async () => {
    await cluster.stop();
    await expect(cluster.query('select 1')).rejects.toThrow(/cannot connect/);
    await cluster.start();
    expect((await cluster.query<{ one: number }>('select 1 as one'))[0].one).toBe(1);
    await cluster.stop();
    await cluster.stop();
  });

  it('starts two clusters side by side on different ports', async () => {
    const other = await startCluster({ name: 'second', settings: { work_mem: '8MB' } });
    try {
      expect(other.port).not.toBe(cluster.port);
      const rows = await other.query<{ work_mem: string }>(`select current_setting('work_mem') as work_mem`);
      expect(rows[0].work_mem).toBe('8MB');
      expect(runningClusters()).toContain(other);
    } finally {
      await other.destroy();
    }
    expect(existsSync(other.baseDir)).toBe(false);
    expect(runningClusters()).not.toContain(other);
  });
});
