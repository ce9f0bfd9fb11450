import { BackupRepository, repositoryLayout } from '@rookery/repository';
import { allocateBackupId } from './backup-ids';

function repositoryWith(keys: string[]): BackupRepository {
  const ids = new Set(keys.map((key) => repositoryLayout.backupIdOf(key)).filter((id): id is string => id !== null));
  return { backupIdsInUse: async () => ids } as unknown as BackupRepository;
}

describe('allocateBackupId', () => {
  const at = new Date('2026-11-27T00:00:05.000Z');

  it('names a backup after its start time and counts up while the name is taken', async () => {
    expect(await allocateBackupId(repositoryWith([]), 'oltp', at)).toBe('20261127T000005Z-oltp');
    const taken = repositoryWith([
      'oltp/backups/2026-11-27/20261127T000005Z-oltp/manifest.json',
      'oltp/backups/2026-11-27/20261127T000005Z-oltp-2/base.tar.zst',
    ]);
    expect(await allocateBackupId(taken, 'oltp', at)).toBe('20261127T000005Z-oltp-3');
  });

  it("refuses a caller's id stored under another day's folder", async () => {
    const repository = repositoryWith(['oltp/backups/2026-11-26/20261126T020000Z-oltp/manifest.json']);
    await expect(allocateBackupId(repository, 'oltp', at, '20261126T020000Z-oltp')).rejects.toThrow(
      "backup id '20261126T020000Z-oltp' of tier 'oltp' is already used in the repository",
    );
    expect(await allocateBackupId(repository, 'oltp', at, 'before-upgrade')).toBe('before-upgrade');
  });

  it('reads the id of any key in a backup folder and nothing else', () => {
    expect(repositoryLayout.backupIdOf('oltp/backups/2026-11-26/x-1/copies/eu.json')).toBe('x-1');
    expect(repositoryLayout.backupIdOf('oltp/wal/00000001/000000010000000000000001.zst')).toBeNull();
    expect(repositoryLayout.backupIdOf('oltp/backups/2026-11-26/loose-file')).toBeNull();
  });
});
