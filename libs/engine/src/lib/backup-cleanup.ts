import { BackupManifest } from '@rookery/core';
import { BackupRepository } from '@rookery/repository';
import { WarningListener } from './engine.progress';

/**
 * After a backup failed, while it still holds the tier's lock: removes what it wrote
 * (BackupRepository.discard). A cleanup that fails too is told to `onWarning` and never replaces
 * the backup's own error, which the caller rethrows.
 */
export async function discardFailedBackup(
  repository: BackupRepository,
  backup: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>,
  onWarning?: WarningListener,
): Promise<void> {
  try {
    await repository.discard(backup);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    onWarning?.(
      `cannot remove what failed backup '${backup.id}' wrote to ${repository.store.description}: ${reason} ` +
        '(it has no manifest, so it is never restored; remove its folder when the store is reachable)',
    );
  }
}
