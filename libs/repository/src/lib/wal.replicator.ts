import { RookeryError, StorageClass, TierName } from '@rookery/core';
import type { ReplicaTarget } from './backup.replicator';
import { asRookeryError, copyVerified, hashObject } from './replica.copy';
import { WalArchive, WalObject } from './wal.archive';

export interface WalCopyResult {
  tier: TierName;
  region: string;
  /** WAL files written in this run, oldest first. */
  copied: { key: string; name: string; bytes: number; sha256: string }[];
  /** Of those, files the region held damaged (wrong size, or a wrong hash under verification). */
  repaired: string[];
  failed: { key: string; error: RookeryError }[];
  /** Files of the primary's archive checked in this run. */
  checked: number;
  durationMs: number;
}

/** How far a region's WAL archive trails the primary's. */
export interface WalLag {
  region: string;
  primaryFiles: number;
  /** Primary files with no copy of the same size in the region. */
  missing: number;
  /** When the oldest missing file was archived in the primary; null when none is missing. */
  oldestMissingAt: string | null;
  /** Seconds since then (0 when the region is current): the region's recovery point trails by this much. */
  lagSeconds: number;
  /** Newest WAL file the region holds. */
  newest: string | null;
}

const PARALLEL_COPIES = 4;

/**
 * Copies a tier's WAL archive to a replica store. A WAL key names the file and the sha256 of its
 * raw bytes (wal.archive), so a file either is in the region under the same key or is missing;
 * listing both sides is the whole ledger. Each copy is verified by re-reading it from the region.
 * Verification (`verify`) re-reads both sides of every file and re-copies one that differs; where
 * the stored bytes are the raw WAL (no compression, no encryption) it also checks them against
 * the key, so a damaged primary copy is reported instead of spread.
 */
export class WalReplicator {
  constructor(private readonly primary: WalArchive) {}

  async replicate(
    tier: TierName,
    target: ReplicaTarget,
    options: { verify?: boolean; storageClass?: StorageClass; signal?: AbortSignal } = {},
  ): Promise<WalCopyResult> {
    const started = Date.now();
    const [files, present] = await Promise.all([this.primary.list(tier), this.replicaSizes(tier, target)]);
    const result: WalCopyResult = {
      tier,
      region: target.region,
      copied: [],
      repaired: [],
      failed: [],
      checked: files.length,
      durationMs: 0,
    };
    const work = files.map((file) => async () => {
      const size = present.get(file.key);
      const damaged =
        size !== undefined && (size !== file.storedBytes || (options.verify && !(await this.sameBytes(file, target, options.signal))));
      if (size !== undefined && !damaged) return;
      try {
        const copied = await copyVerified(this.primary.store, target.store, file.key, {
          expectedSha256: isRaw(file) ? file.sha256 : undefined,
          storageClass: options.storageClass,
          signal: options.signal,
        });
        result.copied.push({ key: file.key, name: file.file.name, bytes: copied.bytes, sha256: copied.sha256 });
        if (damaged) result.repaired.push(file.key);
      } catch (error) {
        result.failed.push({ key: file.key, error: asRookeryError(error) });
      }
    });
    await runLimited(work, PARALLEL_COPIES);
    result.copied.sort((a, b) => a.key.localeCompare(b.key));
    result.durationMs = Date.now() - started;
    return result;
  }

  async lag(tier: TierName, target: ReplicaTarget, now = new Date()): Promise<WalLag> {
    const [files, present] = await Promise.all([this.primary.list(tier), this.replicaSizes(tier, target)]);
    const missing = files.filter((file) => present.get(file.key) !== file.storedBytes);
    const oldest = missing.reduce<Date | null>((min, file) => (!min || file.archivedAt < min ? file.archivedAt : min), null);
    const replicated = files.filter((file) => present.get(file.key) === file.storedBytes);
    return {
      region: target.region,
      primaryFiles: files.length,
      missing: missing.length,
      oldestMissingAt: oldest?.toISOString() ?? null,
      lagSeconds: oldest ? Math.max(0, Math.round((now.getTime() - oldest.getTime()) / 1000)) : 0,
      newest: replicated.at(-1)?.file.name ?? null,
    };
  }

  private async replicaSizes(tier: TierName, target: ReplicaTarget): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    for (const file of await new WalArchive(target.store).list(tier)) sizes.set(file.key, file.storedBytes);
    return sizes;
  }

  private async sameBytes(file: WalObject, target: ReplicaTarget, signal?: AbortSignal): Promise<boolean> {
    const [source, copy] = await Promise.all([
      isRaw(file) ? Promise.resolve({ sha256: file.sha256 }) : hashObject(this.primary.store, file.key, signal),
      hashObject(target.store, file.key, signal),
    ]);
    return source.sha256 === copy.sha256;
  }
}

/** Stored bytes are the WAL file itself: the key's sha256 describes them. */
function isRaw(file: WalObject): boolean {
  return file.codec === 'none' && !file.encrypted;
}

async function runLimited(work: (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, work.length) }, async () => {
    while (next < work.length) await work[next++]();
  });
  await Promise.all(lanes);
}
