import {
  BackupManifest,
  IntegrityError,
  RecordSignature,
  RookeryError,
  Store,
  TierName,
  isManifestIntact,
  requiresSignatures,
  signManifest,
  signRecord,
  signatureProblem,
} from '@rookery/core';
import { BackupRepository } from './backup.repository';
import { asRookeryError, copyVerified, hashObject } from './replica.copy';
import { repositoryLayout } from './repository.layout';

/** A store that receives copies, and the region name the tier's policy gives it. */
export interface ReplicaTarget {
  region: string;
  store: Store;
}

/**
 * The primary's record of one backup's copy in one region, `<backup folder>/copies/<region>.json`.
 * The primary's manifest is signed and written once, so copies are recorded beside it instead of
 * in it; the replica's own manifest lists both regions. Rewritten on every attempt.
 */
export interface CopyMarker {
  formatVersion: 1;
  backupId: string;
  tier: TierName;
  region: string;
  /** The destination store's description (no credentials). */
  store: string;
  status: 'copied' | 'failed';
  /** When the copy last succeeded (copied) or was last attempted (failed). */
  at: string;
  /** When every artifact in the region was last re-read and matched the manifest. */
  verifiedAt?: string;
  /** Checksum of the manifest written in the region. */
  replicaManifestChecksum?: string;
  bytes?: number;
  error?: { code: string; message: string; retryable: boolean };
  /** HMAC of the other fields when the repository has a signing key; required on read when it has any. */
  signature?: RecordSignature;
}

export interface BackupCopyResult {
  backupId: string;
  tier: TierName;
  region: string;
  /** copied: something was written; current: the region already held a good copy. */
  outcome: 'copied' | 'current' | 'failed';
  /** Artifacts written in this run (missing, short, or found damaged by verification). */
  written: string[];
  /** Artifacts that were in the region but did not match the manifest (verification), now re-copied. */
  repaired: string[];
  bytes: number;
  durationMs: number;
  error?: RookeryError;
}

export const replicationLayout = {
  copyMarkerKey(manifest: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>, region: string): string {
    return `${repositoryLayout.backupFolder(manifest.tier, manifest.id, new Date(manifest.startedAt))}copies/${region}.json`;
  },
  isCopyMarkerKey(key: string): boolean {
    return /^[a-z]+\/backups\/\d{4}-\d{2}-\d{2}\/[^/]+\/copies\/[^/]+\.json$/.test(key);
  },
};

/**
 * Copies backups from the primary repository to a replica store (DESIGN §4: a complete disaster
 * that leaves only the secondary region's bucket must still restore every tier). The replica is a
 * repository in its own right: the same layout, every artifact byte-identical, and a manifest
 * written last — after every artifact was re-read from the region and matched the manifest's
 * sha256 — that lists the primary's regions plus this one.
 */
export class BackupReplicator {
  constructor(private readonly primary: BackupRepository) {}

  /**
   * Brings one backup's copy in the target up to date. Cheap when current (one HEAD per artifact
   * and a read of the small manifest); with `verify`, every artifact in the region is re-read and
   * hashed, and one that does not match the manifest is copied again.
   */
  async replicate(
    manifest: BackupManifest,
    target: ReplicaTarget,
    options: { verify?: boolean; signal?: AbortSignal } = {},
  ): Promise<BackupCopyResult> {
    const started = Date.now();
    const result: BackupCopyResult = {
      backupId: manifest.id,
      tier: manifest.tier,
      region: target.region,
      outcome: 'current',
      written: [],
      repaired: [],
      bytes: 0,
      durationMs: 0,
    };
    try {
      await this.copyArtifacts(manifest, target, result, options);
      const replicaManifest = this.primary.seal(replicaManifestOf(manifest, target.region));
      await new BackupRepository(target.store).lockArtifacts(manifest);
      // Written last: until now the region held artifacts but no backup.
      const manifestWritten = await this.writeReplicaManifest(replicaManifest, target.store);
      if (manifestWritten || result.written.length) result.outcome = 'copied';
      await this.writeMarker(manifest, target, {
        status: 'copied',
        at: new Date().toISOString(),
        verifiedAt: options.verify || result.written.length ? new Date().toISOString() : await this.lastVerifiedAt(manifest, target.region),
        replicaManifestChecksum: replicaManifest.checksum,
        bytes: manifest.storedBytes,
      });
    } catch (error) {
      result.outcome = 'failed';
      result.error = asRookeryError(error);
      await this.writeMarker(manifest, target, {
        status: 'failed',
        at: new Date().toISOString(),
        error: { code: result.error.code, message: result.error.message, retryable: result.error.retryable },
      }).catch(() => undefined);
    }
    result.durationMs = Date.now() - started;
    return result;
  }

  /**
   * The region cannot be reached: every backup not already copied there gets a failed marker
   * with the reason (what `rookery info` shows), without trying each object.
   */
  async recordUnreachable(manifests: readonly BackupManifest[], target: ReplicaTarget, error: RookeryError): Promise<BackupCopyResult[]> {
    const results: BackupCopyResult[] = [];
    for (const manifest of manifests) {
      const marker = await this.readMarker(replicationLayout.copyMarkerKey(manifest, target.region));
      if (marker?.status === 'copied') continue;
      results.push(await this.recordFailure(manifest, target, error));
    }
    return results;
  }

