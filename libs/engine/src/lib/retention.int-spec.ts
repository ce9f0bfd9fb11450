import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest, Store, parseLsn, parseRecoveryTarget, walSegmentNumberOf } from '@rookery/core';
import { PgSqlClient, lookupOsUser } from '@rookery/postgres';
import { repositoryLayout, walLayout } from '@rookery/repository';
import { TestCluster, freeLoopbackPort, makeManifest, s3TestRepository, startCluster, switchAndWaitArchived } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * Expire over a synthetic history. Physical (filesystem repository, real cluster archiving through
 * `rookery wal-push`): four base backups dated 200, 120, 60 and 1 days ago with WAL archived
 * between them, the 120-day one under legal hold; exactly the planned objects go (store listing
 * before/after), the oldest retained backup restores to an LSN inside its window and the newest
 * to the latest WAL; after release the next one becomes the oldest and restores too. Logical
 * (S3-compatible server): an incremental chain of synthetic manifests with artifacts, where a
 * retained incremental keeps its parents and an expired chain goes child first. Crash: a failure
 * after the first delete leaves no manifest whose artifacts are gone, and the next expire removes
 * the leftover folder once it is a day old.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const sql = new PgSqlClient({ applicationName: 'rookery-retention-test' });
const DAY = 86_400_000;

