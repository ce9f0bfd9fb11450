import { hostname, userInfo } from 'node:os';
import {
  BackupManifest,
  ConfigError,
  LegalHold,
  OrphanFolder,
  RetentionPlan,
  RetentionWalObject,
  Store,
  TierName,
  objectLockSupport,
  planRetention,
} from '@rookery/core';
import { DamagedManifest, LegalHoldRepository, repositoryLayout } from '@rookery/repository';
import { EngineContext } from './engine.context';
import { RecoveryPlanService } from './recovery-plan.service';
import { WalService } from '@rookery/wal';

export interface ExpireRequest {
  tier: TierName;
  /** Plan and report only: nothing is deleted and no lock is taken. */
  dryRun?: boolean;
  /** The clock retention is judged by (tests, and "what would go next month"). */
  now?: Date;
  /**
   * Called after each delete (tests kill the process here to prove a crash mid-expire leaves no
   * manifest without its artifacts).
   */
  onDeleted?: (key: string) => void | Promise<void>;
}

export interface ExpireResult {
  tier: TierName;
  dryRun: boolean;
  plan: RetentionPlan;
  /** Backups the plan expired that were left alone at delete time (a hold placed meanwhile). */
  skipped: { id: string; reason: string }[];
  deleted: { backups: string[]; walFiles: number; orphanFolders: number; objects: number; bytes: number };
  /** Manifests that do not parse or match their checksum: never expired, reported. */
  damaged: DamagedManifest[];
  /** Whether S3 Object Lock was looked at, and what the store said. */
  objectLock: { checked: boolean; detail: string };
}

/** Objects deleted at once: WAL goes in name order in batches of this many. */
const DELETE_CONCURRENCY = 16;

/**
 * `rookery expire` (and each service's daily expire): reads the tier's manifests, WAL archive,
 * history files, holds and stray folders from the repository, plans with the pure core rules
 * (planRetention), and deletes in the order that keeps the repository truthful after a crash at
 * any point:
 *
 *  1. backups, newest first (a child incremental before its parent), each by removing its manifest
 *     FIRST (the backup stops existing, so nothing ever lists a backup whose artifacts are going)
 *     and then its artifacts; a crash in between leaves a folder without a manifest, which is what
 *     a crashed backup leaves too, and which a later expire removes once it is a day old;
 *  2. WAL below the cut, oldest first, after the backups that needed it are gone;
 *  3. orphan folders older than a day.
 *
 * Everything runs under the tier's repository lock, so no backup of the tier runs meanwhile: its
 * WAL and its not-yet-committed folder are never mistaken for expired ones.
 */
export class RetentionService {
  readonly holds: LegalHoldRepository;

  constructor(
    private readonly context: EngineContext,
    private readonly wal: WalService,
    private readonly recovery: RecoveryPlanService,
  ) {
    this.holds = new LegalHoldRepository(context.repository.store, context.repository.keyring);
  }

  async expire(request: ExpireRequest): Promise<ExpireResult> {
    if (request.dryRun) return this.planned(request);
    const held = await this.context.lock.acquire(request.tier, { holder: `rookery expire (${this.context.actor})` });
    try {
      const result = await this.planned(request);
      await this.execute(result, request);
      return result;
    } finally {
      await held.release();
    }
  }

  /** Places a legal hold on an existing backup of the tier. */
  async hold(tier: TierName, backupId: string, reason: string, heldBy = defaultActor(this.context.actor)): Promise<LegalHold> {
    await this.context.repository.find(tier, backupId);
    return this.holds.place({ backupId, tier, reason, heldBy, heldAt: new Date().toISOString() });
  }

  /** Releases a hold; ConfigError when the backup was not held (nothing to release). */
  async release(tier: TierName, backupId: string): Promise<LegalHold> {
    const released = await this.holds.release(tier, backupId);
    if (!released) {
      throw new ConfigError(`backup '${backupId}' of tier '${tier}' is not under legal hold`, ['--backup'], {
        hint: `list holds with: rookery info --tier ${tier}`,
      });
    }
    return released;
  }

  private async planned(request: ExpireRequest): Promise<ExpireResult> {
    const { tier } = request;
    const now = request.now ?? new Date();
    const store = this.context.repository.store;
    const { backups, damaged } = await this.context.repository.list(tier);
    const walObjects = await this.wal.archive.list(tier);
    const wal: RetentionWalObject[] = walObjects.map((object) => ({
      key: object.key,
      file: object.file,
      storedBytes: object.storedBytes,
      archivedAt: object.archivedAt,
    }));
    const folders = await this.backupFolders(tier);
    const inputs = {
      tier,
      policy: this.context.config.tiers[tier].policy,
      backups,
      wal,
      histories: await this.recovery.histories(
        tier,
        wal.map((object) => ({ file: object.file, sha256: '', archivedAt: object.archivedAt })),
      ),
      holds: await this.holds.list(tier),
      untrustedChildren: await untrustedChildrenOf(store, damaged),
      orphans: orphansOf(folders, backups, tier),
      localStore: false,
      now,
    };
    let plan = planRetention(inputs);
    // Object Lock: only what the plan would delete is looked at; a locked object keeps its backup
    // (and, through the chain rule, its parents), so planning again only ever deletes less.
    const lock = await objectLockSupport(store);
    if (lock.supported && (plan.expire.backups.length > 0 || plan.expire.wal.length > 0)) {
      const backupLocks = new Map<string, Date>();
      for (const backup of plan.expire.backups) {
        const folder = repositoryLayout.backupFolder(tier, backup.id, new Date(backup.startedAt));
        const until = await latestRetention(
          store,
          (folders.get(folder) ?? []).map((object) => object.key),
        );
        if (until) backupLocks.set(backup.id, until);
      }
      const walLocks = new Map<string, Date>();
      for (const file of plan.expire.wal) {
        const until = await latestRetention(store, [file.key]);
        if (until) walLocks.set(file.key, until);
      }
      plan = planRetention({ ...inputs, objectLocks: { backups: backupLocks, wal: walLocks } });
    }
    return {
      tier,
      dryRun: request.dryRun === true,
      plan,
      skipped: [],
      deleted: { backups: [], walFiles: 0, orphanFolders: 0, objects: 0, bytes: 0 },
      damaged,
      objectLock: { checked: lock.supported, detail: lock.detail },
    };
  }

