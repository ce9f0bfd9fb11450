import {
  BackupManifest,
  ConfigError,
  TierName,
  parseLsn,
  signManifest,
  walSegmentName,
} from '@rookery/core';
import { ArtifactEncoding, artifactFileName, writeArtifact } from './artifact.codec';
import { allocateBackupId } from './backup-ids';
import { EngineContext } from './engine.context';
import { ProgressListener } from './engine.progress';

export interface PhysicalBackupRequest {
  tier: TierName;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Overrides the clock for ids and timestamps (tests). */
  now?: () => Date;
  /**
   * The backup's id, when the caller has already named it (a service's catalog record). It must
   * be free in the repository; by default the engine names the backup after its start time.
   */
  id?: string;
}

/**
 * A full physical backup of a tier: pg_basebackup's tar (with the WAL that makes it consistent)
 * streamed through the pipeline straight into the primary store, then the manifest.
 */
export class PhysicalBackupService {
  constructor(private readonly context: EngineContext) {}

  async backup(request: PhysicalBackupRequest): Promise<BackupManifest> {
    const { config, repository, lock, postgres } = this.context;
    const tier = config.tiers[request.tier];
    const url = tier.pgUrl?.reveal();
    if (!url) {
      throw new ConfigError(`no database URL for tier '${request.tier}'`, [`tiers.${request.tier}.pgUrl`], {
        hint: `set tiers.${request.tier}.pgUrl in rookery.yaml or pass --pg-url`,
      });
    }
    const now = request.now ?? (() => new Date());

    // Fail before touching the database if the store or the database cannot be reached.
    await repository.store.check();
    const server = await postgres.control.serverInfo(url);
    const totalBytes = await postgres.control.clusterSize(url).catch(() => undefined);

    // One backup per tier at a time: a second request fails fast with LockHeldError.
    const held = await lock.acquire(request.tier, { holder: `rookery backup (${this.context.actor})` });
    try {
      const startedAt = now();
      const id = await allocateBackupId(repository, request.tier, startedAt, request.id);
      const encoding: ArtifactEncoding = this.context.encoding;
      const name = artifactFileName('base.tar', encoding);
      const key = repository.artifactKey({ tier: request.tier, id, startedAt: startedAt.toISOString() }, name);

      const basebackup = postgres.basebackup.start({
        url,
        label: `rookery ${id}`,
        checkpoint: tier.checkpoint,
        signal: request.signal,
      });
      // The driver's stream ends only once pg_basebackup exited 0, and errors otherwise: a failed
      // pg_basebackup aborts the store write instead of leaving a short artifact.
      const artifact = await writeArtifact(repository.store, key, basebackup.stream, {
        name,
        kind: 'base-tar',
        encoding,
        storageClass: tier.policy.storageClass,
        signal: request.signal,
        onLogicalBytes: (bytes) => request.onProgress?.({ phase: 'backup', artifact: name, bytes, totalBytes }),
      });
      const result = await basebackup.result;
      // Read after the backup stopped: every xid below it was assigned before the backup ended,
      // which is what lets a restore to a target xid pick this backup (recovery-window.ts).
      const nextXid = await postgres.control.nextXid(url).catch(() => undefined);
      const finishedAt = now();

      const manifest = signManifest({
        formatVersion: 1,
        id,
        tier: request.tier,
        database: tier.policy.database,
        type: 'full',
        method: 'physical',
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        postgres: {
          version: server.version,
          versionNum: server.versionNum,
          systemIdentifier: server.systemIdentifier,
        },
        timeline: result.timeline,
        startLsn: result.startLsn,
        stopLsn: result.stopLsn,
        walRange: {
          start: walSegmentName(result.timeline, parseLsn(result.startLsn)),
          stop: walSegmentName(result.timeline, parseLsn(result.stopLsn)),
        },
        ...(nextXid ? { nextXid } : {}),
        parent: null,
        retentionUntil: new Date(finishedAt.getTime() + tier.policy.retentionDays * 86_400_000).toISOString(),
        storageClass: tier.policy.storageClass,
        regions: [this.context.primaryRegion],
        bytes: artifact.bytes,
        storedBytes: artifact.storedBytes,
        artifacts: [artifact],
        tool: { name: 'rookery', version: this.context.version },
      });
      // The manifest is written last: until it exists, this backup does not.
      await repository.commit(manifest);
      return manifest;
    } finally {
      await held.release().catch(() => undefined);
    }
  }

  /**
   * An id nothing in the repository uses yet. Two backups in the same second would otherwise share
   * a folder and the second would overwrite the first's artifacts; under the tier lock no other
   * backup of the tier can take the id between this check and the writes.
   */
}
