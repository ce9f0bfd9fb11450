import { MANIFEST_FILE_NAME, TierName, backupDateFolder } from '@rookery/core';

/**
 * Where things live in a store (DESIGN §4). Keys are relative to the store's root, so the same
 * layout holds in a directory and under a bucket prefix, and an operator can browse it by date:
 *
 *   <tier>/backups/<YYYY-MM-DD>/<backupId>/manifest.json
 *   <tier>/backups/<YYYY-MM-DD>/<backupId>/<artifact>
 *   <tier>/wal/<timeline>/<segment>[.partial].<ext>
 *   <tier>/locks/backup.lock
 *   <tier>/holds/<backupId>.json      legal holds (rookery hold): expire never deletes a held backup
 */
/** A key under a backup's folder: the folder ('oltp/backups/2026-11-26/<id>/') and the id. */
const BACKUP_FOLDER = /^([a-z]+\/backups\/\d{4}-\d{2}-\d{2}\/([^/]+)\/)/;

export const repositoryLayout = {
  backupsPrefix(tier: TierName): string {
    return `${tier}/backups/`;
  },
  backupFolder(tier: TierName, backupId: string, startedAt: Date): string {
    return `${tier}/backups/${backupDateFolder(startedAt)}/${backupId}/`;
  },
  manifestKey(tier: TierName, backupId: string, startedAt: Date): string {
    return `${repositoryLayout.backupFolder(tier, backupId, startedAt)}${MANIFEST_FILE_NAME}`;
  },
  artifactKey(tier: TierName, backupId: string, startedAt: Date, artifact: string): string {
    return `${repositoryLayout.backupFolder(tier, backupId, startedAt)}${artifact}`;
  },
  lockKey(tier: TierName, purpose = 'backup'): string {
    return `${tier}/locks/${purpose}.lock`;
  },
  holdsPrefix(tier: TierName): string {
    return `${tier}/holds/`;
  },
  holdKey(tier: TierName, backupId: string): string {
    return `${tier}/holds/${backupId}.json`;
  },
  /** The backup folder a key under backups/ belongs to ('oltp/backups/2026-11-26/<id>/'), or null. */
  backupFolderOf(key: string): string | null {
    return BACKUP_FOLDER.exec(key)?.[1] ?? null;
  },
  /** The backup id a key under backups/ belongs to ('<id>' of 'oltp/backups/2026-11-26/<id>/…'), or null. */
  backupIdOf(key: string): string | null {
    return BACKUP_FOLDER.exec(key)?.[2] ?? null;
  },
  isManifestKey(key: string): boolean {
    return /^[a-z]+\/backups\/\d{4}-\d{2}-\d{2}\/[^/]+\/manifest\.json$/.test(key);
  },
};
