import { BackupManifest, ConfigError, ObjectInfo, TierName } from '@rookery/core';
import { makeManifest } from '@rookery/testing';
import { chooseBackup, resolveRegion } from './disaster-recovery.plan';

const REGIONS: Record<TierName, string[]> = {
  oltp: ['primary', 'secondary'],
  queue: ['primary', 'secondary'],
  content: ['primary', 'archive'],
  olap: ['primary', 'analytics-archive'],
};
const regionsOf = (tier: TierName) => REGIONS[tier];

describe('resolveRegion', () => {
  it('maps secondary to position 1 for every tier, whatever each tier calls it', () => {
    const region = resolveRegion('secondary', ['oltp', 'content'], regionsOf, ['s3://a', 's3://b']);
    expect(region).toMatchObject({
      position: 1,
      storeUrl: 's3://b',
      loneRepository: false,
      tierRegions: { oltp: 'secondary', content: 'archive' },
    });
  });

  it('takes a lone repository as a replica region (DR-only configuration)', () => {
    expect(resolveRegion('secondary', ['oltp'], regionsOf, ['s3://b'])).toMatchObject({ storeUrl: 's3://b', loneRepository: true });
    expect(resolveRegion('primary', ['oltp'], regionsOf, ['s3://a'])).toMatchObject({ storeUrl: 's3://a', loneRepository: false });
  });

  it('refuses a region no repository serves, or that a tier does not name', () => {
    expect(() => resolveRegion('secondary', ['oltp'], regionsOf, [])).toThrow(ConfigError);
    expect(() => resolveRegion('archive', ['oltp'], regionsOf, ['s3://a', 's3://b'])).toThrow(/tier oltp has no region 'archive'/);
  });
});

describe('chooseBackup', () => {
  const key = (manifest: BackupManifest, artifact: string) => `${manifest.id}/${artifact}`;
  const older = makeManifest({ id: '20260101T000000Z-F', finishedAt: '2026-01-01T00:10:00.000Z' });
  const newer = makeManifest({ id: '20260102T000000Z-F', finishedAt: '2026-01-02T00:10:00.000Z' });
  const present = (...manifests: BackupManifest[]) =>
    new Map<string, ObjectInfo>(
      manifests.flatMap((manifest) =>
        manifest.artifacts.map((artifact) => [
          key(manifest, artifact.name),
          { key: key(manifest, artifact.name), size: artifact.storedBytes, modifiedAt: new Date() },
        ]),
      ),
    );

  it('takes the newest backup whose artifacts are all there with their sizes', () => {
    expect(chooseBackup([older, newer], key, present(older, newer)).backup?.id).toBe(newer.id);
  });

  it('passes over a backup with a missing or short artifact, saying why', () => {
    const stats = present(older, newer);
    const artifact = newer.artifacts[0];
    stats.set(key(newer, artifact.name), { key: key(newer, artifact.name), size: artifact.storedBytes - 1, modifiedAt: new Date() });
    const choice = chooseBackup([older, newer], key, stats);
    expect(choice.backup?.id).toBe(older.id);
    expect(choice.skipped).toEqual([{ backupId: newer.id, reason: expect.stringContaining(`holds ${artifact.storedBytes - 1} bytes`) }]);
    expect(chooseBackup([older, newer], key, present(older)).skipped[0].reason).toMatch(/is missing/);
  });

  it('needs every parent of an incremental, and honours the target time and the region', () => {
    const incremental = makeManifest({
      id: '20260103T000000Z-I',
      type: 'incremental',
      parent: 'gone',
      finishedAt: '2026-01-03T00:10:00.000Z',
    });
    expect(chooseBackup([older, incremental], key, present(older, incremental)).skipped[0].reason).toMatch(
      /parent gone .* has no intact manifest/,
    );
    expect(chooseBackup([older, newer], key, present(older, newer), { notAfter: new Date('2026-01-01T12:00:00Z') }).backup?.id).toBe(
      older.id,
    );
    expect(chooseBackup([older], key, present(older), { requireRegion: 'secondary' }).backup).toBeNull();
  });
});
