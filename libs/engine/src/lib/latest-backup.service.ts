import {
  BackupManifest,
  IntegrityError,
  RecoveryTarget,
  RestoreTargetError,
  StorageNotFoundError,
  TierName,
  ToolFailedError,
  compareBackupIds,
  isRookeryError,
} from '@rookery/core';
import { repositoryLayout } from '@rookery/repository';
import { BackupVerifyService } from './backup-verify.service';
import { EngineContext } from './engine.context';
import { RecoveryPlanService } from './recovery-plan.service';

/** At most this many older backups are verified (a full re-read each) to name one that verifies. */
export const LATEST_CANDIDATES_VERIFIED = 3;

/** What a restore of `latest` asks for: the tier, the kind of restore, and a recovery target (physical). */
export interface LatestRestoreRequest {
  tier: TierName;
  method: 'physical' | 'logical';
  target?: RecoveryTarget;
}

/**
 * `restore --backup latest` restores the newest backup or fails: never an older one in silence.
 * "Verifies" means, before anything is written, that no damaged manifest is newer than the chosen
 * backup (its checksum fails, so the repository lists it as damaged, not as a backup) and that
 * every artifact of the chosen backup and its parents is in the store with the size the manifest
 * records (a stat each); and, while the restore streams, that every byte matches the manifest's
 * sha256 (readArtifact). A failure of either kind names, in its hint, the newest older backup that
 * passes a full `verify` (every artifact re-read and checked), looking at no more than
 * LATEST_CANDIDATES_VERIFIED of them: the operator decides whether to restore it.
 */
export class LatestBackupService {
  constructor(
    private readonly context: EngineContext,
    private readonly verifier: BackupVerifyService,
    private readonly planner: RecoveryPlanService,
  ) {}

  /** Before anything is written: throws when the newest backup fails the cheap checks. `chain`: the chosen backup, then its parents. */
  async preflight(request: LatestRestoreRequest, chain: readonly BackupManifest[]): Promise<void> {
    const [chosen] = chain;
    const damaged = request.target === undefined || request.target.kind === 'latest' ? await this.newerDamagedManifest(chosen) : null;
    if (damaged) {
      // The damaged one was the newest: the chosen backup itself may well be the one to restore.
      throw await this.unverified(request, damaged.id, damaged.problem, null, (backup) => backup.startedAt <= chosen.startedAt);
    }
    for (const backup of chain) {
      const problem = await this.missingArtifact(backup);
      if (problem) throw await this.unverified(request, chosen.id, problem, null, (candidate) => candidate.startedAt < chosen.startedAt);
    }
  }

  /**
   * The error a failed restore of `chosen` ends with: when the backup's bytes are to blame (a
   * checksum, size or decoding failure, a missing object, or a tool that failed on bytes that do
   * not verify), an IntegrityError naming the newest older backup that verifies; else `error`.
   */
  async explain(request: LatestRestoreRequest, chosen: BackupManifest, error: unknown): Promise<unknown> {
    if (!(await this.blamesBackup(chosen, error))) return error;
    const reason = error instanceof Error ? error.message : String(error);
    return this.unverified(request, chosen.id, reason, error, (candidate) => candidate.startedAt < chosen.startedAt);
  }

  private async blamesBackup(chosen: BackupManifest, error: unknown): Promise<boolean> {
    if (error instanceof IntegrityError || error instanceof StorageNotFoundError) return true;
    // tar or pg_restore failing on damaged bytes may be what surfaced first: the backup decides.
    if (error instanceof ToolFailedError) return !(await this.verifies(chosen));
    return false;
  }

  /** A manifest newer than `chosen` that the repository could not trust, with its id (ids order by age: compareBackupIds). */
  private async newerDamagedManifest(chosen: BackupManifest): Promise<{ id: string; problem: string } | null> {
    const { damaged } = await this.context.repository.list(chosen.tier);
    const newer = damaged
      .map((entry) => ({ id: repositoryLayout.backupIdOf(entry.key) ?? entry.key, problem: entry.problem }))
      .filter((entry) => compareBackupIds(entry.id, chosen.id) > 0)
      .sort((a, b) => compareBackupIds(a.id, b.id));
    return newer.at(-1) ?? null;
  }