  /**
   * A backup not copied in this run for a reason found before any byte moved (its parent's copy
   * failed, the region cannot be reached): marked failed with that reason, what `rookery info`
   * shows; nothing is written to the region.
   */
  async recordFailure(manifest: BackupManifest, target: ReplicaTarget, error: RookeryError): Promise<BackupCopyResult> {
    await this.writeMarker(manifest, target, {
      status: 'failed',
      at: new Date().toISOString(),
      error: { code: error.code, message: error.message, retryable: error.retryable },
    });
    return {
      backupId: manifest.id,
      tier: manifest.tier,
      region: target.region,
      outcome: 'failed',
      written: [],
      repaired: [],
      bytes: 0,
      durationMs: 0,
      error,
    };
  }

  /** The copy markers of every backup of the tier, by backup id then region. */
  async markers(tier: TierName): Promise<Map<string, Map<string, CopyMarker>>> {
    const found = new Map<string, Map<string, CopyMarker>>();
    for await (const object of this.primary.store.list(repositoryLayout.backupsPrefix(tier))) {
      if (!replicationLayout.isCopyMarkerKey(object.key)) continue;
      const marker = await this.readMarker(object.key);
      if (!marker) continue;
      const regions = found.get(marker.backupId) ?? new Map<string, CopyMarker>();
      regions.set(marker.region, marker);
      found.set(marker.backupId, regions);
    }
    return found;
  }

  private async copyArtifacts(
    manifest: BackupManifest,
    target: ReplicaTarget,
    result: BackupCopyResult,
    options: { verify?: boolean; signal?: AbortSignal },
  ): Promise<void> {
    for (const artifact of manifest.artifacts) {
      const key = this.primary.artifactKey(manifest, artifact.name);
      const present = await target.store.stat(key);
      let damaged = false;
      if (present && present.size === artifact.storedBytes) {
        if (!options.verify) continue;
        const arrived = await hashObject(target.store, key, options.signal);
        if (arrived.sha256 === artifact.sha256) continue;
        damaged = true;
      }
      const copied = await copyVerified(this.primary.store, target.store, key, {
        expectedSha256: artifact.sha256,
        storageClass: manifest.storageClass,
        signal: options.signal,
      });
      result.written.push(artifact.name);
      if (damaged || present) result.repaired.push(artifact.name);
      result.bytes += copied.bytes;
    }
  }

  /** Writes the replica's manifest unless an intact identical one is there; true when written. */
  private async writeReplicaManifest(replica: BackupManifest, store: Store): Promise<boolean> {
    const key = repositoryLayout.manifestKey(replica.tier, replica.id, new Date(replica.startedAt));
    if (await store.stat(key)) {
      try {
        const existing = await new BackupRepository(store).readManifest(key);
        if (isManifestIntact(existing) && existing.checksum === replica.checksum) return false;
      } catch (error) {
        if (!(error instanceof IntegrityError)) throw error;
      }
    }
    // Replaces a damaged or outdated manifest in the region; the primary's is never touched.
    await store.write(key, Buffer.from(`${JSON.stringify(replica, null, 2)}\n`));
    return true;
  }

  private async writeMarker(
    manifest: BackupManifest,
    target: ReplicaTarget,
    state: Omit<CopyMarker, 'formatVersion' | 'backupId' | 'tier' | 'region' | 'store'>,
  ): Promise<void> {
    const marker: CopyMarker = {
      formatVersion: 1,
      backupId: manifest.id,
      tier: manifest.tier,
      region: target.region,
      store: target.store.description,
      ...state,
    };
    const signing = this.primary.keyring?.signing;
    if (signing) marker.signature = signRecord('copy-marker', marker, signing);
    await this.primary.store.write(
      replicationLayout.copyMarkerKey(manifest, target.region),
      Buffer.from(`${JSON.stringify(marker, null, 2)}\n`),
    );
  }

  private async lastVerifiedAt(manifest: BackupManifest, region: string): Promise<string | undefined> {
    return (await this.readMarker(replicationLayout.copyMarkerKey(manifest, region)))?.verifiedAt;
  }

  /**
   * A marker that is unsigned or forged where signatures are required counts as absent: the copy
   * it claims is then checked and made again rather than believed.
   */
  private isMarkerAuthentic(marker: CopyMarker): boolean {
    const keyring = this.primary.keyring;
    if (!requiresSignatures(keyring)) return true;
    const body: Partial<CopyMarker> = { ...marker };
    delete body.signature;
    return signatureProblem('copy-marker', body, marker.signature, keyring) === null;
  }

  private async readMarker(key: string): Promise<CopyMarker | null> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of await this.primary.store.read(key)) chunks.push(chunk as Buffer);
      const marker = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CopyMarker;
      if (!this.isMarkerAuthentic(marker)) return null;
      return marker.formatVersion === 1 && typeof marker.backupId === 'string' && typeof marker.region === 'string' ? marker : null;
    } catch (error) {
      if (error instanceof SyntaxError || (error instanceof RookeryError && error.code === 'STORAGE_NOT_FOUND')) return null;
      throw error;
    }
  }
}

/** The manifest a region holds: the primary's, listing this region too, checksummed anew (signed by the caller's repository). */
export function replicaManifestOf(manifest: BackupManifest, region: string): BackupManifest {
  const regions = manifest.regions.includes(region) ? [...manifest.regions] : [...manifest.regions, region];
  const unsigned: Partial<BackupManifest> = { ...manifest, regions };
  delete unsigned.checksum;
  delete unsigned.signature;
  return signManifest(unsigned as Omit<BackupManifest, 'checksum'>);
}