describe('expire', () => {
  let work: string;

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-retention-'));
    await chmod(work, 0o711);
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  describe('physical tier with archived WAL and a held backup (filesystem repository)', () => {
    let source: TestCluster;
    let engine: RookeryEngine;
    const backups: BackupManifest[] = [];
    /** LSNs after rows 1..n were committed: the first inside the held backup's window, then after each later backup. */
    const marks: { lsn: string; rows: number }[] = [];
    const restored: string[] = [];
    let rows = 0;

    beforeAll(async () => {
      const postgresUser = lookupOsUser('postgres');
      const repoDir = join(work, 'repo');
      await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
      for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')])
        await chown(dir, postgresUser.uid, postgresUser.gid);
      const repoUrl = `file://${repoDir}`;
      const settings = { archive_mode: 'on', archive_command: `${process.execPath} ${bin} wal-push %p --tier oltp --repo ${repoUrl}` };
      source = await startCluster({ name: 'retention-source', settings });
      await source.query('create table kept_rows (id int primary key, note text not null)');
      const config = buildConfig({ repositories: [repoUrl], tiers: { oltp: { pgUrl: source.url } } }, 'test');
      engine = await createEngine(config, { actor: 'test', selfCommand: [process.execPath, bin, '--repo', repoUrl] });

      const insert = async (count: number) => {
        for (let index = 0; index < count; index++) {
          rows++;
          await source.query("insert into kept_rows values ($1, repeat('x', 100))", [rows]);
        }
        await switchAndWaitArchived(source);
      };
      for (const [ageDays, afterRows] of [
        [200, 10],
        [120, 10],
        [60, 10],
        [1, 10],
      ] as const) {
        await insert(afterRows);
        const at = new Date(Date.now() - ageDays * DAY);
        backups.push(await engine.backup({ tier: 'oltp', now: () => at }));
        await insert(5);
        marks.push({ lsn: (await source.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0].lsn, rows });
        await insert(5);
      }
      await engine.hold('oltp', backups[1].id, 'litigation 42');
    }, 300_000);

    afterAll(async () => {
      for (const dir of restored) await engine.stopRestored(dir).catch(() => undefined);
      await engine?.close();
      await source?.destroy();
    }, 120_000);

    async function restoreRows(backupId: string, lsn: string | null, name: string): Promise<number[]> {
      const dir = join(work, name);
      const port = await freeLoopbackPort();
      const target = lsn ? parseRecoveryTarget({ targetLsn: lsn }) : undefined;
      await engine.restore({ tier: 'oltp', backup: backupId, to: dir, start: true, port, target, archiveMode: 'off' });
      restored.push(dir);
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      const ids = (await sql.query<{ id: number }>(url, 'select id from kept_rows order by id')).map((row) => row.id);
      await engine.stopRestored(dir);
      return ids;
    }

    it('a dry run deletes nothing and plans exactly the unheld old backup and the WAL before the held one', async () => {
      const before = await listing(engine.context.repository.store);
      const result = await engine.expire({ tier: 'oltp', dryRun: true });
      expect(await listing(engine.context.repository.store)).toEqual(before);
      expect(result.plan.expire.backups.map((backup) => backup.id)).toEqual([backups[0].id]);
      expect(result.plan.expire.backups[0].reason).toMatch(/^older than 90 d retention/);
      expect(result.plan.keep.backups.find((backup) => backup.id === backups[1].id)?.reasons).toEqual([
        expect.stringMatching(/^under legal hold .*: litigation 42$/),
      ]);
      expect(result.plan.walCut?.backupId).toBe(backups[1].id);
      expect(result.plan.expire.wal.length).toBeGreaterThan(0);
    }, 60_000);

    it('deletes exactly the planned objects, and the held backup still restores across its window', async () => {
      const store = engine.context.repository.store;
      const before = await listing(store);
      const result = await engine.expire({ tier: 'oltp' });
      const after = await listing(store);
      const gone = [...before.keys()].filter((key) => !after.has(key)).sort();

      const cut = walSegmentNumberOf(parseLsn(backups[1].startLsn as string));
      const expected = [...before.keys()]
        .filter((key) => {
          if (key.startsWith(repositoryLayout.backupFolder('oltp', backups[0].id, new Date(backups[0].startedAt)))) return true;
          const wal = walLayout.parseKey(key);
          return wal !== null && wal.file.kind !== 'history' && (wal.file.segmentNumber as bigint) < cut;
        })
        .sort();
      expect(gone).toEqual(expected);
      expect(result.deleted.backups).toEqual([backups[0].id]);
      expect(result.deleted.objects).toBe(gone.length);
      expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toEqual(backups.slice(1).map((backup) => backup.id));

      // The oldest retained backup (held) reaches a point inside its window; the newest the end.
      expect(await restoreRows(backups[1].id, marks[1].lsn, 'held-to-lsn')).toEqual(ids(marks[1].rows));
      expect(await restoreRows(backups[3].id, null, 'newest-latest')).toEqual(ids(rows));
      expect((await engine.walContinuity('oltp')).ok).toBe(true);
    }, 240_000);

    it('after release, the held backup and its WAL go, and the next oldest restores within its window', async () => {
      await engine.releaseHold('oltp', backups[1].id);
      expect(await engine.holds('oltp')).toEqual([]);
      const result = await engine.expire({ tier: 'oltp' });
      expect(result.deleted.backups).toEqual([backups[1].id]);
      expect(result.plan.walCut?.backupId).toBe(backups[2].id);
      const remaining = await listing(engine.context.repository.store);
      const cut = walSegmentNumberOf(parseLsn(backups[2].startLsn as string));
      const below = [...remaining.keys()].filter((key) => {
        const wal = walLayout.parseKey(key);
        return wal !== null && wal.file.segmentNumber !== null && wal.file.segmentNumber < cut;
      });
      expect(below).toEqual([]);
      expect(await restoreRows(backups[2].id, marks[2].lsn, 'next-to-lsn')).toEqual(ids(marks[2].rows));
    }, 240_000);

    it('is refused while a backup holds the tier lock', async () => {
      const held = await engine.context.lock.acquire('oltp', { holder: 'a running backup' });
      try {
        await expect(engine.expire({ tier: 'oltp' })).rejects.toMatchObject({ code: 'LOCK_HELD' });
      } finally {
        await held.release();
      }
    });
  });

  describe('logical incremental chains (S3-compatible server)', () => {
    let engine: RookeryEngine;
    const NOW = new Date('2027-06-01T00:00:00.000Z');

    beforeAll(async () => {
      const url = await s3TestRepository('retention');
      engine = await createEngine(buildConfig({ repositories: [url] }, 'test'), { actor: 'test' });
      // content: retention 180 d. f1 ← i1 ← i2 all past it; f2 ← i3 past it, ← i4 within it; f3 newest.
      for (const [id, ageDays, parent, type] of [
        ['20261001T030000Z-content', 243, null, 'full'],
        ['20261001T070000Z-content', 242, '20261001T030000Z-content', 'incremental'],
        ['20261001T110000Z-content', 241, '20261001T070000Z-content', 'incremental'],
        ['20261101T030000Z-content', 212, null, 'full'],
        ['20261101T070000Z-content', 211, '20261101T030000Z-content', 'incremental'],
        ['20270101T070000Z-content', 151, '20261101T070000Z-content', 'incremental'],
        ['20270530T030000Z-content', 2, null, 'full'],
      ] as const) {
        await commitSynthetic(engine, id, new Date(NOW.getTime() - ageDays * DAY), parent, type);
      }
    }, 120_000);

    afterAll(async () => {
      await engine?.close();
    });

    it('keeps the chain a retained incremental needs and deletes the expired chain child first', async () => {
      const store = engine.context.repository.store;
      const before = await listing(store);
      const deletedOrder: string[] = [];
      const result = await engine.expire({ tier: 'content', now: NOW, onDeleted: (key) => void deletedOrder.push(key) });
      const expired = ['20261001T110000Z-content', '20261001T070000Z-content', '20261001T030000Z-content'];
      expect(result.deleted.backups).toEqual(expired);
      const kept = Object.fromEntries(result.plan.keep.backups.map((backup) => [backup.id, backup.reasons]));
      expect(kept['20261101T070000Z-content']).toEqual(['parent of retained incremental 20270101T070000Z-content (incremental chain)']);
      expect(kept['20261101T030000Z-content']).toEqual(['parent of retained incremental 20261101T070000Z-content (incremental chain)']);

      const after = await listing(store);
      const gone = [...before.keys()].filter((key) => !after.has(key)).sort();
      expect(gone).toEqual([...before.keys()].filter((key) => expired.some((id) => key.includes(`/${id}/`))).sort());
      // Manifest first, then the artifacts, backup by backup: the backup stops existing before anything it needs goes.
      expect(deletedOrder.map((key) => key.split('/').slice(-2).join('/'))).toEqual(
        expired.flatMap((id) => [`${id}/manifest.json`, `${id}/content_metadata.dump`, `${id}/content_objects.dump`]),
      );
    }, 60_000);
  });

  describe('a crash mid-expire', () => {
    let engine: RookeryEngine;
    const ages = [400, 380, 2];
    const id = (ageDays: number) => `${new Date(Date.now() - ageDays * DAY).toISOString().slice(0, 10).replace(/-/g, '')}T030000Z-olap`;

    beforeAll(async () => {
      const dir = join(work, 'crash-repo');
      engine = await createEngine(buildConfig({ repositories: [`file://${dir}`] }, 'test'), { actor: 'test' });
      for (const ageDays of ages) await commitSynthetic(engine, id(ageDays), new Date(Date.now() - ageDays * DAY), null, 'full');
    }, 60_000);

    afterAll(async () => {
      await engine?.close();
    });

    it('leaves no manifest whose artifacts are gone, and the next expire removes what the crash left', async () => {
      const crash = new Error('killed');
      let deletes = 0;
      await expect(
        engine.expire({
          tier: 'olap',
          onDeleted: () => {
            // Dies right after the first backup's manifest and one of its artifacts are gone.
            if (++deletes === 2) throw crash;
          },
        }),
      ).rejects.toBe(crash);
      const { backups } = await engine.list('olap');
      expect(backups.map((backup) => backup.id)).toEqual([id(400), id(2)]);
      for (const backup of backups) {
        for (const artifact of backup.artifacts)
          expect(await engine.context.repository.store.stat(engine.context.repository.artifactKey(backup, artifact.name))).not.toBeNull();
      }

      // The leftover folder has no manifest: kept while young (a backup may be writing it), removed after a day.
      const folder = repositoryLayout.backupFolder('olap', id(380), new Date(Date.now() - 380 * DAY));
      const soon = await engine.expire({ tier: 'olap', dryRun: true });
      expect(soon.plan.keep.orphans.map((orphan) => orphan.folder)).toEqual([folder]);
      const later = await engine.expire({ tier: 'olap', now: new Date(Date.now() + 2 * DAY) });
      expect(later.deleted.orphanFolders).toBe(1);
      expect(later.deleted.backups).toEqual([id(400)]);
      const left = [...(await listing(engine.context.repository.store)).keys()];
      expect(left.length).toBeGreaterThan(0);
      expect(left.every((key) => key.includes(id(2)))).toBe(true);
    }, 60_000);
  });

  describe('a legal hold placed during expire', () => {
    let engine: RookeryEngine;
    const id = (ageDays: number) => `${new Date(Date.now() - ageDays * DAY).toISOString().slice(0, 10).replace(/-/g, '')}T030000Z-olap`;

    beforeAll(async () => {
      engine = await createEngine(buildConfig({ repositories: [`file://${join(work, 'hold-repo')}`] }, 'test'), { actor: 'test' });
      for (const ageDays of [400, 390, 380, 2])
        await commitSynthetic(engine, id(ageDays), new Date(Date.now() - ageDays * DAY), null, 'full');
    }, 60_000);

    afterAll(async () => {
      await engine?.close();
    });

    it('wins: the held backup and every one after it stay, the result says which were skipped and why', async () => {
      let placed = false;
      const result = await engine.expire({
        tier: 'olap',
        onDeleted: async () => {
          // The first expired backup is going; an operator holds the next one meanwhile.
          if (placed) return;
          placed = true;
          await engine.hold('olap', id(390), 'subpoena 7');
        },
      });
      expect(result.deleted.backups).toEqual([id(380)]);
      expect(result.skipped.map((entry) => entry.id)).toEqual([id(390), id(400)]);
      expect(result.skipped[0].reason).toContain('placed under legal hold');
      expect(result.skipped[1].reason).toContain(`backup ${id(390)} was placed under legal hold during expire`);
      expect((await engine.list('olap')).backups.map((backup) => backup.id)).toEqual([id(400), id(390), id(2)]);
    }, 60_000);
  });
});

