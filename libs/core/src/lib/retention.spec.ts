import { formatLsn } from './lsn';
import { BackupManifest, UnsignedManifest, signManifest } from './manifest';
import { LegalHold, RetentionInputs, RetentionWalObject, planRetention, retainUntil } from './retention';
import { WalFileName, parseTimelineHistory, parseWalFileName, walHistoryFileName, walSegmentFileName } from './wal';

const SEGMENT = 16n * 1024n * 1024n;
const DAY = 86_400_000;
const NOW = new Date('2027-06-01T00:00:00.000Z');
const POLICY: RetentionInputs['policy'] = { retentionDays: 90, snapshotRetentionDays: 365, localCopyDays: 7 };

/** A backup finished `ageDays` before NOW, starting in segment `startSegment`. */
function backup(id: string, ageDays: number, startSegment: number, overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  const finishedAt = new Date(NOW.getTime() - ageDays * DAY).toISOString();
  const start = BigInt(startSegment) * SEGMENT + 0x28n;
  return signManifest({
    formatVersion: 1,
    id,
    tier: 'oltp',
    database: 'penguinmails_oltp',
    type: 'full',
    method: 'physical',
    startedAt: finishedAt,
    finishedAt,
    postgres: { version: '15.8', versionNum: 150008, systemIdentifier: '7312345678901234567' },
    timeline: 1,
    startLsn: formatLsn(start),
    stopLsn: formatLsn(start + 0x100n),
    walRange: null,
    parent: null,
    retentionUntil: new Date(Date.parse(finishedAt) + 90 * DAY).toISOString(),
    storageClass: 'STANDARD_IA',
    regions: ['primary'],
    bytes: 10,
    storedBytes: 10,
    artifacts: [],
    tool: { name: 'rookery', version: '0.1.0' },
    ...overrides,
  });
}

function logical(id: string, ageDays: number, overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  return backup(id, ageDays, 0, { tier: 'content', method: 'logical', timeline: null, startLsn: null, stopLsn: null, ...overrides });
}

function walName(name: string): WalFileName {
  const file = parseWalFileName(name);
  if (!file) throw new Error(`not a WAL file name: ${name}`);
  return file;
}

function wal(timeline: number, first: number, last: number): RetentionWalObject[] {
  const objects: RetentionWalObject[] = [];
  for (let segment = first; segment <= last; segment++) {
    const name = walSegmentFileName(timeline, BigInt(segment));
    objects.push({ key: `oltp/wal/${name}-x`, file: walName(name), storedBytes: 100, archivedAt: NOW });
  }
  return objects;
}

function history(timeline: number): RetentionWalObject {
  const name = walHistoryFileName(timeline);
  return { key: `oltp/wal/${name}-x`, file: walName(name), storedBytes: 1, archivedAt: NOW };
}

function hold(backupId: string, tier: LegalHold['tier'] = 'oltp'): LegalHold {
  return { backupId, tier, reason: 'litigation 42', heldBy: 'alice@host (cli)', heldAt: '2027-01-01T00:00:00.000Z' };
}

function plan(overrides: Partial<RetentionInputs>) {
  return planRetention({ tier: 'oltp', policy: POLICY, backups: [], wal: [], histories: new Map(), holds: [], now: NOW, ...overrides });
}

