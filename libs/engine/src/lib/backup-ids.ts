import { InvariantError, TierName, makeBackupId } from '@rookery/core';
import { BackupRepository } from '@rookery/repository';

/**
 * The id of a new backup: the caller's own when given (it must be free), else one named after the
 * start time, with a counter when that name is taken. A folder that holds anything (even garbage
 * of a crashed run) is taken, so a new backup never overwrites stored objects.
 */
export async function allocateBackupId(
  repository: BackupRepository,
  tier: TierName,
  startedAt: Date,
  requested?: string,
): Promise<string> {
  if (requested) {
    if (await repository.isBackupIdTaken(tier, requested, startedAt)) {
      throw new InvariantError(`backup id '${requested}' of tier '${tier}' is already used in the repository`);
    }
    return requested;
  }
  for (let attempt = 1; ; attempt++) {
    const id = makeBackupId(tier, startedAt, attempt === 1 ? undefined : String(attempt));
    if (!(await repository.isBackupIdTaken(tier, id, startedAt))) return id;
  }
}
