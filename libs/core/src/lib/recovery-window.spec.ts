import { formatLsn } from './lsn';
import { BackupManifest, UnsignedManifest, signManifest } from './manifest';
import { parseRecoveryTarget } from './recovery-target';
import {
  ArchivedWalFile,
  planRecovery,
  recoveryWindow,
  restorePointSearchRanges,
  timelineForSegment,
  timelinePath,
} from './recovery-window';
import { RestoreTargetError } from './rookery.errors';
import { WalFileName, parseTimelineHistory, parseWalFileName } from './wal';
import { walContinuity } from './wal-continuity';

const SEGMENT = 16n * 1024n * 1024n;

function backup(id: string, stopSegment: number, finishedAt: string, overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  const start = BigInt(stopSegment) * SEGMENT + 0x28n;
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
    retentionUntil: '2027-01-01T00:00:00.000Z',
    storageClass: 'STANDARD_IA',
    regions: ['local'],
    bytes: 1,
    storedBytes: 1,
    artifacts: [],
    tool: { name: 'rookery', version: '0.1.0' },
    ...overrides,
  });
}

/** Archived segments first..last of a timeline, one a minute from `at`. */
function segments(timeline: number, first: number, last: number, at = '2026-11-26T03:00:00.000Z', skip: number[] = []): ArchivedWalFile[] {
  const files: ArchivedWalFile[] = [];
  for (let segment = first; segment <= last; segment++) {
    if (skip.includes(segment)) continue;
    const name = `${timeline.toString(16).padStart(8, '0').toUpperCase()}00000000${segment.toString(16).padStart(8, '0').toUpperCase()}`;
    files.push({
      file: parseWalFileName(name) as WalFileName,
      sha256: `${segment}`.padStart(64, '0'),
      archivedAt: new Date(new Date(at).getTime() + (segment - first) * 60_000),
    });
  }
  return files;
}

const noHistory = new Map();

