import { InvariantError, TierName, makeBackupId } from '@rookery/core';
import { BackupRepository } from '@rookery/repository';

/**
 * The id of a new backup, the one place ids are minted: the caller's own when given (it must be
 * free), else one named after the start time, with a counter when that name is taken. A folder
 * that holds anything (even garbage of a crashed run) is taken, in any date folder of the tier, so
 * a new backup never overwrites stored objects and an id names one backup; so is an id in
 * `namedHere` (named in this process for a run that may not have written anything yet), and the
 * new id is added to it before this returns, so two runs named at once never get the same id.
 * A backup checks its id again once it holds the tier lock (`requested`, nothing named here).
 */
export async function allocateBackupId(
  repository: Pick<BackupRepository, 'backupIdsInUse'>,
  tier: TierName,
  startedAt: Date,
  requested?: string,
  namedHere: Set<string> = new Set(),
): Promise<string> {
  const stored = await repository.backupIdsInUse(tier);
  const inUse = new Set([...stored, ...namedHere]);
  if (requested) {
    if (inUse.has(requested)) {
      throw new InvariantError(`backup id '${requested}' of tier '${tier}' is already used in the repository`);
    }
    namedHere.add(requested);
    return requested;
  }
  for (let attempt = 1; ; attempt++) {
    const id = makeBackupId(tier, startedAt, attempt === 1 ? undefined : String(attempt));
    if (inUse.has(id)) continue;
    namedHere.add(id);
    return id;
  }
}
