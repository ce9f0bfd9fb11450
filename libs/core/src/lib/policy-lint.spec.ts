import { lintPolicy, longestScheduleGapSeconds } from './policy-lint';
import { DEFAULT_POLICIES } from './tier';

describe('longestScheduleGapSeconds', () => {
  it('finds the longest gap between fires of several schedules', () => {
    expect(longestScheduleGapSeconds(['0 */4 * * *'])).toBe(4 * 3600);
    expect(longestScheduleGapSeconds(['0 2 * * *'])).toBe(86_400);
    // Daily at 03:00 plus every 4 hours from midnight: 00,03,04,08,… → the 4 h gaps remain.
    expect(longestScheduleGapSeconds(['0 3 * * *', '0 */4 * * *'])).toBe(4 * 3600);
    expect(longestScheduleGapSeconds(['0 5 * * 0'])).toBe(7 * 86_400);
    expect(longestScheduleGapSeconds(['continuous'])).toBeNull();
  });
});

describe('lintPolicy', () => {
  it("reports the seed's content tier: a 4-hour incremental cannot meet a 1-hour RPO", () => {
    expect(lintPolicy(DEFAULT_POLICIES.content)).toEqual([
      {
        tier: 'content',
        severity: 'error',
        rule: 'rpo-schedule',
        message: 'the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h',
      },
    ]);
  });

  it("judges a physical tier's RPO by its continuous WAL archive, not its hourly incrementals; accepts archive_timeout within it", () => {
    const hourlyIncrementals = { ...DEFAULT_POLICIES.oltp, incrementalSchedule: '0 * * * *' };
    expect(lintPolicy(hourlyIncrementals, { archiveTimeoutSeconds: 60 })).toEqual([]);
    // A logical tier has no WAL: its schedule is its RPO.
    expect(lintPolicy({ ...DEFAULT_POLICIES.content, rpoSeconds: 15 * 60 }).map((finding) => finding.message)).toContain(
      'the schedule leaves up to 4 h between recovery points, more than the RPO of 15 min',
    );
    expect(lintPolicy(DEFAULT_POLICIES.oltp, { archiveTimeoutSeconds: 60 })).toEqual([]);
    expect(lintPolicy(DEFAULT_POLICIES.oltp, { archiveTimeoutSeconds: 0 })[0]).toMatchObject({
      severity: 'error',
      rule: 'rpo-archive-timeout',
    });
    expect(lintPolicy(DEFAULT_POLICIES.oltp)[0]).toMatchObject({ severity: 'info', rule: 'rpo-archive-timeout' });
  });

  it('requires synchronous streaming for an RPO of 0', () => {
    expect(lintPolicy(DEFAULT_POLICIES.queue, { synchronousStreaming: true })).toEqual([]);
    expect(lintPolicy(DEFAULT_POLICIES.queue, { synchronousStreaming: false })[0]).toMatchObject({
      severity: 'error',
      rule: 'rpo-zero-needs-streaming',
    });
    expect(lintPolicy({ ...DEFAULT_POLICIES.content, rpoSeconds: 0 })[0]).toMatchObject({
      severity: 'error',
      rule: 'rpo-zero-needs-streaming',
    });
  });

  it('accepts the OLAP tier and flags retention shorter than the full-backup interval', () => {
    expect(lintPolicy(DEFAULT_POLICIES.olap)).toEqual([]);
    const weeklyFullKeptThreeDays = { ...DEFAULT_POLICIES.olap, fullSchedule: '0 4 * * 0', retentionDays: 3, rpoSeconds: 8 * 86_400 };
    expect(lintPolicy(weeklyFullKeptThreeDays)).toEqual([
      expect.objectContaining({
        rule: 'retention-shorter-than-schedule',
        message: expect.stringContaining('retention of 3 d is shorter than the 7 d'),
      }),
    ]);
  });

  it('reports a schedule it cannot read instead of throwing', () => {
    expect(lintPolicy({ ...DEFAULT_POLICIES.olap, fullSchedule: '99 99 * * *' })[0]).toMatchObject({
      severity: 'error',
      rule: 'schedule-invalid',
    });
  });
});
