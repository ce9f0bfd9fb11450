import { chmod, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest } from '@rookery/core';
import { TestCluster, diffTableChecksums, freeLoopbackPort, serverBinDir, startCluster, tableChecksums } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * `backup --type incremental` against PostgreSQL 17 with summarize_wal (the registry's server
 * binaries): the engine uploads the parent's backup_manifest and the server sends only the blocks
 * its WAL summaries say changed (BASE_BACKUP INCREMENTAL), so unchanged pages are neither read
 * nor sent; rookery combines the chain itself (no pg_combinebackup) and the restored server has
 * every table as the source had it.
 */
const PG15_BIN = '/usr/lib/postgresql/15/bin';

describe('block-level incrementals sent by PostgreSQL 17 (BASE_BACKUP INCREMENTAL)', () => {
  let source: TestCluster;
  let work: string;
  let engine: RookeryEngine;
  const chain: BackupManifest[] = [];
  let expected: Awaited<ReturnType<typeof tableChecksums>>;
  let restoredDir: string | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-pg17-incremental-'));
    await chmod(work, 0o711);
    source = await startCluster({ name: 'pg17-incremental', major: 17, settings: { summarize_wal: 'on' } });
    await source.query('create database app');
    await source.query(
      'create table accounts as select g as id, md5(g::text) as note, 0 as balance from generate_series(1, 200000) g',
      [],
      'app',
    );
    await source.query(
      'create table untouched as select g as id, repeat(md5(g::text), 4) as body from generate_series(1, 50000) g',
      [],
      'app',
    );
    // Hint bits set and the visibility map written before the full, as on a database in use: the
    // first reads after a bulk load would otherwise rewrite (and WAL-log) every page.
    await source.query('vacuum (freeze, analyze)', [], 'app');
    // The registry's PostgreSQL 17 is a server only: its postgres, pg_ctl and initdb beside the
    // client programs of the PostgreSQL 15 installation (what an operator's full 17 install has).
    const binDir = join(work, 'bin');
    await mkdir(binDir);
    for (const program of await readdir(PG15_BIN)) await symlink(join(PG15_BIN, program), join(binDir, program));
    for (const program of await readdir(serverBinDir(17))) {
      await rm(join(binDir, program), { force: true });
      await symlink(join(serverBinDir(17), program), join(binDir, program));
    }
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repo')}`],
        postgres: { binDir },
        // This server build has no zstd: the full is compressed by rookery.
        compression: { location: 'client' },
        tiers: { oltp: { pgUrl: source.url } },
      },
      'test',
    );
    engine = await createEngine(config, { actor: 'test' });
    chain.push(await engine.backup({ tier: 'oltp' }));
    for (let round = 1; round <= 2; round++) {
      await source.query('update accounts set balance = balance + 1 where id % 5000 = $1', [round], 'app');
      await source.query('delete from accounts where id % 9973 = $1', [round], 'app');
      await source.query(`create table added_${round} as select g from generate_series(1, 1000) g`, [], 'app');
      chain.push(await engine.backup({ tier: 'oltp', type: 'incremental' }));
    }
    expected = await tableChecksums(source.urlFor('app'));
  }, 300_000);

  afterAll(async () => {
    if (restoredDir) await engine?.stopRestored(restoredDir).catch(() => undefined);
    await engine?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('stores the changed blocks the server sent, without it sending the others', () => {
    const [full, ...incrementals] = chain;
    expect(full.postgres.versionNum).toBeGreaterThanOrEqual(170_000);
    incrementals.forEach((incremental, position) => {
      expect(incremental).toMatchObject({ type: 'incremental', parent: chain[position].id });
      const pages = incremental.artifacts.find((artifact) => artifact.kind === 'base-incremental')?.incremental;
      // Most of the cluster's pages were not sent at all; what was sent is what changed (and new files).
      expect(pages?.pagesSkipped).toBeGreaterThan(2000);
      expect(pages?.pagesRead).toBeLessThan((pages?.pagesSkipped ?? 0) / 2);
      expect(pages?.pagesStored).toBeGreaterThan(0);
    });
  });

  it('restores the chain into a PostgreSQL 17 data directory with every table identical', async () => {
    restoredDir = join(work, 'restored');
    const port = await freeLoopbackPort();
    const result = await engine.restore({ tier: 'oltp', backup: 'latest', to: restoredDir, start: true, port });
    expect(result.manifest.id).toBe(chain.at(-1)?.id);
    const restored = await tableChecksums(`postgres://postgres@127.0.0.1:${port}/app`);
    expect(diffTableChecksums(expected, restored)).toEqual([]);
    expect(Object.keys(restored)).toEqual(
      expect.arrayContaining(['public.accounts', 'public.untouched', 'public.added_1', 'public.added_2']),
    );
    expect((await engine.verify('oltp', result.manifest.id)).ok).toBe(true);
  }, 300_000);
});
