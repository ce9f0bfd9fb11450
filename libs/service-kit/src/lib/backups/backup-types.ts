import { BackupType, ConfigError, TierName, TierPolicy } from '@rookery/core';

const BACKUP_TYPES: readonly BackupType[] = ['full', 'incremental', 'snapshot'];

/**
 * The backup type a tier's second schedule (policy.incrementalSchedule) takes, or null when it has
 * none a service runs: 'continuous' is WAL (archived or streamed, not a scheduled backup), and a
 * physical tier's only scheduled backup is the full base backup. A logical tier that keeps
 * snapshots (snapshotRetentionDays: OLAP weekly) takes snapshots, any other an incremental.
 */
export function scheduledBackupType(policy: TierPolicy): Exclude<BackupType, 'full'> | null {
  if (policy.method !== 'logical' || policy.incrementalSchedule === 'continuous') return null;
  return policy.snapshotRetentionDays ? 'snapshot' : 'incremental';
}

/** The types a service runs for a tier: full, plus the type of its second schedule. */
export function backupTypesOf(policy: TierPolicy): BackupType[] {
  const scheduled = scheduledBackupType(policy);
  return scheduled ? ['full', scheduled] : ['full'];
}

/**
 * The `type` of a backup request (POST /backups body), checked against the tier's policy before
 * anything is recorded; absent means full. A type the tier does not take is a CONFIG_INVALID (400).
 */
export function requestedBackupType(tier: TierName, policy: TierPolicy, value: unknown): BackupType {
  if (value === undefined || value === null) return 'full';
  const allowed = backupTypesOf(policy);
  if (typeof value === 'string' && (BACKUP_TYPES as readonly string[]).includes(value) && allowed.includes(value as BackupType)) {
    return value as BackupType;
  }
  throw new ConfigError(`backup type '${String(value)}' is not available for tier '${tier}'`, ['type'], {
    hint: `tier '${tier}' takes ${allowed.map((type) => `'${type}'`).join(' or ')}`,
  });
}
