import { InvariantError, TierName, makeBackupId } from '@rookery/core';
import { BackupRepository } from '@rookery/repository';

/**
 * The id of a new backup: the caller's own when given (it must be free), else one named after the
 * start time, with a counter when that name is taken. A folder that holds anything (even garbage
 * of a crashed run) is taken, in any date folder of the tier, so a new backup never overwrites
 * stored objects and an id names one backup.
 */
export async function allocateBackupId(repository: BackupRepository, tier: TierName, startedAt: Date, requested?: string): Promise<string> {
  const inUse = await repository.backupIdsInUse(tier);
  if (requested) {
    if (inUse.has(requested)) {
      throw new InvariantError(`backup id '${requested}' of tier '${tier}' is already used in the repository`);
    }
    return requested;
  }
  for (let attempt = 1; ; attempt++) {
    const id = makeBackupId(tier, startedAt, attempt === 1 ? undefined : String(attempt));
    if (!inUse.has(id)) return id;
  }
}
