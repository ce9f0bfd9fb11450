import { ArtifactRecord, BackupManifest, IncrementalChainError } from '@rookery/core';
import { makeManifest } from '@rookery/testing';
import { resolveChain as chainOf } from './logical-incremental.service';
import { chooseIncrementalParent, dataArtifactOf, indexChainOf } from './physical-incremental';
import { nextIndexChain } from './storage-class.service';

const policy = { fullEveryDays: 1, maxChainFraction: 0.5 };
const systemIdentifier = '7312345678901234567';

function artifact(kind: ArtifactRecord['kind'], name: string, storedBytes = 100, oid?: number): ArtifactRecord {
  return {
    name,
    kind,
    bytes: storedBytes * 4,
    storedBytes,
    sha256: 'a'.repeat(64),
    compression: { codec: 'zstd', level: 1 },
    encryption: { algorithm: 'none' },
    ...(oid ? { tablespace: { oid, name: `ts${oid}`, location: `/srv/ts${oid}` } } : {}),
  };
}

function full(id: string, startedAt: string, storedBytes = 1000): BackupManifest {
  return makeManifest({
    id,
    startedAt,
    storedBytes,
    artifacts: [artifact('base-tar', 'base.tar.zst', storedBytes), artifact('page-index', 'base.pgidx', 10)],
  });
}

function incremental(id: string, parent: string, startedAt: string, storedBytes = 100): BackupManifest {
  return makeManifest({
    id,
    type: 'incremental',
    parent,
    startedAt,
    storedBytes,
    artifacts: [artifact('base-incremental', 'base.blkinc.zst', storedBytes), artifact('page-index', 'base.pgidx', 10)],
  });
}

describe('chooseIncrementalParent', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  const f = full('F', '2026-12-07T02:00:00Z');
  const i1 = incremental('I1', 'F', '2026-12-07T03:00:00Z');
  const i2 = incremental('I2', 'I1', '2026-12-07T04:00:00Z');

  it('chains to the newest physical backup and returns its chain from the full', () => {
    const choice = chooseIncrementalParent([f, i1, i2], { policy, systemIdentifier, now });
    expect(choice).toEqual({ parent: i2, chain: [f, i1, i2] });
    // Logical backups of the tier (none in practice) are not links.
    const logical = makeManifest({ id: 'L', method: 'logical', startedAt: '2026-12-07T05:00:00Z' });
    expect(chooseIncrementalParent([f, i1, logical], { policy, systemIdentifier, now })).toEqual({ parent: i1, chain: [f, i1] });
  });

  it.each<[string, BackupManifest[], Partial<typeof policy>, RegExp]>([
    ['no backup', [], {}, /has no backup to take an incremental against/],
    [
      'another system',
      [makeManifest({ ...full('F', '2026-12-07T02:00:00Z'), postgres: { version: '15', versionNum: 150000, systemIdentifier: '1' } })],
      {},
      /database system 1, not 7312345678901234567/,
    ],
    ['no page index', [makeManifest({ id: 'OLD', startedAt: '2026-12-07T02:00:00Z' })], {}, /OLD has no page index/],
    ['a full too old', [full('F', '2026-12-06T11:00:00Z')], {}, /full backup F is 1\.0 days old \(policy: a full every 1 days\)/],
    [
      'a chain too big',
      [f, incremental('I1', 'F', '2026-12-07T03:00:00Z', 300), incremental('I2', 'I1', '2026-12-07T04:00:00Z', 201)],
      {},
      /store 501 bytes, more than 0\.5 of its full backup F \(1000 bytes\)/,
    ],
  ])('takes a full instead when there is %s, saying why', (_, backups, overrides, reason) => {
    const choice = chooseIncrementalParent(backups, { policy: { ...policy, ...overrides }, systemIdentifier, now });
    expect(choice).toEqual({ reason: expect.stringMatching(reason) });
  });

  it('keeps chaining up to the bounds', () => {
    const big = [f, incremental('I1', 'F', '2026-12-07T03:00:00Z', 250), incremental('I2', 'I1', '2026-12-07T04:00:00Z', 250)];
    expect(chooseIncrementalParent(big, { policy, systemIdentifier, now })).toMatchObject({ parent: { id: 'I2' } });
    expect(chooseIncrementalParent([f], { policy, systemIdentifier, now: new Date('2026-12-08T01:59:00Z') })).toMatchObject({
      parent: { id: 'F' },
    });
  });
});