describe('recoveryWindow and planRecovery', () => {
  const older = backup('b1', 2, '2026-11-26T02:00:00.000Z');
  const newer = backup('b2', 6, '2026-11-26T04:00:00.000Z');
  // Segments 2..9 archived from 03:00 one a minute: the archive ends at 03:07.
  const wal = segments(1, 2, 9, '2026-11-26T03:00:00.000Z');

  it('reaches the end of the contiguous archive from each backup', () => {
    const window = recoveryWindow({ backups: [newer, older], wal, histories: noHistory });
    expect(window.reaches.map((reach) => [reach.backup.id, formatLsn(reach.endLsn), reach.endTime.toISOString()])).toEqual([
      ['b1', '0/A000000', '2026-11-26T03:07:00.000Z'],
      // b2 finished after the last segment was archived: its reach time is its own end.
      ['b2', '0/A000000', '2026-11-26T04:00:00.000Z'],
    ]);
  });

  it('picks the newest backup whose stop precedes an LSN target', () => {
    const window = recoveryWindow({ backups: [older, newer], wal, histories: noHistory });
    expect(planRecovery(window, parseRecoveryTarget({ targetLsn: '0/5000000' })).backup.id).toBe('b1');
    expect(planRecovery(window, parseRecoveryTarget({ targetLsn: '0/7000000' })).backup.id).toBe('b2');
    expect(planRecovery(window, { kind: 'latest' }).backup.id).toBe('b2');
  });

  it('uses finishedAt ≤ T for time targets and the archive time as the end', () => {
    const window = recoveryWindow({ backups: [older], wal, histories: noHistory });
    expect(planRecovery(window, parseRecoveryTarget({ targetTime: '2026-11-26T02:00:00Z' })).backup.id).toBe('b1');
    expect(planRecovery(window, parseRecoveryTarget({ targetTime: '2026-11-26T03:07:00Z' })).backup.id).toBe('b1');
  });

  it.each([
    ['before the oldest backup ended', { targetTime: '2026-11-26T01:59:59.999999Z' }],
    ['after the last archived WAL', { targetTime: '2026-11-26T03:07:00.000001Z' }],
    ['an LSN before the oldest stop', { targetLsn: '0/1000000' }],
    ['an LSN past the archive', { targetLsn: '0/A000001' }],
  ])('refuses a target %s with the window in the message', (_why, flags) => {
    const window = recoveryWindow({ backups: [older], wal, histories: noHistory });
    const attempt = () => planRecovery(window, parseRecoveryTarget(flags));
    expect(attempt).toThrow(RestoreTargetError);
    expect(attempt).toThrow(
      /outside the recoverable window; recoverable window \(newest timeline 1\): LSN 0\/2000128 to 0\/A000000, time 2026-11-26 02:00:00.000000\+00 to 2026-11-26 03:07:00.000000\+00/,
    );
  });

  it('stops the window at a gap and shows both ranges', () => {
    const gappy = segments(1, 2, 9, '2026-11-26T03:00:00.000Z', [4]);
    const window = recoveryWindow({ backups: [older, newer], wal: gappy, histories: noHistory });
    expect(window.reaches[0].gapAt).toBe('000000010000000000000004');
    expect(planRecovery(window, parseRecoveryTarget({ targetLsn: '0/4000000' })).backup.id).toBe('b1');
    expect(() => planRecovery(window, parseRecoveryTarget({ targetLsn: '0/5000000' }))).toThrow(/0\/4000000, time .* then LSN 0\/6000128/);
  });

  it('leaves out backups of another cluster and damaged manifests', () => {
    const foreign = backup('b0', 1, '2026-11-26T01:00:00.000Z', { postgres: { version: '15', versionNum: 150000, systemIdentifier: '1' } });
    const damaged = { ...backup('b1x', 2, '2026-11-26T02:30:00.000Z'), database: 'edited' };
    const window = recoveryWindow({ backups: [foreign, older, damaged, newer], wal, histories: noHistory });
    expect(window.reaches.map((reach) => reach.backup.id)).toEqual(['b1', 'b2']);
    expect(window.excluded.map((entry) => entry.id)).toEqual(['b0', 'b1x']);
    expect(() => planRecovery(recoveryWindow({ backups: [foreign], wal: [], histories: noHistory }), { kind: 'latest' })).not.toThrow();
  });

  it('refuses when there is no backup at all', () => {
    expect(() => planRecovery(recoveryWindow({ backups: [], wal, histories: noHistory }), { kind: 'latest' })).toThrow(
      /no usable physical backup/,
    );
  });

  it('chooses for xid targets by the next xid recorded at backup end', () => {
    const a = backup('a', 2, '2026-11-26T02:00:00.000Z', { nextXid: '1000' });
    const b = backup('b', 6, '2026-11-26T04:00:00.000Z', { nextXid: '2000' });
    const window = recoveryWindow({ backups: [a, b], wal, histories: noHistory });
    expect(planRecovery(window, { kind: 'xid', xid: 1999n }).backup.id).toBe('a');
    expect(planRecovery(window, { kind: 'xid', xid: 2000n }).backup.id).toBe('b');
    expect(() => planRecovery(window, { kind: 'xid', xid: 999n })).toThrow(/no backup is known to have ended before transaction 999/);
  });

  it('reads a 32-bit xid in the epoch of the backup', () => {
    const epochOne = backup('e', 2, '2026-11-26T02:00:00.000Z', { nextXid: String((1n << 32n) + 500n) });
    const window = recoveryWindow({ backups: [epochOne], wal, histories: noHistory });
    expect(planRecovery(window, { kind: 'xid', xid: 600n }).backup.id).toBe('e');
    expect(() => planRecovery(window, { kind: 'xid', xid: 400n })).toThrow(RestoreTargetError);
  });

  it('chooses for a restore point by where it was found', () => {
    const window = recoveryWindow({ backups: [older, newer], wal, histories: noHistory });
    expect(planRecovery(window, { kind: 'name', name: 'x' }, { lsn: 0x5000000n, backupId: 'b1' }).backup.id).toBe('b1');
    expect(() => planRecovery(window, { kind: 'name', name: 'x' }, { lsn: null })).toThrow(/restore point 'x' was not found/);
  });
});