/** A synthetic logical backup: two small artifacts written, then the manifest committed. */
async function commitSynthetic(
  engine: RookeryEngine,
  id: string,
  at: Date,
  parent: string | null,
  type: 'full' | 'incremental',
): Promise<void> {
  const tier = id.split('-')[1] as BackupManifest['tier'];
  const repository = engine.context.repository;
  const artifacts = ['content_metadata.dump', 'content_objects.dump'].map((name) => ({
    name,
    kind: 'dump' as const,
    bytes: 5,
    storedBytes: 5,
    sha256: 'a'.repeat(64),
    logicalSha256: 'b'.repeat(64),
    compression: { codec: 'none' as const, level: 0 },
    encryption: { algorithm: 'none' as const },
  }));
  const manifest = makeManifest({
    id,
    tier,
    type,
    method: 'logical',
    parent,
    startedAt: at.toISOString(),
    finishedAt: at.toISOString(),
    retentionUntil: new Date(at.getTime() + engine.context.config.tiers[tier].policy.retentionDays * DAY).toISOString(),
    timeline: null,
    startLsn: null,
    stopLsn: null,
    walRange: null,
    artifacts,
  });
  for (const artifact of artifacts) await repository.store.write(repository.artifactKey(manifest, artifact.name), Buffer.from('12345'));
  await repository.commit(manifest);
}

async function listing(store: Store): Promise<Map<string, number>> {
  const objects = new Map<string, number>();
  for await (const object of store.list('')) if (!object.key.includes('/locks/')) objects.set(object.key, object.size);
  return objects;
}

function ids(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1);
}