describe('planRetention: backups', () => {
  it('expires backups past retention and keeps the rest, with reasons', () => {
    const result = plan({ backups: [backup('old', 120, 2), backup('mid', 91, 5), backup('new', 10, 9)] });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['mid', 'old']);
    expect(result.expire.backups[0].reason).toMatch(/^older than 90 d retention \(retention until 2027-05-31T00:00:00.000Z\)$/);
    expect(result.keep.backups).toEqual([
      expect.objectContaining({
        id: 'new',
        reasons: [expect.stringMatching(/newest full backup/), expect.stringMatching(/^within 90 d retention/)],
      }),
    ]);
  });

  it('keeps the newest full backup however old', () => {
    const result = plan({ backups: [backup('a', 400, 2), backup('b', 300, 5)] });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['a']);
    expect(result.keep.backups[0]).toEqual(expect.objectContaining({ id: 'b', reasons: ['the newest full backup is never expired'] }));
  });

  it('keeps a backup under legal hold and says who held it', () => {
    const result = plan({ backups: [backup('held', 200, 2), backup('new', 1, 9)], holds: [hold('held'), hold('held', 'content')] });
    expect(result.expire.backups).toEqual([]);
    expect(result.keep.backups[0].reasons).toEqual(['under legal hold since 2027-01-01T00:00:00.000Z by alice@host (cli): litigation 42']);
  });

  it('ignores holds of another tier', () => {
    const result = plan({ backups: [backup('held', 200, 2), backup('new', 1, 9)], holds: [hold('held', 'content')] });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['held']);
  });

  it('keeps snapshots by their own retention', () => {
    const snapshot = logical('snap', 200, { type: 'snapshot', retentionUntil: new Date(NOW.getTime() + 165 * DAY).toISOString() });
    const result = plan({ tier: 'content', backups: [logical('full-old', 200), snapshot, logical('full-new', 1)] });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['full-old']);
    expect(result.keep.backups.find((entry) => entry.id === 'snap')?.reasons).toEqual([expect.stringMatching(/^within 365 d retention/)]);
  });

  it.each([
    ['a longer policy keeps older backups longer', { ...POLICY, retentionDays: 180 }, 'kept'],
    ['a shorter policy never cuts the recorded retention date', { ...POLICY, retentionDays: 30 }, 'kept'],
  ])('%s', (_name, policy, outcome) => {
    const result = plan({ policy, backups: [backup('b', 60, 2), backup('new', 1, 9)] });
    expect(result.keep.backups.some((entry) => entry.id === 'b')).toBe(outcome === 'kept');
  });

  it('retainUntil is the later of the manifest date and the current policy', () => {
    const manifest = backup('b', 60, 2);
    expect(retainUntil(manifest, { ...POLICY, retentionDays: 30 }).toISOString()).toBe(manifest.retentionUntil);
    expect(retainUntil(manifest, { ...POLICY, retentionDays: 100 }).getTime()).toBe(Date.parse(manifest.finishedAt) + 100 * DAY);
  });

  it('a retained incremental keeps its whole chain; an expired chain goes child first', () => {
    const backups = [
      logical('f1', 300),
      logical('i1', 299, { type: 'incremental', parent: 'f1' }),
      logical('i2', 298, { type: 'incremental', parent: 'i1' }),
      logical('f2', 200),
      logical('i3', 199, { type: 'incremental', parent: 'f2' }),
      logical('i4', 10, { type: 'incremental', parent: 'i3', retentionUntil: new Date(NOW.getTime() + 80 * DAY).toISOString() }),
      logical('f3', 5),
    ];
    const result = plan({ tier: 'content', backups });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['i2', 'i1', 'f1']);
    const reasons = Object.fromEntries(result.keep.backups.map((entry) => [entry.id, entry.reasons]));
    expect(reasons['i3']).toEqual(['parent of retained incremental i4 (incremental chain)']);
    expect(reasons['f2']).toEqual(['parent of retained incremental i3 (incremental chain)']);
  });

  it('a held incremental keeps its parents', () => {
    const backups = [logical('f1', 300), logical('i1', 299, { type: 'incremental', parent: 'f1' }), logical('f2', 1)];
    const result = plan({ tier: 'content', backups, holds: [hold('i1', 'content')] });
    expect(result.expire.backups).toEqual([]);
  });

  it('keeps a backup whose objects are under Object Lock until the lock date', () => {
    const locks = { backups: new Map([['old', new Date(NOW.getTime() + DAY)]]) };
    const result = plan({ backups: [backup('old', 120, 2), backup('new', 1, 9)], objectLocks: locks });
    expect(result.expire.backups).toEqual([]);
    expect(result.keep.backups[0].reasons[0]).toMatch(/S3 Object Lock until 2027-06-02/);
    const later = plan({
      backups: [backup('old', 120, 2), backup('new', 1, 9)],
      objectLocks: locks,
      now: new Date(NOW.getTime() + 2 * DAY),
    });
    expect(later.expire.backups.map((entry) => entry.id)).toEqual(['old']);
  });
});