  private async execute(result: ExpireResult, request: ExpireRequest): Promise<void> {
    const { tier, plan } = result;
    const store = this.context.repository.store;
    const remove = async (key: string, bytes: number) => {
      await store.remove(key);
      result.deleted.objects++;
      result.deleted.bytes += bytes;
      await request.onDeleted?.(key);
    };

    for (const [index, backup] of plan.expire.backups.entries()) {
      // A hold placed since the plan was made wins: checked right before the backup stops existing.
      // The plan no longer holds then (the held backup may need an older parent or older WAL), so
      // nothing else is deleted this run; the next run plans with the hold.
      const hold = await this.holds.get(tier, backup.id);
      if (hold) {
        result.skipped = plan.expire.backups.slice(index).map((rest) => ({
          id: rest.id,
          reason:
            rest.id === backup.id
              ? `placed under legal hold by ${hold.heldBy} during expire`
              : `not expired this run: backup ${backup.id} was placed under legal hold during expire`,
        }));
        break;
      }
      const startedAt = new Date(backup.startedAt);
      await remove(repositoryLayout.manifestKey(tier, backup.id, startedAt), 0);
      for await (const object of store.list(repositoryLayout.backupFolder(tier, backup.id, startedAt)))
        await remove(object.key, object.size);
      result.deleted.backups.push(backup.id);
    }
    if (result.skipped.length === 0) {
      for (let index = 0; index < plan.expire.wal.length; index += DELETE_CONCURRENCY) {
        const batch = plan.expire.wal.slice(index, index + DELETE_CONCURRENCY);
        await Promise.all(batch.map((file) => remove(file.key, file.storedBytes)));
        result.deleted.walFiles += batch.length;
      }
    }
    for (const orphan of plan.expire.orphans) {
      for await (const object of store.list(orphan.folder)) await remove(object.key, object.size);
      result.deleted.orphanFolders++;
    }
  }

  /** Every object under the tier's backups/, by backup folder. */
  private async backupFolders(tier: TierName): Promise<Map<string, { key: string; size: number; modifiedAt: Date }[]>> {
    const folders = new Map<string, { key: string; size: number; modifiedAt: Date }[]>();
    for await (const object of this.context.repository.store.list(repositoryLayout.backupsPrefix(tier))) {
      const folder = repositoryLayout.backupFolderOf(object.key);
      if (!folder) continue;
      const objects = folders.get(folder) ?? [];
      objects.push({ key: object.key, size: object.size, modifiedAt: object.modifiedAt });
      folders.set(folder, objects);
    }
    return folders;
  }
}

/** Folders holding no manifest at all (a damaged manifest's folder is not an orphan: it is reported). */
function orphansOf(
  folders: ReadonlyMap<string, { key: string; size: number; modifiedAt: Date }[]>,
  backups: readonly BackupManifest[],
  tier: TierName,
): OrphanFolder[] {
  const live = new Set(backups.map((backup) => repositoryLayout.backupFolder(tier, backup.id, new Date(backup.startedAt))));
  const orphans: OrphanFolder[] = [];
  for (const [folder, objects] of folders) {
    if (live.has(folder) || objects.some((object) => repositoryLayout.isManifestKey(object.key))) continue;
    orphans.push({
      folder,
      newestAt: new Date(Math.max(...objects.map((object) => object.modifiedAt.getTime()))),
      objects: objects.length,
      storedBytes: objects.reduce((sum, object) => sum + object.size, 0),
    });
  }
  return orphans;
}

/**
 * The parents that damaged or unsigned manifests still name, read from their JSON as it stands
 * (nothing else of them is believed): an unsigned incremental signed again later, or a damaged one
 * repaired from a replica, must still find its chain.
 */
async function untrustedChildrenOf(
  store: Store,
  damaged: readonly DamagedManifest[],
): Promise<{ id: string; parent: string; problem: string }[]> {
  const children: { id: string; parent: string; problem: string }[] = [];
  for (const entry of damaged) {
    const id = repositoryLayout.backupIdOf(entry.key);
    if (!id) continue;
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await store.read(entry.key)) chunks.push(chunk as Buffer);
      const parent = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { parent?: unknown }).parent;
      if (typeof parent === 'string' && parent) children.push({ id, parent, problem: entry.problem });
    } catch {
      // Not JSON, or gone: it names no parent we could keep.
    }
  }
  return children;
}

/** The latest Object Lock retain-until date among the objects, or null when none is locked. */
async function latestRetention(store: Store, keys: readonly string[]): Promise<Date | null> {
  let latest: Date | null = null;
  for (const key of keys) {
    const info = (await store.stat(key)) as (Awaited<ReturnType<Store['stat']>> & { retention?: { retainUntil: Date } }) | null;
    const until = info?.retention?.retainUntil;
    if (until && (!latest || until > latest)) latest = until;
  }
  return latest;
}

/** 'alice@db-host (cli)': who placed a hold, for the marker and `rookery info`. */
function defaultActor(actor: string): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (containers): the actor still says where it came from.
  }
  return `${user}@${hostname()} (${actor})`;
}
