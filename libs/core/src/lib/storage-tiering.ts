import { ObjectInfo } from './store.port';
import { StorageClass } from './tier';

/**
 * Storage classes and archive restores (DESIGN §2: STANDARD_IA, GLACIER, …): which classes are
 * archives that must be restored before a read, how cold each class is, and when a policy moves an
 * object to a colder one. Pure decisions; the drivers do the S3 calls.
 */

/** Classes whose objects cannot be read until restored (GLACIER_IR can: instant retrieval). */
export const ARCHIVE_STORAGE_CLASSES: readonly string[] = ['GLACIER', 'DEEP_ARCHIVE'];

/** Warmest first: a transition only ever moves an object to the right. */
const COLDNESS: Readonly<Record<StorageClass, number>> = {
  STANDARD: 0,
  STANDARD_IA: 1,
  GLACIER_IR: 2,
  GLACIER: 3,
  DEEP_ARCHIVE: 4,
};

/** A policy step: objects older than `afterDays` belong in `storageClass`. */
export interface StorageClassTransition {
  afterDays: number;
  storageClass: StorageClass;
}

export function isArchiveStorageClass(storageClass: string | undefined): boolean {
  return storageClass !== undefined && ARCHIVE_STORAGE_CLASSES.includes(storageClass);
}

/** How cold a class is (unknown classes, e.g. a server's own names, count as STANDARD). */
export function storageClassColdness(storageClass: string | undefined): number {
  return COLDNESS[storageClass as StorageClass] ?? 0;
}

/**
 * The class an object of this age should move to under the policy's transitions, or null when it
 * is already there or colder: transitions never warm an object up (that is a restore's job, and
 * moving out of an archive early costs a minimum-duration charge).
 */
export function transitionTarget(
  current: string | undefined,
  ageDays: number,
  transitions: readonly StorageClassTransition[],
): StorageClass | null {
  const due = transitions.filter((step) => ageDays >= step.afterDays);
  if (due.length === 0) return null;
  const coldest = due.reduce((a, b) => (storageClassColdness(b.storageClass) > storageClassColdness(a.storageClass) ? b : a));
  return storageClassColdness(coldest.storageClass) > storageClassColdness(current) ? coldest.storageClass : null;
}

/**
 * Where an object stands for a read:
 * - readable: not archived, or a restored copy is available, or the server serves archives directly;
 * - restoring: a restore was requested and is still running;
 * - needs-restore: archived, no restore asked for yet.
 * `readableProbe` is the result of trying to read a byte (some S3-compatible servers serve
 * archived objects at once and implement no restore flow): it wins over the class.
 */
export type ArchiveAccess = 'readable' | 'restoring' | 'needs-restore';

export function archiveAccess(info: Pick<ObjectInfo, 'storageClass' | 'restore'>, readableProbe: boolean): ArchiveAccess {
  if (!isArchiveStorageClass(info.storageClass)) return 'readable';
  if (info.restore && !info.restore.ongoing) return 'readable';
  if (readableProbe) return 'readable';
  return info.restore?.ongoing ? 'restoring' : 'needs-restore';
}

/** AWS's published typical restore times, for the message that tells an operator how long to wait. */
export function typicalRestoreTime(storageClass: string | undefined, tier: 'Expedited' | 'Standard' | 'Bulk'): string {
  if (storageClass === 'DEEP_ARCHIVE') return tier === 'Bulk' ? 'within 48 hours' : 'within 12 hours';
  return { Expedited: '1–5 minutes', Standard: '3–5 hours', Bulk: '5–12 hours' }[tier];
}