describe('the chain of a physical incremental', () => {
  const f = full('F', '2026-12-07T02:00:00Z');
  const i1 = incremental('I1', 'F', '2026-12-07T03:00:00Z');
  const i2 = incremental('I2', 'I1', '2026-12-07T04:00:00Z');

  it('walks from an incremental to its full', () => {
    expect(chainOf([f, i1, i2], i2).map((backup) => backup.id)).toEqual(['F', 'I1', 'I2']);
    expect(chainOf([f], f)).toEqual([f]);
  });

  it('names a broken link', () => {
    expect(() => chainOf([f, i2], i2)).toThrow(IncrementalChainError);
    expect(() => chainOf([f, i2], i2)).toThrow("backup 'I2' chains to backup 'I1', which is not in the repository");
  });

  it('refuses a loop', () => {
    const a = incremental('A', 'B', '2026-12-07T03:00:00Z');
    const b = incremental('B', 'A', '2026-12-07T04:00:00Z');
    expect(() => chainOf([a, b], b)).toThrow("the chain of backup 'B' loops");
  });

  it("finds a tar's artifact by data directory or tablespace", () => {
    const withTablespace = makeManifest({
      artifacts: [
        artifact('base-incremental', 'base.blkinc'),
        artifact('tablespace-incremental', 'tablespace-16400.blkinc', 1, 16400),
        artifact('page-index', 'x', 1, 16400),
      ],
    });
    expect(dataArtifactOf(withTablespace, 'base')?.name).toBe('base.blkinc');
    expect(dataArtifactOf(withTablespace, 'tablespace:16400')?.name).toBe('tablespace-16400.blkinc');
    expect(dataArtifactOf(withTablespace, 'tablespace:1')).toBeUndefined();
  });
});

describe('the page indexes the next incremental reads', () => {
  /** An incremental whose page index is a delta against its parent's (deltaIndex on) or full (off). */
  const withIndex = (backup: BackupManifest, deltaOf: string | null): BackupManifest => ({
    ...backup,
    artifacts: backup.artifacts.map((record) => (record.kind === 'page-index' && deltaOf ? { ...record, pageIndex: { deltaOf } } : record)),
  });
  const f = full('F', '2026-12-07T02:00:00Z');
  const i1 = withIndex(incremental('I1', 'F', '2026-12-07T03:00:00Z'), 'F');
  const i2 = withIndex(incremental('I2', 'I1', '2026-12-07T04:00:00Z'), 'I1');
  const i2Full = withIndex(incremental('I2', 'I1', '2026-12-07T04:00:00Z'), null);
  const i3 = withIndex(incremental('I3', 'I2', '2026-12-07T05:00:00Z'), 'I2');
  const ids = (backups: BackupManifest[]) => backups.map((backup) => backup.id);

  it.each<[string, BackupManifest[], string[]]>([
    ['a full alone', [f], ['F']],
    ['deltas back to the full', [f, i1, i2, i3], ['F', 'I1', 'I2', 'I3']],
    ['from the newest link with full indexes (deltaIndex off there)', [f, i1, i2Full, i3], ['I2', 'I3']],
    ['a newest link with full indexes alone', [f, i1, i2Full], ['I2']],
  ])('%s', (_name, chain, expected) => {
    expect(ids(indexChainOf(chain))).toEqual(expected);
    // What transition keeps warm: the same links, found from the listing (a logical backup is no link).
    const logical = makeManifest({ id: 'L', method: 'logical', startedAt: '2026-12-07T01:00:00Z' });
    expect(ids(nextIndexChain([logical, ...chain]))).toEqual(expected);
  });

  it('keeps what can be followed of a broken chain', () => {
    expect(ids(nextIndexChain([i2, i3]))).toEqual(['I2', 'I3']);
    expect(nextIndexChain([])).toEqual([]);
  });
});
