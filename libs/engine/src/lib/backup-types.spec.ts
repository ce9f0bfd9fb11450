import { DEFAULT_POLICIES, TierName } from '@rookery/core';
import { backupTypesOf, requestedBackupType, scheduledBackupType } from './backup-types';

describe('backup types of a tier', () => {
  it.each<[TierName, string | null]>([
    ['oltp', 'incremental'],
    ['queue', null],
    ['content', 'incremental'],
    ['olap', 'snapshot'],
  ])('%s: its second schedule takes %s', (tier, type) => {
    expect(scheduledBackupType(DEFAULT_POLICIES[tier])).toBe(type);
  });

  it('schedules nothing for a physical tier without block incrementals, even when its incrementalSchedule is a cron', () => {
    const fullsOnly = { ...DEFAULT_POLICIES.oltp, incrementalSchedule: '0 */4 * * *', physical: undefined };
    expect(scheduledBackupType(fullsOnly)).toBeNull();
    expect(backupTypesOf(fullsOnly)).toEqual(['full']);
  });

  it("takes a physical tier's block incrementals on request only when its incrementalSchedule is 'continuous'", () => {
    const onRequest = { ...DEFAULT_POLICIES.oltp, incrementalSchedule: 'continuous' };
    expect(scheduledBackupType(onRequest)).toBeNull();
    expect(backupTypesOf(onRequest)).toEqual(['full', 'incremental']);
  });

  it("schedules nothing for a logical tier whose incrementalSchedule is 'continuous'", () => {
    expect(scheduledBackupType({ ...DEFAULT_POLICIES.content, incrementalSchedule: 'continuous' })).toBeNull();
    expect(backupTypesOf({ ...DEFAULT_POLICIES.content, incrementalSchedule: 'continuous' })).toEqual(['full']);
  });

  it.each<[TierName, unknown, string]>([
    ['oltp', undefined, 'full'],
    ['oltp', null, 'full'],
    ['oltp', 'incremental', 'incremental'],
    ['content', 'full', 'full'],
    ['content', 'incremental', 'incremental'],
    ['olap', 'snapshot', 'snapshot'],
  ])('%s accepts a request for %s as %s', (tier, value, type) => {
    expect(requestedBackupType(tier, DEFAULT_POLICIES[tier], value)).toBe(type);
  });

  it.each<[TierName, unknown, string]>([
    ['queue', 'incremental', "tier 'queue' takes 'full'"],
    ['oltp', 'snapshot', "tier 'oltp' takes 'full' or 'incremental'"],
    ['content', 'snapshot', "tier 'content' takes 'full' or 'incremental'"],
    ['olap', 'incremental', "tier 'olap' takes 'full' or 'snapshot'"],
    ['olap', 'weekly', "tier 'olap' takes 'full' or 'snapshot'"],
    ['olap', 7, "tier 'olap' takes 'full' or 'snapshot'"],
  ])('%s refuses %s with CONFIG_INVALID and a hint naming what it takes', (tier, value, hint) => {
    expect(() => requestedBackupType(tier, DEFAULT_POLICIES[tier], value)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: `backup type '${String(value)}' is not available for tier '${tier}'`,
        hint,
      }),
    );
  });
});
