import {
  ArchivedObjectError,
  BackupManifest,
  InvariantError,
  RestoreRequestOptions,
  Store,
  StorageClass,
  StoreWith,
  TierName,
  archiveAccess,
  hasStoreFeature,
  isArchiveStorageClass,
  objectLockSupport,
  transitionTarget,
  typicalRestoreTime,
} from '@rookery/core';
import { asRookeryError, repositoryLayout } from '@rookery/repository';
import { EngineContext } from './engine.context';
import { indexChainOf } from './physical-incremental';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface StorageClassMove {
  backupId: string;
  artifact: string;
  key: string;
  from: string;
  to: StorageClass;
  ageDays: number;
  /** Set after a real run: whether the store now reports the new class. */
  done?: boolean;
  error?: { code: string; message: string };
}

export interface TransitionReport {
  tier: TierName;
  store: string;
  dryRun: boolean;
  moves: StorageClassMove[];
  /** Set when the store has no storage classes (a filesystem store): nothing can move. */
  unsupported?: string;
}

export interface ArchiveRestoreOptions {
  /** Wait for started restores to finish (polling the objects) instead of failing at once. */
  wait?: boolean;
  pollMs?: number;
  timeoutMs?: number;
  restore?: Partial<RestoreRequestOptions>;
  signal?: AbortSignal;
}

export interface ObjectLockStatus {
  region: string;
  store: string;
  supported: boolean;
  detail: string;
}

const DEFAULT_RESTORE: RestoreRequestOptions = { days: 3, tier: 'Standard' };

/**
 * The backups whose page indexes the tier's next block incremental reads: its newest physical
 * backup and, when that one's indexes are deltas, its chain back to the newest link with full
 * indexes. A broken chain keeps what can be followed (the next incremental will fail naming it).
 */
export function nextIndexChain(backups: readonly BackupManifest[]): BackupManifest[] {
  const physical = backups.filter((backup) => backup.method === 'physical');
  const newest = physical.at(-1);
  if (!newest) return [];
  const chain: BackupManifest[] = [newest];
  for (let child = newest; child.type === 'incremental'; ) {
    const parent = physical.find((backup) => backup.id === child.parent);
    if (!parent || chain.includes(parent)) break;
    chain.unshift(parent);
    child = parent;
  }
  return indexChainOf(chain);
}

/**
 * Storage classes over a backup's life (DESIGN §2): artifacts are written in the tier's class,
 * move to colder classes by age per policy (`transitions`), and an archived artifact is thawed
 * (S3 RestoreObject) before a restore reads it. Manifests, copy markers and WAL never move: every
 * listing reads the manifests, and a recovery's restore_command must fetch WAL at once.
 */
export class StorageClassService {
  constructor(private readonly context: EngineContext) {}

  async transition(tier: TierName, options: { dryRun?: boolean; now?: Date } = {}): Promise<TransitionReport> {
    const store = this.context.repository.store;
    const report: TransitionReport = { tier, store: store.description, dryRun: Boolean(options.dryRun), moves: [] };
    const transitions = this.context.config.tiers[tier].policy.transitions ?? [];
    if (!hasStoreFeature(store, 'storageClasses')) {
      report.unsupported = `${store.description} has no storage classes: nothing moves`;
      return report;
    }
    if (transitions.length === 0) return report;
    const now = options.now ?? new Date();
    const { backups } = await this.context.repository.list(tier);
    const classes = await this.classesOf(store, repositoryLayout.backupsPrefix(tier));
    // The next block incremental reads the page indexes of the tier's newest physical backup, and
    // when they are deltas those of its chain back to the newest full indexes: they stay where a
    // backup can read them at once, however old those backups are (they are small).
    const indexed = new Set(nextIndexChain(backups).map((backup) => backup.id));
    for (const backup of backups) {
      const ageDays = Math.floor((now.getTime() - new Date(backup.finishedAt).getTime()) / DAY_MS);
      for (const artifact of backup.artifacts) {
        if (artifact.kind === 'page-index' && indexed.has(backup.id)) continue;
        const key = this.context.repository.artifactKey(backup, artifact.name);
        const from = classes.get(key) ?? backup.storageClass;
        const to = transitionTarget(from, ageDays, transitions);
        if (to) report.moves.push({ backupId: backup.id, artifact: artifact.name, key, from, to, ageDays });
      }
    }
    if (report.dryRun) return report;
    for (const move of report.moves) {
      try {
        const after = await store.changeStorageClass(move.key, move.to);
        move.done = true;
        move.from = move.from ?? after.storageClass;
      } catch (error) {
        const failure = asRookeryError(error);
        move.done = false;
        move.error = { code: failure.code, message: failure.message };
      }
    }
    return report;
  }