describe('planRetention: WAL', () => {
  it('expires WAL below the start segment of the oldest retained physical backup, oldest first', () => {
    const result = plan({ backups: [backup('old', 120, 2), backup('mid', 30, 5), backup('new', 1, 9)], wal: wal(1, 1, 12) });
    expect(result.walCut).toEqual({ segment: walSegmentFileName(1, 5n), backupId: 'mid' });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([1, 2, 3, 4].map((segment) => walSegmentFileName(1, BigInt(segment))));
    expect(result.keep.wal).toEqual([
      expect.objectContaining({
        timeline: 1,
        first: walSegmentFileName(1, 5n),
        last: walSegmentFileName(1, 12n),
        files: 8,
        reason: expect.stringMatching(/oldest retained physical backup mid/),
      }),
    ]);
    expect(result.bytesFreed).toBe(10 + 4 * 100);
  });

  it('a held old backup keeps all WAL from its start on (its whole point-in-time window)', () => {
    const result = plan({ backups: [backup('old', 120, 2), backup('new', 1, 9)], wal: wal(1, 1, 12), holds: [hold('old')] });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([walSegmentFileName(1, 1n)]);
  });

  it('keeps every WAL file when no physical backup is retained or one lacks a start LSN', () => {
    expect(plan({ wal: wal(1, 1, 5) }).expire.wal).toEqual([]);
    const noLsn = plan({ backups: [backup('a', 1, 3, { startLsn: null })], wal: wal(1, 1, 5) });
    expect(noLsn.expire.wal).toEqual([]);
    expect(noLsn.keep.wal[0].reason).toMatch(/records no start LSN/);
  });

  it('cuts across timelines by segment number, keeps .partial and .backup files at or above the cut, and drops those below', () => {
    const partial = walName(`${walSegmentFileName(1, 6n)}.partial`);
    const backupFile = walName(`${walSegmentFileName(1, 2n)}.00000028.backup`);
    const objects = [
      ...wal(1, 1, 6),
      { key: 'p', file: partial, storedBytes: 1, archivedAt: NOW },
      { key: 'b', file: backupFile, storedBytes: 1, archivedAt: NOW },
      history(2),
      ...wal(2, 6, 10),
    ];
    const histories = new Map([[2, parseTimelineHistory(`1\t${formatLsn(6n * SEGMENT + 0x100n)}\tpromoted`)]]);
    const result = plan({ backups: [backup('old', 120, 2), backup('new', 1, 6, { timeline: 2 })], wal: objects, histories });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([
      ...[1, 2].map((s) => walSegmentFileName(1, BigInt(s))),
      backupFile.name,
      ...[3, 4, 5].map((s) => walSegmentFileName(1, BigInt(s))),
    ]);
    expect(result.keep.wal.map((range) => [range.timeline, range.first, range.last])).toEqual([
      [1, walSegmentFileName(1, 6n), partial.name],
      [2, walHistoryFileName(2), walHistoryFileName(2)],
      [2, walSegmentFileName(2, 6n), walSegmentFileName(2, 10n)],
    ]);
  });

  it('keeps history files of followed timelines and their ancestors, drops an abandoned branch', () => {
    const objects = [history(2), history(3), history(4), ...wal(2, 3, 4), ...wal(4, 8, 9)];
    const histories = new Map([
      [2, parseTimelineHistory(`1\t0/3000000\tx`)],
      [3, parseTimelineHistory(`1\t0/3000000\tx\n2\t0/4800000\tx`)],
      [4, parseTimelineHistory(`1\t0/3000000\tx\n2\t0/5800000\tx`)],
    ]);
    const result = plan({ backups: [backup('new', 1, 8, { timeline: 4 })], wal: objects, histories });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([
      walSegmentFileName(2, 3n),
      walSegmentFileName(2, 4n),
      walHistoryFileName(3),
    ]);
    expect(result.keep.wal.map((range) => range.first)).toEqual([walHistoryFileName(2), walHistoryFileName(4), walSegmentFileName(4, 8n)]);
  });

  it('keeps WAL under Object Lock', () => {
    const objects = wal(1, 1, 4);
    const result = plan({
      backups: [backup('new', 1, 3)],
      wal: objects,
      objectLocks: { wal: new Map([[objects[0].key, new Date(NOW.getTime() + DAY)]]) },
    });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([walSegmentFileName(1, 2n)]);
    expect(result.keep.wal[0].reason).toMatch(/Object Lock/);
  });
});

