import { WalContinuityReport } from '@rookery/core';
import { CHECK, allOk, checksumChecks, failureSummary, walContinuityCheck } from './validation-check';

const backup = '20261126T020000Z-oltp';

function report(
  overrides: Partial<WalContinuityReport['backups'][number]> = {},
  conflicts: WalContinuityReport['conflicts'] = [],
): WalContinuityReport {
  return {
    ok: true,
    conflicts,
    backups: [
      {
        backup,
        timelines: [1],
        firstSegment: '000000010000000000000002',
        lastSegment: '000000010000000000000005',
        segments: 4,
        gaps: [],
        ...overrides,
      },
    ],
  };
}

describe('validation checks', () => {
  it('names the artifact that failed its checksum', () => {
    const checks = checksumChecks({
      backup,
      tier: 'oltp',
      ok: false,
      artifacts: [
        { name: 'base.tar.zst', ok: false, storedBytes: 10, error: { code: 'INTEGRITY', message: "checksum mismatch for 'base.tar.zst'" } },
        { name: 'other.tar.zst', ok: true, storedBytes: 5, entries: 3 },
      ],
    });
    expect(checks).toEqual([
      { name: 'sha256 base.tar.zst', ok: false, detail: "artifact 'base.tar.zst': checksum mismatch for 'base.tar.zst'" },
      { name: 'sha256 other.tar.zst', ok: true, detail: '5 stored bytes, 3 tar entries' },
    ]);
    expect(allOk(checks)).toBe(false);
    expect(failureSummary(checks)).toBe("sha256 base.tar.zst: artifact 'base.tar.zst': checksum mismatch for 'base.tar.zst'");
  });

  it("reports an incremental's chain as a check of its own, and names what was counted in a block incremental", () => {
    const parent = '20261126T010000Z-oltp';
    const link = (id: string, type: 'full' | 'incremental') => ({ id, type, finishedAt: '2026-11-26T02:03:00.000Z', storedBytes: 10 });
    const artifacts = [
      { name: 'base.blkinc.zst', kind: 'base-incremental' as const, ok: true, storedBytes: 7, entries: 1297 },
      { name: 'base.pgidx', kind: 'page-index' as const, ok: true, storedBytes: 3, entries: 1295 },
    ];
    const intact = checksumChecks({
      backup,
      tier: 'oltp',
      ok: true,
      artifacts,
      chain: { ok: true, links: [link(parent, 'full'), link(backup, 'incremental')] },
    });
    expect(intact).toEqual([
      { name: 'sha256 base.blkinc.zst', ok: true, detail: '7 stored bytes, 1297 files in the incremental' },
      { name: 'sha256 base.pgidx', ok: true, detail: '3 stored bytes, 1295 files indexed' },
      { name: CHECK.chain, ok: true, detail: `${parent} → ${backup}` },
    ]);
    const message = `parent backup '${parent}' of incremental backup '${backup}' is not in the repository`;
    const broken = checksumChecks({
      backup,
      tier: 'oltp',
      ok: false,
      artifacts,
      chain: { ok: false, links: [link(backup, 'incremental')], error: { code: 'INCREMENTAL_CHAIN', message } },
    });
    expect(failureSummary(broken)).toBe(`chain: ${message}`);
  });

  it('no checks is not a pass', () => {
    expect(allOk([])).toBe(false);
  });

  it.each([
    ['a continuous archive', report(), true, /000000010000000000000002\.\.000000010000000000000005 on timeline 1, 4 segments/],
    [
      'nothing archived from the backup on',
      report({ lastSegment: null, segments: 0 }),
      false,
      /no WAL archived from 000000010000000000000002 on/,
    ],
    [
      'a gap past the backup’s end',
      report({ gaps: [{ first: '000000010000000000000004', last: '000000010000000000000004', count: 1, breaksWindow: true }] }),
      false,
      /missing 000000010000000000000004$/,
    ],
    [
      'a gap inside the backup (its own WAL covers it)',
      report({ gaps: [{ first: '000000010000000000000002', last: '000000010000000000000002', count: 1, breaksWindow: false }] }),
      true,
      /4 segments/,
    ],
    [
      'a conflicting copy after the start',
      report({}, [{ name: '000000010000000000000003', sha256: ['a', 'b'] }]),
      false,
      /000000010000000000000003 archived with 2 different contents/,
    ],
    ['a conflicting copy before the start', report({}, [{ name: '000000010000000000000001', sha256: ['a', 'b'] }]), true, /4 segments/],
  ])('WAL continuity: %s', (_case, continuity, ok, detail) => {
    const check = walContinuityCheck(backup, continuity);
    expect(check).toMatchObject({ name: CHECK.walContinuity, ok });
    expect(check.detail).toMatch(detail);
  });

  it('a backup the report does not follow fails WAL continuity', () => {
    expect(walContinuityCheck('other', report())).toMatchObject({ ok: false, detail: expect.stringContaining("'other'") });
  });
});