  /**
   * Makes sure every artifact of these backups can be read before a restore starts: archived ones
   * (GLACIER, DEEP_ARCHIVE) get an S3 restore request, then either the restore waits for them
   * (`wait`) or fails at once saying what was started and how long it typically takes. A server
   * that serves archived objects directly (a one-byte probe read succeeds) needs nothing.
   */
  async ensureReadable(backups: readonly BackupManifest[], options: ArchiveRestoreOptions = {}): Promise<{ restored: string[] }> {
    const store = this.context.repository.store;
    // A store without storage classes keeps every object readable.
    if (!hasStoreFeature(store, 'storageClasses')) return { restored: [] };
    const restore = { ...DEFAULT_RESTORE, ...options.restore };
    const waiting: { key: string; storageClass?: string }[] = [];
    for (const backup of backups) {
      for (const artifact of backup.artifacts) {
        const key = this.context.repository.artifactKey(backup, artifact.name);
        const info = await store.stat(key);
        if (!info || !isArchiveStorageClass(info.storageClass)) continue;
        const access = archiveAccess(info, await store.isReadable(key));
        if (access === 'readable') continue;
        if (access === 'needs-restore') await store.requestRestore(key, restore);
        waiting.push({ key, storageClass: info.storageClass });
      }
    }
    if (waiting.length === 0) return { restored: [] };
    const slowest = waiting.some((object) => object.storageClass === 'DEEP_ARCHIVE') ? 'DEEP_ARCHIVE' : 'GLACIER';
    const typical = typicalRestoreTime(slowest, restore.tier);
    if (!options.wait) {
      throw new ArchivedObjectError(
        waiting.map((object) => object.key),
        `${waiting.length} artifact(s) are archived (${slowest}) and not readable yet; an s3 restore (${restore.tier}) was started or is running, which typically takes ${typical}`,
        { hint: 'run the restore again once the objects are restored, or add --wait-restore to wait for them' },
      );
    }
    await this.waitForRestores(
      store,
      waiting.map((object) => object.key),
      options,
      typical,
    );
    return { restored: waiting.map((object) => object.key) };
  }

  /** Object Lock support of the primary and of each replica store. */
  async objectLock(stores: readonly { region: string; store: Store }[]): Promise<ObjectLockStatus[]> {
    const statuses: ObjectLockStatus[] = [];
    for (const { region, store } of stores) {
      try {
        statuses.push({ region, store: store.description, ...(await objectLockSupport(store)) });
      } catch (error) {
        statuses.push({
          region,
          store: store.description,
          supported: false,
          detail: `could not be checked: ${asRookeryError(error).message}`,
        });
      }
    }
    return statuses;
  }

  private async waitForRestores(
    store: StoreWith<'storageClasses'>,
    keys: string[],
    options: ArchiveRestoreOptions,
    typical: string,
  ): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 48 * 60 * 60 * 1000);
    let pending = keys;
    while (pending.length > 0) {
      options.signal?.throwIfAborted();
      const still: string[] = [];
      for (const key of pending) {
        const info = await store.stat(key);
        if (!info) throw new InvariantError(`archived object '${key}' vanished while being restored`);
        if (archiveAccess(info, await store.isReadable(key)) !== 'readable') still.push(key);
      }
      pending = still;
      if (pending.length === 0) return;
      if (Date.now() > deadline) {
        throw new ArchivedObjectError(
          pending,
          `${pending.length} archived artifact(s) were still being restored when the wait ended (typically ${typical})`,
          {
            hint: 'run the restore again later',
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 60_000));
    }
  }

  private async classesOf(store: Store, prefix: string): Promise<Map<string, string>> {
    const classes = new Map<string, string>();
    for await (const object of store.list(prefix)) if (object.storageClass) classes.set(object.key, object.storageClass);
    return classes;
  }
}
