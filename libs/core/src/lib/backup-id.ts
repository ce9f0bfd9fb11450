import { TierName } from './tier';

/**
 * Backup ids sort by time and name the tier: 20261126T020000Z-oltp. A random suffix is added only
 * when needed to keep two backups of the same second apart.
 */
export function makeBackupId(tier: TierName, at: Date, suffix?: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  return suffix ? `${stamp}-${tier}-${suffix}` : `${stamp}-${tier}`;
}

const BACKUP_ID_PATTERN = /^\d{8}T\d{6}Z-[a-z]+(-[a-z0-9]+)?$/;

export function isBackupId(value: string): boolean {
  return BACKUP_ID_PATTERN.test(value);
}

/** The repository's date folder for a backup started at `at` (UTC): YYYY-MM-DD. */
export function backupDateFolder(at: Date): string {
  return at.toISOString().slice(0, 10);
}
