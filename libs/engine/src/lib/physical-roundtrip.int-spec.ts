import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { CompressionCodec } from '@rookery/core';
import { TestCluster, acquireS3, diffTableChecksums, freeLoopbackPort, seedOltp, startCluster, tableChecksums } from '@rookery/testing';
import { createEngine } from './engine.factory';

/**
 * The foundation's promise: what comes back from a restore is identical to the source at backup
 * end. Store × codec × encryption are rotated (pgBackRest style) rather than multiplied, so every
 * value of each dimension is exercised against the real filesystem and the real S3-compatible
 * server, and every table is compared by an order-independent checksum of its rows.
 */
const matrix: {
  store: 'fs' | 's3' | 's3-secondary';
  codec: CompressionCodec;
  level: number;
  encrypted: boolean;
  /** zstd: compressed by the server while it sends (PostgreSQL 15+), or by rookery's workers. */
  location?: 'server' | 'client';
  /**
   * The tier takes block incrementals (the OLTP default): every backup goes over the replication
   * protocol with a page index beside its tar. Off: fulls only, taken by pg_basebackup when the
   * client compresses.
   */
  indexed: boolean;
}[] = [
  { store: 'fs', codec: 'zstd', level: 1, encrypted: false, location: 'server', indexed: true },
  { store: 's3', codec: 'zstd', level: 3, encrypted: true, location: 'server', indexed: false },
  { store: 's3-secondary', codec: 'zstd', level: 1, encrypted: false, location: 'client', indexed: false },
  { store: 'fs', codec: 'zstd', level: 3, encrypted: true, location: 'client', indexed: true },
  { store: 'fs', codec: 'gzip', level: 6, encrypted: true, location: 'client', indexed: false },
  { store: 's3-secondary', codec: 'gzip', level: 1, encrypted: false, location: 'client', indexed: true },
  { store: 'fs', codec: 'lz4', level: 1, encrypted: false, location: 'client', indexed: false },
  { store: 's3-secondary', codec: 'lz4', level: 1, encrypted: true, location: 'client', indexed: true },
  { store: 'fs', codec: 'none', level: 0, encrypted: true, location: 'client', indexed: false },
];

