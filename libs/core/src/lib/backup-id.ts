import { TierName } from './tier';

/**
 * Backup ids sort by time and name the tier: 20261126T020000Z-oltp. A random suffix is added only
 * when needed to keep two backups of the same second apart.
 */
export function makeBackupId(tier: TierName, at: Date, suffix?: string): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
  return suffix ? `${stamp}-${tier}-${suffix}` : `${stamp}-${tier}`;
}

const BACKUP_ID_PATTERN = /^\d{8}T\d{6}Z-[a-z]+(-[a-z0-9]+)?$/;

export function isBackupId(value: string): boolean {
  return BACKUP_ID_PATTERN.test(value);
}

const BACKUP_ID_PARTS = /^(\d{8}T\d{6}Z)-([a-z]+)(?:-([a-z0-9]+))?$/;

/**
 * Orders backup ids by age, oldest first: by the second in the id, then by the suffix that keeps
 * two backups of one second apart (none first, then 2, 3, … 10 numerically). Plain string order
 * gets both wrong: '…Z-oltp-2/' sorts before '…Z-oltp/' in a key, and 'oltp-10' before 'oltp-9'.
 * Ids that do not follow the pattern compare as strings, after those that do.
 */
export function compareBackupIds(a: string, b: string): number {
  const left = BACKUP_ID_PARTS.exec(a);
  const right = BACKUP_ID_PARTS.exec(b);
  if (!left || !right) return left ? -1 : right ? 1 : compareStrings(a, b);
  return compareStrings(left[1], right[1]) || compareStrings(left[2], right[2]) || compareSuffixes(left[3], right[3]);
}

/** Orders backups by age, oldest first: start time, then id (two backups of one millisecond). */
export function compareBackupsByAge(a: { startedAt: string; id: string }, b: { startedAt: string; id: string }): number {
  return compareStrings(a.startedAt, b.startedAt) || compareBackupIds(a.id, b.id);
}

function compareSuffixes(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined || b === undefined) return a === undefined ? -1 : 1;
  const numeric = /^\d+$/;
  if (numeric.test(a) && numeric.test(b)) return Number(a) - Number(b) || compareStrings(a, b);
  return compareStrings(a, b);
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The repository's date folder for a backup started at `at` (UTC): YYYY-MM-DD. */
export function backupDateFolder(at: Date): string {
  return at.toISOString().slice(0, 10);
}
