import { RookeryConfig } from '@rookery/config';
import { BackupManifest, IncrementalChainError, RookeryError, Store, TierName, compareBackupsByAge } from '@rookery/core';
import {
  BackupCopyResult,
  BackupReplicator,
  CopyMarker,
  ReplicaTarget,
  WalArchive,
  WalCopyResult,
  WalLag,
  WalReplicator,
  asRookeryError,
} from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { EngineContext } from './engine.context';
import { storeOptionsFor } from '@rookery/wal';

/** A region of a tier's policy and the repository URL that serves it (null: none configured). */
export interface ReplicaRegion {
  region: string;
  url: string | null;
}

export interface RegionReplication {
  region: string;
  store: string;
  backups: BackupCopyResult[];
  wal: WalCopyResult | null;
  /** The region could not be reached or listed: nothing was copied to it in this run. */
  error?: RookeryError;
  /** Unreachable region: backups copied there in an earlier run, whose copies this run could not check. */
  unchecked?: number;
}

export interface ReplicationRun {
  tier: TierName;
  /** The primary store's description: where copies come from. */
  primary: string;
  startedAt: string;
  finishedAt: string;
  regions: RegionReplication[];
  /** Regions the policy names that have no repository configured (repositories[i]). */
  unconfigured: string[];
}

export interface BackupCopyStatus {
  backupId: string;
  finishedAt: string;
  /** missing: never attempted (or the marker was lost); failed: the last attempt failed. */
  status: 'copied' | 'failed' | 'missing';
  at?: string;
  verifiedAt?: string;
  error?: CopyMarker['error'];
  /**
   * An incremental copied to the region whose parent is not (missing, failed, or not in the
   * primary's listing): the region cannot restore it. Names the broken link.
   */
  brokenLink?: string;
}

export interface RegionStatus {
  region: string;
  store: string | null;
  backups: BackupCopyStatus[];
  wal: WalLag | null;
  /** Why the WAL lag could not be measured (region unreachable). */
  error?: { code: string; message: string };
}

export interface ReplicationStatus {
  tier: TierName;
  regions: RegionStatus[];
}

/**
 * The tier's replica regions from the configuration: policy.regions[i] is served by
 * repositories[i] (regions[0] is the primary). A region without a repository is reported, never
 * silently skipped.
 */
export function replicaRegionsFor(config: RookeryConfig, tier: TierName): ReplicaRegion[] {
  return config.tiers[tier].policy.regions.slice(1).map((region, index) => ({ region, url: config.repositories[index + 1] ?? null }));
}

/**
 * Copies backups oldest first, so a parent is copied before its children; a child whose parent
 * failed to copy in this run is held back (`holdBack` records why) instead of copied: a region
 * never gains an incremental it could not restore. The next run copies both.
 */
export async function copyParentsFirst(
  backups: readonly BackupManifest[],
  copy: (manifest: BackupManifest) => Promise<BackupCopyResult>,
  holdBack: (manifest: BackupManifest, parent: string) => Promise<BackupCopyResult>,
): Promise<BackupCopyResult[]> {
  const failed = new Set<string>();
  const results: BackupCopyResult[] = [];
  for (const manifest of [...backups].sort(compareBackupsByAge)) {
    const result = manifest.parent && failed.has(manifest.parent) ? await holdBack(manifest, manifest.parent) : await copy(manifest);
    if (result.outcome === 'failed') failed.add(manifest.id);
    results.push(result);
  }
  return results;
}

/**
 * Incrementals whose copy in `region` is there but whose parent's is not (never copied, failed,
 * or the parent is not in the primary's listing): by child id, the broken link named. A chain is
 * restorable in a region only when every link is copied there.
 */
export function brokenCopyLinks(
  backups: readonly BackupManifest[],
  region: string,
  statuses: ReadonlyMap<string, BackupCopyStatus['status']>,
): Map<string, string> {
  const broken = new Map<string, string>();
  // Oldest first: a parent's own break is known before its children are looked at.
  for (const backup of [...backups].sort(compareBackupsByAge)) {
    if (!backup.parent || statuses.get(backup.id) !== 'copied') continue;
    const parent = statuses.get(backup.parent);
    if (parent === undefined) {
      broken.set(backup.id, `its parent backup '${backup.parent}' is not in the primary repository: the chain is broken in every region`);
    } else if (parent !== 'copied') {
      broken.set(
        backup.id,
        `its parent backup '${backup.parent}' is ${parent} in region '${region}': the region cannot restore this incremental`,
      );
    } else if (broken.has(backup.parent)) {
      broken.set(backup.id, `a link before it is broken in region '${region}': ${broken.get(backup.parent)}`);
    }
  }
  return broken;
}