describe('planRetention: physical block-incremental chains', () => {
  const inc = (id: string, ageDays: number, startSegment: number, parent: string, overrides: Partial<UnsignedManifest> = {}) =>
    backup(id, ageDays, startSegment, { type: 'incremental', parent, ...overrides });

  it('a retained physical incremental keeps its parents and the WAL from its full on; an expired chain goes child first', () => {
    const backups = [
      backup('f0', 200, 1),
      inc('i0a', 199.9, 2, 'f0'),
      inc('i0b', 199.8, 3, 'i0a'),
      backup('f1', 100, 10),
      inc('i1a', 99.9, 11, 'f1'),
      // Past its own 90 days only by the policy: its manifest promised 120 (retentionUntil).
      inc('i1b', 99.8, 12, 'i1a', { retentionUntil: new Date(NOW.getTime() + 20 * DAY).toISOString() }),
      backup('f2', 1, 20),
    ];
    const result = plan({ backups, wal: wal(1, 1, 22) });
    expect(result.expire.backups.map((entry) => [entry.id, entry.method, entry.type])).toEqual([
      ['i0b', 'physical', 'incremental'],
      ['i0a', 'physical', 'incremental'],
      ['f0', 'physical', 'full'],
    ]);
    const reasons = Object.fromEntries(result.keep.backups.map((entry) => [entry.id, entry.reasons]));
    expect(reasons['i1a']).toEqual(['parent of retained incremental i1b (incremental chain)']);
    expect(reasons['f1']).toEqual(['parent of retained incremental i1a (incremental chain)']);
    // Recovery from the chain starts at its full's WAL position (a PITR between f1 and i1b replays from there).
    expect(result.walCut).toEqual({ segment: walSegmentFileName(1, 10n), backupId: 'f1' });
    expect(result.expire.wal.map((entry) => entry.name)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => walSegmentFileName(1, BigInt(n))));
  });

  it('a legal hold on a physical incremental keeps its whole chain and its WAL, and nothing newer is needed for it', () => {
    const backups = [backup('f1', 300, 2), inc('i1', 299, 3, 'f1'), inc('i2', 298, 4, 'i1'), backup('f2', 1, 9)];
    const result = plan({ backups, wal: wal(1, 1, 10), holds: [hold('i1')] });
    expect(result.expire.backups.map((entry) => entry.id)).toEqual(['i2']);
    expect(result.keep.backups.find((entry) => entry.id === 'f1')?.reasons).toEqual([
      'parent of retained incremental i1 (incremental chain)',
    ]);
    expect(result.walCut).toEqual({ segment: walSegmentFileName(1, 2n), backupId: 'f1' });
  });

  it('never lists a parent before one of its expired children, whatever the order of the listing', () => {
    const backups = [inc('i2', 200, 4, 'i1'), backup('f2', 1, 9), backup('f1', 202, 2), inc('i1', 201, 3, 'f1')];
    const order = plan({ backups }).expire.backups.map((entry) => entry.id);
    expect(order).toEqual(['i2', 'i1', 'f1']);
  });

  it('keeps the chain of an incremental whose manifest cannot be trusted (it may be signed again later)', () => {
    const backups = [backup('f1', 300, 2), inc('i1', 299, 3, 'f1'), backup('f2', 1, 9)];
    const untrustedChildren = [{ id: 'i2', parent: 'i1', problem: 'not signed' }];
    const result = plan({ backups, untrustedChildren });
    expect(result.expire.backups).toEqual([]);
    expect(result.keep.backups.find((entry) => entry.id === 'i1')?.reasons).toEqual([
      'parent of incremental i2, whose manifest cannot be trusted (not signed); fix or remove it first',
    ]);
    expect(result.keep.backups.find((entry) => entry.id === 'f1')?.reasons).toEqual([
      'parent of retained incremental i1 (incremental chain)',
    ]);
  });

  it('the newest full is kept even when only incrementals follow it, and keeps them restorable', () => {
    const backups = [backup('f1', 120, 2), inc('i1', 119, 3, 'f1'), inc('i2', 2, 4, 'i1')];
    const result = plan({ backups, wal: wal(1, 1, 5) });
    expect(result.expire.backups).toEqual([]);
    expect(result.walCut?.backupId).toBe('f1');
  });
});

describe('planRetention: orphans and local copies', () => {
  it('expires folders without a manifest only after a day of silence', () => {
    const orphans = [
      { folder: 'oltp/backups/2027-05-01/a/', newestAt: new Date(NOW.getTime() - 2 * DAY), objects: 2, storedBytes: 7 },
      { folder: 'oltp/backups/2027-05-31/b/', newestAt: new Date(NOW.getTime() - 3_600_000), objects: 1, storedBytes: 3 },
    ];
    const result = plan({ orphans });
    expect(result.expire.orphans.map((folder) => folder.folder)).toEqual(['oltp/backups/2027-05-01/a/']);
    expect(result.keep.orphans[0].reason).toMatch(/possibly a backup in progress/);
    expect(result.bytesFreed).toBe(7);
  });

  it('says when no local store is configured', () => {
    expect(plan({}).localCopies).toEqual({ configured: false, note: expect.stringMatching(/no local store is configured/) });
  });
});