  /** Why an artifact of `backup` cannot be restored as recorded (absent, or another size), or null. */
  private async missingArtifact(backup: BackupManifest): Promise<string | null> {
    const { repository } = this.context;
    for (const artifact of backup.artifacts) {
      const key = repository.artifactKey(backup, artifact.name);
      const info = await repository.store.stat(key);
      if (!info) return `artifact '${artifact.name}' of backup '${backup.id}' is missing from the store (${key})`;
      if (info.size !== artifact.storedBytes) {
        return `artifact '${artifact.name}' of backup '${backup.id}' has ${info.size} bytes in the store, the manifest records ${artifact.storedBytes}`;
      }
    }
    return null;
  }

  private async unverified(
    request: LatestRestoreRequest,
    failedId: string,
    reason: string,
    cause: unknown,
    olderThanFailed: (backup: BackupManifest) => boolean,
  ): Promise<IntegrityError> {
    const { good, checked } = await this.newestVerifying(request, failedId, olderThanFailed);
    const hint = good
      ? `the newest backup that verifies is '${good}': restore it with rookery restore --tier ${request.tier} --backup ${good}, or repair the newest one`
      : checked === 0
        ? `no older backup of tier '${request.tier}' can take its place; repair it, or take a new backup`
        : `none of the ${checked} next newest backups verifies either; list them with rookery info --tier ${request.tier} and check one with rookery verify --tier ${request.tier} --backup ID`;
    const summary = isRookeryError(cause) && cause.hint ? `${reason} (${cause.hint})` : reason;
    return new IntegrityError(`newest backup '${failedId}' of tier '${request.tier}' fails verification: ${summary}`, {
      hint,
      cause,
    });
  }

  /** The id of the newest backup before the failed one that can serve the request and verifies (null: none), and how many were checked. */
  private async newestVerifying(
    request: LatestRestoreRequest,
    failedId: string,
    olderThanFailed: (backup: BackupManifest) => boolean,
  ): Promise<{ good: string | null; checked: number }> {
    const { backups } = await this.context.repository.list(request.tier);
    const candidates = backups
      .filter((backup) => backup.id !== failedId && backup.method === request.method && olderThanFailed(backup))
      .reverse();
    let verified = 0;
    for (const candidate of candidates) {
      if (verified === LATEST_CANDIDATES_VERIFIED) break;
      if (!(await this.reaches(request, candidate))) continue;
      verified++;
      const chain = chainOf(candidate, backups);
      if (chain && (await everyAsync(chain, (backup) => this.verifies(backup)))) return { good: candidate.id, checked: verified };
    }
    return { good: null, checked: verified };
  }

  /** Whether the request's recovery target can be reached from `backup` (always, without one). */
  private async reaches(request: LatestRestoreRequest, backup: BackupManifest): Promise<boolean> {
    if (!request.target) return true;
    try {
      await this.planner.plan(request.tier, request.target, backup.id);
      return true;
    } catch (error) {
      if (error instanceof RestoreTargetError) return false;
      throw error;
    }
  }

  /** Present at the recorded sizes, then every artifact re-read and checked (engine.verify). */
  private async verifies(backup: BackupManifest): Promise<boolean> {
    if (await this.missingArtifact(backup)) return false;
    return (await this.verifier.verify(backup.tier, backup.id)).ok;
  }
}

/** `backup` and every parent it needs, or null when a parent is not in the listing. */
function chainOf(backup: BackupManifest, backups: readonly BackupManifest[]): BackupManifest[] | null {
  const chain = [backup];
  for (let parent = backup.parent; parent; ) {
    const found = backups.find((candidate) => candidate.id === parent);
    if (!found) return null;
    chain.push(found);
    parent = found.parent;
  }
  return chain;
}

async function everyAsync<T>(items: readonly T[], test: (item: T) => Promise<boolean>): Promise<boolean> {
  for (const item of items) if (!(await test(item))) return false;
  return true;
}
