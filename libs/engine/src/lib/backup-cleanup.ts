import { BackupManifest, TierName } from '@rookery/core';
import { BackupRepository, DEFAULT_STALE_AFTER_MS, HeldLock } from '@rookery/repository';
import { WarningListener } from './engine.progress';

/**
 * How long a failed backup's cleanup may take in all. A store that stalled the backup usually
 * stalls its cleanup too, and every request of it would wait the store's full timeouts × attempts
 * (minutes with the defaults): the cleanup gives up instead and says what it left.
 */
export const FAILED_BACKUP_CLEANUP_MS = 30_000;

/**
 * After a backup failed: removes what it wrote (BackupRepository.discard), then releases the
 * tier's lock, within one deadline. A cleanup that fails too is told to `onWarning`, naming what
 * was left and who removes it, and never replaces the backup's own error, which the caller rethrows.
 */
export async function cleanUpFailedBackup(
  repository: BackupRepository,
  failed: { tier: TierName; lock: HeldLock; backup?: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'> },
  options: { onWarning?: WarningListener; deadlineMs?: number } = {},
): Promise<void> {
  const deadlineMs = options.deadlineMs ?? FAILED_BACKUP_CLEANUP_MS;
  const signal = AbortSignal.timeout(deadlineMs);
  const left: string[] = [];
  const remedies: string[] = [];
  let reason: unknown;
  if (failed.backup) {
    try {
      await repository.discard(failed.backup, { signal });
    } catch (error) {
      reason ??= error;
      left.push(`the partial objects of failed backup '${failed.backup.id}' under ${repository.folderOf(failed.backup)}`);
      remedies.push('they have no manifest, so they are never restored, and rookery expire removes them once they are a day old');
    }
  }
  try {
    await failed.lock.release({ signal });
  } catch (error) {
    reason ??= error;
    left.push(`the lock of tier '${failed.tier}'`);
    remedies.push(
      `the next backup takes the lock over once this process has exited (on this host), or when it is ${DEFAULT_STALE_AFTER_MS / 60_000} minutes without a heartbeat`,
    );
  }
  if (left.length === 0) return;
  const why = signal.aborted
    ? `the store did not answer within ${Math.round(deadlineMs / 1000)} s`
    : reason instanceof Error
      ? reason.message
      : String(reason);
  options.onWarning?.(`${left.join(' and ')} could not be removed from ${repository.store.description}: ${why}; ${remedies.join('; ')}`);
}
