import { ArtifactRecord } from '@rookery/core';
import { makeManifest } from '@rookery/testing';
import { backupJson, tablespaceRows, tablespacesOf } from './cli.output';

function tablespaceArtifact(oid: number, name: string, location: string, bytes: number): ArtifactRecord {
  return {
    name: `tablespace-${oid}.tar.zst`,
    kind: 'tablespace-tar',
    tablespace: { oid, name, location },
    bytes,
    storedBytes: bytes / 4,
    sha256: 'c'.repeat(64),
    logicalSha256: 'd'.repeat(64),
    compression: { codec: 'zstd', level: 1 },
    encryption: { algorithm: 'none' },
  };
}

describe('the tablespaces of a backup as info shows them', () => {
  const base = makeManifest().artifacts[0];
  const withTablespaces = makeManifest({
    artifacts: [
      base,
      tablespaceArtifact(16384, 'fast', '/srv/pg/fast', 8 * 1024 * 1024),
      tablespaceArtifact(16385, 'cold', '/srv/pg/cold', 4096),
    ],
  });

  it('lists one entry per tablespace artifact, in the manifest order, and none for a backup without any', () => {
    expect(tablespacesOf(withTablespaces)).toEqual([
      {
        oid: 16384,
        name: 'fast',
        location: '/srv/pg/fast',
        bytes: 8 * 1024 * 1024,
        storedBytes: 2 * 1024 * 1024,
        artifact: 'tablespace-16384.tar.zst',
      },
      { oid: 16385, name: 'cold', location: '/srv/pg/cold', bytes: 4096, storedBytes: 1024, artifact: 'tablespace-16385.tar.zst' },
    ]);
    expect(tablespacesOf(makeManifest())).toEqual([]);
  });

  it('info --json gives each artifact its kind (and tablespace), and the backup its tablespaces', () => {
    const json = backupJson(withTablespaces) as { artifacts: Record<string, unknown>[]; tablespaces: unknown[] };
    expect(json.artifacts.map((artifact) => [artifact['kind'], artifact['tablespace']])).toEqual([
      ['base-tar', undefined],
      ['tablespace-tar', { oid: 16384, name: 'fast', location: '/srv/pg/fast' }],
      ['tablespace-tar', { oid: 16385, name: 'cold', location: '/srv/pg/cold' }],
    ]);
    expect(json.tablespaces).toHaveLength(2);
    expect('tablespace' in json.artifacts[0]).toBe(false);
    expect('incremental' in json.artifacts[0]).toBe(false);
  });

  it("backup --json gives an incremental's artifacts their pages read and stored", () => {
    const manifest = makeManifest();
    const incremental = { pagesRead: 1000, pagesStored: 30, wholeFiles: 2, removed: 1 };
    const json = backupJson({ ...manifest, artifacts: [{ ...manifest.artifacts[0], kind: 'base-incremental', incremental }] }) as {
      artifacts: Record<string, unknown>[];
    };
    expect(json.artifacts[0]['incremental']).toEqual(incremental);
  });

  it.each([
    [
      false,
      [
        'oid    name  original location  size     stored   artifact',
        '16384  fast  /srv/pg/fast       8.0 MiB  2.0 MiB  tablespace-16384.tar.zst',
      ],
    ],
    [true, [`backup                 oid    name`, `20261126T020000Z-oltp  16384  fast  /srv/pg/fast`]],
  ])('prints a row per tablespace (with the backup column: %s)', (withBackup, expected) => {
    const lines = tablespaceRows([withTablespaces], withBackup).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0].startsWith(expected[0])).toBe(true);
    expect(lines[2].startsWith(expected[1])).toBe(true);
  });
});