describe('timelines', () => {
  // Timeline 2 branched off timeline 1 at 0/5000100; timeline 1 went on to segment 9 (the old primary).
  const histories = new Map([[2, parseTimelineHistory('1\t0/5000100\tbefore 2026-11-26 03:03:00+00\n')]]);
  const wal = [...segments(1, 2, 9), ...segments(2, 5, 8, '2026-11-26T03:10:00.000Z')];

  it('reads the switch segment from the child timeline', () => {
    const path = timelinePath(2, histories);
    expect(path).toEqual([
      { timeline: 1, beginLsn: 0n, endLsn: 0x5000100n },
      { timeline: 2, beginLsn: 0x5000100n, endLsn: null },
    ]);
    expect(timelineForSegment(path, 4n)).toBe(1);
    expect(timelineForSegment(path, 5n)).toBe(2);
  });

  it('follows the newest timeline and excludes backups taken on the old one after the switch', () => {
    const before = backup('before', 2, '2026-11-26T02:00:00.000Z');
    const after = backup('after-switch', 7, '2026-11-26T04:00:00.000Z');
    const window = recoveryWindow({ backups: [before, after], wal, histories });
    expect(window.newestTimeline).toBe(2);
    expect(window.reaches.map((reach) => [reach.backup.id, formatLsn(reach.endLsn)])).toEqual([['before', '0/9000000']]);
    expect(window.excluded[0].reason).toMatch(/timeline 1, which the newest timeline 2 did not branch from/);
    expect(planRecovery(window, parseRecoveryTarget({ targetLsn: '0/8000000' })).backup.id).toBe('before');
  });

  it('splits a restore point search by timeline and names the switch segment for the parent', () => {
    const window = recoveryWindow({ backups: [backup('before', 2, '2026-11-26T02:00:00.000Z')], wal, histories });
    const [range] = restorePointSearchRanges(window);
    expect(range.pieces.map((piece) => [piece.timeline, formatLsn(piece.fromLsn), formatLsn(piece.toLsn)])).toEqual([
      [1, '0/2000128', '0/5000100'],
      [2, '0/5000100', '0/9000000'],
    ]);
    expect(range.pieces[0].segments.at(-1)).toEqual({ archived: '000000020000000000000005', localName: '000000010000000000000005' });
  });
});

describe('walContinuity', () => {
  const only = backup('b1', 2, '2026-11-26T02:00:00.000Z');

  it('is ok for a contiguous archive', () => {
    const report = walContinuity([only], segments(1, 2, 9), noHistory);
    expect(report).toEqual({
      ok: true,
      conflicts: [],
      backups: [
        {
          backup: 'b1',
          timelines: [1],
          firstSegment: '000000010000000000000002',
          lastSegment: '000000010000000000000009',
          segments: 8,
          gaps: [],
        },
      ],
    });
  });

  it('reports gaps as ranges and whether they break the window', () => {
    const report = walContinuity([only], segments(1, 2, 9, undefined, [5, 6]), noHistory);
    expect(report.ok).toBe(false);
    expect(report.backups[0].gaps).toEqual([
      { first: '000000010000000000000005', last: '000000010000000000000006', count: 2, breaksWindow: true },
    ]);
  });

  it('does not fail on a gap between start and stop (covered by the base backup)', () => {
    const spanning = backup('b1', 4, '2026-11-26T02:00:00.000Z', { startLsn: '0/2000028' });
    const report = walContinuity([spanning], segments(1, 2, 9, undefined, [3]), noHistory);
    expect(report.backups[0].gaps).toEqual([
      { first: '000000010000000000000003', last: '000000010000000000000003', count: 1, breaksWindow: false },
    ]);
    expect(report.ok).toBe(true);
  });

  it('follows timeline history across a switch', () => {
    const histories = new Map([[2, parseTimelineHistory('1\t0/5000100\tno recovery target specified\n')]]);
    const wal = [...segments(1, 2, 4), ...segments(2, 5, 8)];
    const report = walContinuity([only], wal, histories);
    expect(report.backups[0]).toMatchObject({ timelines: [1, 2], lastSegment: '000000020000000000000008', gaps: [] });
  });

  it('reports conflicting duplicate copies', () => {
    const wal = segments(1, 2, 4);
    wal.push({ ...wal[1], sha256: 'f'.repeat(64) });
    const report = walContinuity([only], wal, noHistory);
    expect(report.ok).toBe(false);
    expect(report.conflicts).toEqual([{ name: '000000010000000000000003', sha256: [wal[1].sha256, 'f'.repeat(64)].sort() }]);
  });
});