/**
 * Cross-region copies (DESIGN §4, issue 6 item 2): every backup (artifacts, then the region's
 * manifest) and every archived WAL file of a tier, from the primary store to each replica region,
 * verified on arrival, recorded in the primary (copy markers) and the region (its manifest).
 * Runs are idempotent: what is current is skipped, what is missing or damaged is copied again.
 */
export class ReplicationService {
  private readonly stores = new Map<string, Store>();
  private readonly backups: BackupReplicator;
  private readonly wal: WalReplicator;

  constructor(private readonly context: EngineContext) {
    this.backups = new BackupReplicator(context.repository);
    this.wal = new WalReplicator(new WalArchive(context.repository.store));
  }

  async replicate(tier: TierName, options: { verify?: boolean; signal?: AbortSignal } = {}): Promise<ReplicationRun> {
    const startedAt = new Date().toISOString();
    const regions = replicaRegionsFor(this.context.config, tier);
    const { backups } = await this.context.repository.list(tier);
    const results: RegionReplication[] = [];
    for (const target of this.targets(regions)) results.push(await this.replicateRegion(tier, backups, target, options));
    return {
      tier,
      primary: this.context.repository.store.description,
      startedAt,
      finishedAt: new Date().toISOString(),
      regions: results,
      unconfigured: regions.filter((region) => !region.url).map((region) => region.region),
    };
  }

  /** Copy status of every backup in every region, and each region's WAL lag (for `rookery info` and /replication). */
  async status(tier: TierName): Promise<ReplicationStatus> {
    const regions = replicaRegionsFor(this.context.config, tier);
    const { backups } = await this.context.repository.list(tier);
    const markers = await this.backups.markers(tier);
    const statuses: RegionStatus[] = [];
    for (const region of regions) {
      const copies = backups.map((backup): BackupCopyStatus => {
        const marker = markers.get(backup.id)?.get(region.region);
        if (!marker) return { backupId: backup.id, finishedAt: backup.finishedAt, status: 'missing' };
        return {
          backupId: backup.id,
          finishedAt: backup.finishedAt,
          status: marker.status,
          at: marker.at,
          verifiedAt: marker.verifiedAt,
          error: marker.error,
        };
      });
      const broken = brokenCopyLinks(backups, region.region, new Map(copies.map((copy) => [copy.backupId, copy.status])));
      for (const copy of copies) {
        const link = broken.get(copy.backupId);
        if (link) copy.brokenLink = link;
      }
      const status: RegionStatus = { region: region.region, store: null, backups: copies, wal: null };
      if (region.url) {
        const target = { region: region.region, store: this.storeFor(region.url) };
        status.store = target.store.description;
        try {
          status.wal = await this.wal.lag(tier, target);
        } catch (error) {
          const failure = asRookeryError(error);
          status.error = { code: failure.code, message: failure.message };
        }
      }
      statuses.push(status);
    }
    return { tier, regions: statuses };
  }

  /** The replica stores of a tier (opened once, closed with the engine). */
  targets(regions: readonly ReplicaRegion[]): ReplicaTarget[] {
    return regions
      .filter((region): region is ReplicaRegion & { url: string } => region.url !== null)
      .map((region) => ({ region: region.region, store: this.storeFor(region.url) }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.stores.values()].map((store) => store.close()));
    this.stores.clear();
  }

  private async replicateRegion(
    tier: TierName,
    backups: readonly BackupManifest[],
    target: ReplicaTarget,
    options: { verify?: boolean; signal?: AbortSignal },
  ): Promise<RegionReplication> {
    const result: RegionReplication = { region: target.region, store: target.store.description, backups: [], wal: null };
    try {
      await target.store.check();
    } catch (error) {
      // One probe instead of a timeout per object: every backup not yet copied is marked failed,
      // so `rookery info` shows the region lagging, and the next run retries them all.
      result.error = asRookeryError(error);
      result.backups = await this.backups.recordUnreachable(backups, target, result.error);
      result.unchecked = backups.length - result.backups.length;
      return result;
    }
    result.backups = await copyParentsFirst(
      backups,
      (manifest) => {
        options.signal?.throwIfAborted();
        return this.backups.replicate(manifest, target, options);
      },
      (manifest, parent) =>
        this.backups.recordFailure(
          manifest,
          target,
          new IncrementalChainError(
            `incremental backup '${manifest.id}' was not copied to region '${target.region}': its parent backup '${parent}' failed to copy there`,
            { hint: `the next rookery replicate --tier ${tier} copies both once the parent's copy succeeds` },
          ),
        ),
    );
    try {
      result.wal = await this.wal.replicate(tier, target, {
        ...options,
        storageClass: this.context.config.tiers[tier].policy.storageClass,
      });
    } catch (error) {
      result.error = asRookeryError(error);
    }
    return result;
  }

  private storeFor(url: string): Store {
    let store = this.stores.get(url);
    if (!store) {
      store = createStore(url, storeOptionsFor(this.context.config));
      this.stores.set(url, store);
    }
    return store;
  }
}
