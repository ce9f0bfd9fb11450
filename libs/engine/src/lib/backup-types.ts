import { BackupType, ConfigError, TierName, TierPolicy } from '@rookery/core';

const BACKUP_TYPES: readonly BackupType[] = ['full', 'incremental', 'snapshot'];

/**
 * The backup types a tier takes, the one rule the CLI, the services and the engine apply: a full
 * always; a logical tier with a second schedule (policy.incrementalSchedule a cron, not
 * 'continuous', which is WAL) also takes snapshots when it keeps them (snapshotRetentionDays: OLAP
 * weekly) and incrementals when it tracks changes (logical.incremental: content every 4 h). A
 * physical tier takes block-level incrementals when its policy has physical.incremental (OLTP
 * hourly); otherwise its only backup is the full base backup and WAL covers the rest.
 */
export function backupTypesOf(policy: TierPolicy): BackupType[] {
  if (policy.method === 'physical') return policy.physical?.incremental ? ['full', 'incremental'] : ['full'];
  if (policy.incrementalSchedule === 'continuous') return ['full'];
  return [
    'full',
    ...(policy.snapshotRetentionDays ? (['snapshot'] as const) : []),
    ...(policy.logical?.incremental ? (['incremental'] as const) : []),
  ];
}

/**
 * The backup type a tier's second schedule (policy.incrementalSchedule) takes, or null when it has
 * none: the tier's snapshots when it keeps them, else its incrementals.
 */
export function scheduledBackupType(policy: TierPolicy): Exclude<BackupType, 'full'> | null {
  // A physical tier with incrementals but a 'continuous' schedule takes them on request only.
  if (policy.incrementalSchedule === 'continuous') return null;
  const types = backupTypesOf(policy);
  if (types.includes('snapshot')) return 'snapshot';
  return types.includes('incremental') ? 'incremental' : null;
}

/**
 * The `type` of a backup request (`--type`, POST /backups body), checked against the tier's policy
 * before anything is recorded; absent means full. A type the tier does not take is a
 * CONFIG_INVALID (exit 2, HTTP 400) naming what it takes.
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
