import { TierPolicy } from './tier';

/**
 * The policy lint (DESIGN §2, §9): a tier policy whose schedule cannot meet its objectives is
 * reported, never silently accepted. Pure: it reads the policy and, where known, facts about the
 * server (archive_timeout, whether synchronous streaming is configured).
 */
export type FindingSeverity = 'error' | 'warning' | 'info';

export const POLICY_LINT_RULES = [
  'rpo-schedule',
  'rpo-archive-timeout',
  'rpo-zero-needs-streaming',
  'retention-shorter-than-schedule',
  'schedule-invalid',
] as const;

export interface PolicyFinding {
  tier: string;
  severity: FindingSeverity;
  rule: (typeof POLICY_LINT_RULES)[number];
  message: string;
}

export interface PolicyFacts {
  /** The server's archive_timeout in seconds (0 = off), when known. */
  archiveTimeoutSeconds?: number;
  /** A synchronous WAL stream (queue-wal with pg_receivewal --synchronous) is configured for the tier. */
  synchronousStreaming?: boolean;
}

/**
 * How far ahead fires are looked at to find a schedule's longest gap: a schedule that restricts
 * neither the day of the month nor the month repeats every week, so two weeks and a day show every gap;
 * others are looked at over two months. At most MAX_FIRES fires per schedule (a periodic
 * schedule's gaps all show long before).
 */
const WEEKLY_SCAN_DAYS = 15;
const MONTHLY_SCAN_DAYS = 62;
const MAX_FIRES = 5_000;

/**
 * The longest time between two consecutive fires of any of the schedules (seconds), from `from`.
 * 'continuous' schedules are left out (their gap is the archive timeout); null when none is left.
 */
export function longestScheduleGapSeconds(schedules: readonly string[], from = new Date('2026-01-05T00:00:00Z')): number | null {
  const cronSchedules = schedules.filter((schedule) => schedule !== 'continuous');
  if (cronSchedules.length === 0) return null;
  const fires: number[] = [];
  for (const schedule of cronSchedules) {
    const fields = schedule.trim().split(/\s+/);
    const [dayOfMonth, month] = fields.length === 6 ? fields.slice(3, 5) : fields.slice(2, 4);
    const days = dayOfMonth === '*' && month === '*' ? WEEKLY_SCAN_DAYS : MONTHLY_SCAN_DAYS;
    const end = from.getTime() + days * 86_400_000;
    // Loaded on first use: the policy lint runs in reports and services, not in every CLI start.
    const { CronExpressionParser } = require('cron-parser') as typeof import('cron-parser');
    const expression = CronExpressionParser.parse(schedule, { currentDate: from, tz: 'UTC' });
    for (let count = 0; count < MAX_FIRES; count++) {
      const next = expression.next().getTime();
      if (next > end) break;
      fires.push(next);
    }
  }
  const sorted = [...new Set(fires)].sort((a, b) => a - b);
  if (sorted.length < 2) return MONTHLY_SCAN_DAYS * 86_400;
  let longest = 0;
  for (let index = 1; index < sorted.length; index++) longest = Math.max(longest, sorted[index] - sorted[index - 1]);
  return longest / 1000;
}

export function lintPolicy(policy: TierPolicy, facts: PolicyFacts = {}): PolicyFinding[] {
  const findings: PolicyFinding[] = [];
  const add = (severity: FindingSeverity, rule: PolicyFinding['rule'], message: string) =>
    findings.push({ tier: policy.tier, severity, rule, message });

  let gap: number | null;
  try {
    gap = longestScheduleGapSeconds([policy.fullSchedule, policy.incrementalSchedule]);
  } catch (error) {
    add('error', 'schedule-invalid', `schedule cannot be read: ${(error as Error).message}`);
    return findings;
  }
  // A physical tier archives WAL continuously whatever its schedules (block incrementals only
  // shorten the replay), so its RPO is the archive's.
  const continuous = policy.method === 'physical' || policy.incrementalSchedule === 'continuous' || policy.fullSchedule === 'continuous';

  if (policy.rpoSeconds === 0) {
    if (!continuous || facts.synchronousStreaming === false) {
      add(
        'error',
        'rpo-zero-needs-streaming',
        'an RPO of 0 needs synchronous WAL streaming (queue-wal with pg_receivewal --synchronous); archiving or scheduled backups always lose the last commits',
      );
    } else if (facts.synchronousStreaming === undefined) {
      add(
        'info',
        'rpo-zero-needs-streaming',
        'an RPO of 0 holds only while the synchronous WAL stream is configured and the primary waits for it',
      );
    }
  } else if (continuous) {
    if (facts.archiveTimeoutSeconds === undefined) {
      add(
        'info',
        'rpo-archive-timeout',
        `continuous WAL archiving meets an RPO of ${duration(policy.rpoSeconds)} only with archive_timeout at most that (a quiet server otherwise holds a partly filled segment indefinitely)`,
      );
    } else if (facts.archiveTimeoutSeconds === 0 || facts.archiveTimeoutSeconds > policy.rpoSeconds) {
      const timeout = facts.archiveTimeoutSeconds === 0 ? 'off' : duration(facts.archiveTimeoutSeconds);
      add(
        'error',
        'rpo-archive-timeout',
        `archive_timeout is ${timeout}: WAL can wait longer than the RPO of ${duration(policy.rpoSeconds)} before it is archived`,
      );
    }
  } else if (gap !== null && gap > policy.rpoSeconds) {
    add(
      'error',
      'rpo-schedule',
      `the schedule leaves up to ${duration(gap)} between recovery points, more than the RPO of ${duration(policy.rpoSeconds)}`,
    );
  }

  const fullGap = longestScheduleGapSeconds([policy.fullSchedule]);
  if (fullGap !== null && policy.retentionDays * 86_400 < fullGap) {
    add(
      'error',
      'retention-shorter-than-schedule',
      `retention of ${policy.retentionDays} d is shorter than the ${duration(fullGap)} between full backups: at times no full backup is kept`,
    );
  }
  return findings;
}

function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3_600 === 0) return `${seconds / 3_600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}