describe('physical backup and restore of the oltp tier', () => {
  let source: TestCluster;
  let work: string;
  let before: Awaited<ReturnType<typeof tableChecksums>>;
  const restoredDirs: string[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-engine-'));
    // Restored servers run as the postgres account: it must be able to reach their directories.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'engine-source' });
    await seedOltp(source.url, { sizeMb: 12 });
    before = await tableChecksums(source.urlFor('penguinmails_oltp'));
  }, 180_000);

  afterAll(async () => {
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it.each(matrix)(
    'restores identical data: $store store, $codec level $level, encrypted=$encrypted, compressed by $location, indexed=$indexed',
    async (variant) => {
      const repository =
        variant.store === 'fs'
          ? `file://${join(work, `repo-${variant.codec}-${variant.encrypted}-${variant.location ?? ''}`)}`
          : await s3Repository(
              `rt-${variant.codec}-${variant.encrypted ? 'enc' : 'plain'}-${variant.location ?? 'client'}`,
              variant.store === 's3' ? 'primary' : 'secondary',
            );
      const key = randomBytes(32).toString('hex');
      const config = buildConfig(
        {
          repositories: [repository],
          compression: { codec: variant.codec, level: variant.level, ...(variant.location ? { location: variant.location } : {}) },
          ...(variant.encrypted ? { encryption: { keyEnv: 'TEST_ROOKERY_KEY' } } : {}),
          tiers: { oltp: { pgUrl: source.url, policy: { physical: { incremental: variant.indexed ? {} : null } } } },
        },
        'test',
        {},
        { TEST_ROOKERY_KEY: key },
      );
      const engine = await createEngine(config, { actor: 'test' });
      const dir = join(
        work,
        `restored-${variant.store}-${variant.codec}-${variant.encrypted}-${variant.location ?? ''}-${variant.indexed}`,
      );
      try {
        const manifest = await engine.backup({ tier: 'oltp' });
        const serverCompressed = variant.location === 'server';
        // A tar taken over the replication protocol (server-compressed, or indexed) comes with
        // PostgreSQL's backup_manifest stored beside it; an indexed one with its page index.
        const overProtocol = serverCompressed || variant.indexed;
        expect(manifest.artifacts.map((artifact) => artifact.kind)).toEqual([
          'base-tar',
          ...(variant.indexed ? ['page-index'] : []),
          ...(overProtocol ? ['pg-manifest'] : []),
        ]);
        expect(manifest.artifacts[0].compression).toEqual({
          codec: variant.codec,
          level: variant.level,
          ...(serverCompressed ? { location: 'server' } : {}),
        });
        expect(manifest.artifacts[0].logicalSha256 === undefined).toBe(serverCompressed);
        expect(manifest.artifacts[0].encryption.algorithm).toBe(variant.encrypted ? 'aes-256-gcm' : 'none');
        expect(manifest.bytes).toBeGreaterThan(12 * 1024 * 1024);
        if (variant.codec !== 'none') expect(manifest.storedBytes).toBeLessThan(manifest.bytes);

        const { backups } = await engine.list('oltp');
        expect(backups.map((backup) => backup.id)).toEqual([manifest.id]);

        const port = await freeLoopbackPort();
        const result = await engine.restore({ tier: 'oltp', backup: 'latest', to: dir, start: true, port });
        restoredDirs.push(dir);
        expect(result.manifest.id).toBe(manifest.id);
        // The big relation files bypassed tar and the page cache (the scratch directory is on ext4).
        expect(result.directBytes).toBeGreaterThan(4 * 1024 * 1024);
        expect(result.directBytes).toBeLessThan(manifest.bytes);
        const after = await tableChecksums(`postgres://postgres@127.0.0.1:${port}/penguinmails_oltp`);
        expect(diffTableChecksums(before, after)).toEqual([]);
        expect(Object.keys(after).length).toBeGreaterThanOrEqual(5);
        // The restored directory holds backup_manifest as pg_basebackup -Fp leaves it, whichever way the tar was compressed.
        expect(JSON.parse(await readFile(join(dir, 'backup_manifest'), 'utf8'))).toMatchObject({ 'PostgreSQL-Backup-Manifest-Version': 1 });

        const verified = await engine.verify('oltp', manifest.id);
        expect(verified.ok).toBe(true);
        expect(verified.artifacts[0].entries).toBeGreaterThan(100);
      } finally {
        await engine.stopRestored(dir).catch(() => undefined);
        await engine.close();
      }
    },
    180_000,
  );

  it('two backups started in the same second get distinct ids and neither overwrites the other', async () => {
    const config = buildConfig(
      { repositories: [`file://${join(work, 'repo-same-second')}`], tiers: { oltp: { pgUrl: source.url } } },
      'test',
    );
    const engine = await createEngine(config, { actor: 'test' });
    try {
      const second = new Date('2026-11-26T02:00:00.000Z');
      const first = await engine.backup({ tier: 'oltp', now: () => second });
      const again = await engine.backup({ tier: 'oltp', now: () => second });
      expect([first.id, again.id]).toEqual(['20261126T020000Z-oltp', '20261126T020000Z-oltp-2']);
      expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toEqual([first.id, again.id]);
      for (const backup of [first, again]) expect((await engine.verify('oltp', backup.id)).ok).toBe(true);
      // An id the caller chooses is checked against every date folder, not only the new backup's day.
      const nextDay = new Date('2026-11-27T00:00:05.000Z');
      await expect(engine.backup({ tier: 'oltp', id: first.id, now: () => nextDay })).rejects.toThrow(
        `backup id '${first.id}' of tier 'oltp' is already used`,
      );
      expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toEqual([first.id, again.id]);
    } finally {
      await engine.close();
    }
  }, 120_000);

  it('refuses a restore into a non-empty directory and leaves it untouched', async () => {
    const config = buildConfig({ repositories: [`file://${join(work, 'repo-zstd-false-server')}`] }, 'test');
    const engine = await createEngine(config, { actor: 'test' });
    try {
      const dir = await mkdtemp(join(work, 'occupied-'));
      await writeFile(join(dir, 'precious.txt'), 'keep me');
      await expect(engine.restore({ tier: 'oltp', backup: 'latest', to: dir })).rejects.toThrow(`restore directory '${dir}' is not empty`);
      expect(await readdir(dir)).toEqual(['precious.txt']);
    } finally {
      await engine.close();
    }
  });
});

/** A repository in a bucket of the primary or the secondary S3-compatible server (two regions). */
async function s3Repository(bucket: string, region: 'primary' | 'secondary'): Promise<string> {
  const s3 = await acquireS3(region);
  await s3.createBucket(bucket);
  return `s3://${bucket}/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
}
