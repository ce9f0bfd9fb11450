import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { BackupManifest, Store, signManifest } from '@rookery/core';
import { BackupRepository, repositoryLayout } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import {
  S3Region,
  TestCluster,
  acquireS3,
  diffTableChecksums,
  freeLoopbackPort,
  s3StoreUrl,
  startCluster,
  tableChecksums,
} from '@rookery/testing';
import { artifactEncodingFor, writeArtifact } from './artifact.codec';
import { readIncremental } from './block-incremental';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * Physical block-incremental chains outside backup and restore themselves (issue 17): one PG15
 * cluster, two S3 regions, a full and two incrementals taken while rows change. Each verifies with
 * its chain named; replication copies the chain parents first and the newest incremental restores
 * from the secondary alone to the source's tables; a parent missing there is named by verify; a
 * page damaged inside the middle incremental is named with its backup and file (the artifact is
 * rewritten with the page flipped and re-encoded, and the manifest re-recorded, unsigned, with the
 * new stored sha256: the store's checksum cannot see it, only the page digest can); expire keeps
 * the expired full and middle incremental while a child is held or its manifest is damaged, and
 * deletes the chain child first once released and repaired; a storage-class transition leaves the page indexes the next incremental reads.
 */
const DB = 'penguinmails_oltp';

describe('physical block-incremental chains: verify, replication, expire', () => {
  let work: string;
  let source: TestCluster;
  let config: RookeryConfig;
  let engine: RookeryEngine;
  let primaryUrl: string;
  let secondaryUrl: string;
  const stores: Store[] = [];
  const chain: BackupManifest[] = [];
  let atNewest: Awaited<ReturnType<typeof tableChecksums>>;

  async function s3Repository(region: S3Region, name: string): Promise<string> {
    const server = await acquireS3(region);
    const bucket = `${name}-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucket);
    return s3StoreUrl(server, bucket, 'rookery');
  }

  function open(url: string): Store {
    const store = createStore(url);
    stores.push(store);
    return store;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-chains-'));
    // The restore extracts as the server's account: it must reach the data directory.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'chains-source' });
    await source.query('create database penguinmails_oltp');
    await source.query(
      'create table chain_rows as select g as id, repeat(md5(g::text), 8) as note from generate_series(1, 60000) g',
      [],
      DB,
    );
    // Hint bits set and tuples frozen before the full, as in a database at work: the first read
    // after the load would otherwise rewrite every page, and the first incremental with it.
    await source.query('vacuum (freeze) chain_rows', [], DB);
    primaryUrl = await s3Repository('primary', 'chains-a');
    secondaryUrl = await s3Repository('secondary', 'chains-b');
    // Retention of a day, so that `expire --now +3 days` has the whole chain past it; a chain bound
    // far off, so the incrementals stay incrementals.
    config = buildConfig(
      {
        repositories: [primaryUrl, secondaryUrl],
        tiers: {
          oltp: {
            pgUrl: source.url,
            policy: {
              retentionDays: 1,
              physical: { incremental: { fullEveryDays: 30, maxChainFraction: 10 } },
              transitions: [{ afterDays: 2, storageClass: 'GLACIER' }],
            },
          },
        },
      },
      'test',
    );
    engine = await createEngine(config, { actor: 'test' });
  }, 180_000);

  afterAll(async () => {
    await engine?.close();
    for (const store of stores) await store.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('takes a full and two incrementals (page index a delta, then full with deltaIndex off); each verifies, an incremental with its chain up to the full', async () => {
    chain.push(await engine.backup({ tier: 'oltp' }));
    await source.query("update chain_rows set note = 'first change' where id % 97 = 0", [], DB);
    chain.push(await engine.backup({ tier: 'oltp', type: 'incremental' }));
    // The next incremental reads the full's page index and the first incremental's delta: both stay
    // out of colder storage classes, however old.
    const indexesOf = (backups: BackupManifest[]) =>
      backups.flatMap((backup) =>
        backup.artifacts.filter((artifact) => artifact.kind === 'page-index').map((artifact) => `${backup.id}/${artifact.name}`),
      );
    const later = new Date(Date.now() + 3 * 86_400_000);
    const movedBefore = (await engine.transition('oltp', { dryRun: true, now: later })).moves.map(
      (move) => `${move.backupId}/${move.artifact}`,
    );
    expect(indexesOf(chain).length).toBe(2);
    expect(movedBefore.filter((name) => indexesOf(chain).includes(name))).toEqual([]);
    expect(movedBefore.length).toBeGreaterThan(0);

    await source.query("update chain_rows set note = 'second change' where id % 89 = 0", [], DB);
    await source.query("insert into chain_rows select g, 'added' from generate_series(60001, 61000) g", [], DB);
    // Taken with the switch off: a full page index, read through the first incremental's delta.
    const fullIndexes = await createEngine(
      buildConfig(
        {
          repositories: [primaryUrl, secondaryUrl],
          tiers: {
            oltp: {
              pgUrl: source.url,
              policy: { retentionDays: 1, physical: { incremental: { fullEveryDays: 30, maxChainFraction: 10, deltaIndex: false } } },
            },
          },
        },
        'test',
      ),
      { actor: 'test' },
    );
    try {
      chain.push(await fullIndexes.backup({ tier: 'oltp', type: 'incremental' }));
    } finally {
      await fullIndexes.close();
    }
    atNewest = await tableChecksums(source.urlFor(DB));

    const [full, first, second] = chain;
    expect(chain.map((backup) => [backup.type, backup.parent])).toEqual([
      ['full', null],
      ['incremental', full.id],
      ['incremental', first.id],
    ]);
    expect(full.artifacts.map((artifact) => artifact.kind)).toContain('page-index');
    for (const incremental of [first, second]) {
      expect(incremental.artifacts.map((artifact) => artifact.kind)).toEqual(expect.arrayContaining(['base-incremental', 'page-index']));
      expect(incremental.artifacts.map((artifact) => artifact.kind)).not.toContain('base-tar');
      expect(incremental.storedBytes).toBeLessThan(full.storedBytes);
    }

    for (const backup of chain) {
      const verified = await engine.verify('oltp', backup.id);
      expect(verified.artifacts.filter((artifact) => !artifact.ok)).toEqual([]);
      expect(verified.ok).toBe(true);
      for (const artifact of verified.artifacts.filter((check) => /incremental|page-index/.test(kindOf(backup, check.name))))
        expect(artifact.entries).toBeGreaterThan(10);
    }
    const newest = await engine.verify('oltp', second.id);
    expect(newest.chain).toMatchObject({ ok: true, links: chain.map((backup) => ({ id: backup.id, type: backup.type })) });
    expect((await engine.verify('oltp', full.id)).chain).toBeUndefined();

    // The first incremental's page index is a delta against the full's, much smaller; the second's is full again.
    const indexOf = (backup: BackupManifest) => backup.artifacts.find((artifact) => artifact.kind === 'page-index' && !artifact.tablespace);
    expect(indexOf(full)?.pageIndex).toBeUndefined();
    expect(indexOf(first)?.pageIndex).toEqual({ deltaOf: full.id });
    expect(indexOf(second)?.pageIndex).toBeUndefined();
    const [fullBytes, deltaBytes, againBytes] = [full, first, second].map((backup) => indexOf(backup)?.storedBytes ?? 0);
    const changed = first.artifacts.find((artifact) => artifact.kind === 'base-incremental');
    process.stdout.write(
      `page index stored bytes: full ${fullBytes}, delta ${deltaBytes}, full again ${againBytes}; first incremental: base-incremental ${changed?.storedBytes} (${changed?.incremental?.pagesStored} of ${changed?.incremental?.pagesRead} pages), all ${first.storedBytes}\n`,
    );
    expect(deltaBytes).toBeLessThan(fullBytes / 4);
    expect(againBytes).toBeGreaterThan(fullBytes / 2);
  }, 300_000);

  it('replicates parents first; the newest incremental restores from the secondary alone; a parent missing there is named', async () => {
    const run = await engine.replicate('oltp');
    expect(run.regions[0].backups.map((copy) => [copy.backupId, copy.outcome])).toEqual(chain.map((backup) => [backup.id, 'copied']));
    const status = await engine.replicationStatus('oltp');
    expect(status.regions[0].backups.filter((copy) => copy.brokenLink)).toEqual([]);

    const secondary = await createEngine(buildConfig({ repositories: [secondaryUrl], tiers: { oltp: { pgUrl: source.url } } }, 'test'), {
      actor: 'test',
    });
    const dir = join(work, 'restored-from-secondary');
    try {
      const port = await freeLoopbackPort();
      const restored = await secondary.restore({ tier: 'oltp', backup: chain[2].id, to: dir, start: true, port });
      expect(restored.manifest.id).toBe(chain[2].id);
      const after = await tableChecksums(`postgres://postgres@127.0.0.1:${port}/penguinmails_oltp`);
      expect(diffTableChecksums(atNewest, after)).toEqual([]);
      await secondary.stopRestored(dir);

      // The full's manifest gone from the secondary: its incrementals there name the broken link.
      const [full, first, second] = chain;
      await open(secondaryUrl).remove(repositoryLayout.manifestKey('oltp', full.id, new Date(full.startedAt)));
      const verified = await secondary.verify('oltp', second.id);
      expect(verified.ok).toBe(false);
      expect(verified.chain?.links.map((link) => link.id)).toEqual([first.id, second.id]);
      expect(verified.chain?.error?.message).toBe(
        `parent backup '${full.id}' of incremental backup '${first.id}' is not in the repository`,
      );
    } finally {
      await secondary.stopRestored(dir).catch(() => undefined);
      await secondary.close();
    }
  }, 300_000);

  it('names the backup and the file of a page damaged inside the middle incremental, which the store checksum cannot see', async () => {
    const middle = chain[1];
    const artifact = middle.artifacts.find((candidate) => candidate.kind === 'base-incremental');
    if (!artifact || !middle.parent) throw new Error('the middle backup has no base-incremental artifact');
    const plain = await readWhole(engine, middle, artifact);

    // The first changed page of a relation file, flipped in the middle of its bytes.
    let damaged: { path: string; page: number } | null = null;
    for await (const event of readIncremental(Readable.from([plain]), { backupId: middle.id, parentId: middle.parent })) {
      if (event.type !== 'page' || event.data.every((byte) => byte === 0)) continue;
      const at = plain.indexOf(event.data);
      plain[at + 4000] ^= 0xff;
      damaged = { path: event.path, page: event.page };
      break;
    }
    if (!damaged) throw new Error('the middle incremental holds no page');

    // Re-encoded as the backup wrote it, and recorded in the (unsigned) manifest with its new checksums.
    const store = open(primaryUrl);
    const repository = new BackupRepository(store);
    const rewritten = await writeArtifact(store, repository.artifactKey(middle, artifact.name), Readable.from([plain]), {
      name: artifact.name,
      kind: artifact.kind,
      backup: middle,
      encoding: artifactEncodingFor(config),
    });
    const recorded: Partial<BackupManifest> = {
      ...middle,
      artifacts: middle.artifacts.map((candidate) => (candidate.name === artifact.name ? { ...rewritten, ...pick(artifact) } : candidate)),
      storedBytes: middle.storedBytes - artifact.storedBytes + rewritten.storedBytes,
    };
    delete recorded.checksum;
    delete recorded.signature;
    const manifest = signManifest(recorded as Omit<BackupManifest, 'checksum'>);
    await store.write(repositoryLayout.manifestKey('oltp', middle.id, new Date(middle.startedAt)), Buffer.from(JSON.stringify(manifest)));

    const verified = await engine.verify('oltp', middle.id);
    expect(verified.ok).toBe(false);
    const failed = verified.artifacts.filter((check) => !check.ok);
    expect(failed.map((check) => check.name)).toEqual([artifact.name]);
    expect(failed[0].error?.message).toBe(
      `page ${damaged.page} of '${damaged.path}' in incremental backup ${middle.id} is damaged: its digest does not match`,
    );
    // Its child's own artifacts and the chain's manifests are sound: verify answers per backup.
    expect((await engine.verify('oltp', chain[2].id)).ok).toBe(true);
  }, 180_000);

  it('expire keeps an expired full and incremental while their child is held or its manifest damaged, then deletes the chain child first', async () => {
    const [full, first, second] = chain;
    const newerFull = await engine.backup({ tier: 'oltp', type: 'full' });
    const later = new Date(Date.now() + 3 * 86_400_000);
    await engine.hold('oltp', second.id, 'case 17');

    // Every artifact ages into GLACIER but the page indexes the next incremental reads.
    const moves = (await engine.transition('oltp', { dryRun: true, now: later })).moves;
    const kept = newerFull.artifacts
      .filter((artifact) => artifact.kind === 'page-index')
      .map((artifact) => `${newerFull.id}/${artifact.name}`);
    expect(kept.length).toBeGreaterThan(0);
    expect(moves.map((move) => `${move.backupId}/${move.artifact}`).sort()).toEqual(
      [...chain, newerFull]
        .flatMap((backup) => backup.artifacts.map((artifact) => `${backup.id}/${artifact.name}`))
        .filter((name) => !kept.includes(name))
        .sort(),
    );

    const held = await engine.expire({ tier: 'oltp', now: later });
    expect(held.deleted.backups).toEqual([]);
    const reasons = Object.fromEntries(held.plan.keep.backups.map((backup) => [backup.id, backup.reasons]));
    expect(reasons[full.id]).toEqual([`parent of retained incremental ${first.id} (incremental chain)`]);
    expect(reasons[first.id]).toEqual([`parent of retained incremental ${second.id} (incremental chain)`]);
    expect(held.plan.walCut?.backupId).toBe(full.id);

    await engine.releaseHold('oltp', second.id);
    // Released but its manifest damaged (never expired itself): its parents stay until it is repaired.
    const store = open(primaryUrl);
    const secondKey = repositoryLayout.manifestKey('oltp', second.id, new Date(second.startedAt));
    const intact = await readObject(store, secondKey);
    await store.write(secondKey, Buffer.from(intact.toString('utf8').replace(second.finishedAt, '2000-01-01T00:00:00.000Z')));
    const untrusted = await engine.expire({ tier: 'oltp', now: later });
    expect(untrusted.deleted.backups).toEqual([]);
    expect(untrusted.damaged.map((entry) => entry.key)).toEqual([secondKey]);
    expect(untrusted.plan.keep.backups.find((backup) => backup.id === first.id)?.reasons[0]).toMatch(
      new RegExp(`^parent of incremental ${second.id}, whose manifest cannot be trusted \\(manifest '.+' does not match its checksum\\)`),
    );

    await store.write(secondKey, intact);
    const released = await engine.expire({ tier: 'oltp', now: later });
    expect(released.deleted.backups).toEqual([second.id, first.id, full.id]);
    expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toEqual([newerFull.id]);
  }, 300_000);
});

/** The artifact's decoded bytes (an incremental is small: its changed pages and block maps). */
async function readWhole(engine: RookeryEngine, manifest: BackupManifest, artifact: BackupManifest['artifacts'][number]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _encoding, callback) => (chunks.push(chunk), callback()) });
  const done = new Promise<void>((resolve, reject) => sink.on('finish', resolve).on('error', reject));
  await engine.readArtifact(manifest, artifact, { sink, result: done, abort: (error) => sink.destroy(error) });
  return Buffer.concat(chunks);
}

async function readObject(store: Store, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.read(key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What a rewritten artifact keeps of the original record (its place in the backup). */
function pick(artifact: BackupManifest['artifacts'][number]): Partial<BackupManifest['artifacts'][number]> {
  return artifact.tablespace ? { tablespace: artifact.tablespace } : {};
}

function kindOf(backup: BackupManifest, name: string): string {
  return backup.artifacts.find((artifact) => artifact.name === name)?.kind ?? '';
}
