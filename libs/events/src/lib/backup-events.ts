import { BackupManifest, BackupMethod, BackupType, TierName, isRookeryError } from '@rookery/core';
import { CloudEvent, createEvent } from './cloud-event';

/**
 * The backup family's events built from what the engine and the catalog know, so the services and
 * the CLI describe a backup the same way. Nothing secret goes in: store descriptions are
 * credential-free and errors carry their message only.
 */
export interface BackupRunFacts {
  backupId: string;
  tier: TierName;
  type: BackupType;
  method: BackupMethod;
  startedAt: string;
  actor: string;
}

export function backupStartedEvent(run: BackupRunFacts, source: string): CloudEvent<'dev.rookery.backup.started'> {
  return createEvent('dev.rookery.backup.started', run.tier, { ...run }, { source, time: new Date(run.startedAt) });
}

export function backupCompletedEvent(
  manifest: BackupManifest,
  options: { actor: string; repository: string; source: string },
): CloudEvent<'dev.rookery.backup.completed'> {
  return createEvent(
    'dev.rookery.backup.completed',
    manifest.tier,
    {
      backupId: manifest.id,
      tier: manifest.tier,
      type: manifest.type,
      method: manifest.method,
      startedAt: manifest.startedAt,
      finishedAt: manifest.finishedAt,
      actor: options.actor,
      durationMs: Math.max(0, Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt)),
      bytes: manifest.bytes,
      storedBytes: manifest.storedBytes,
      timeline: manifest.timeline,
      startLsn: manifest.startLsn,
      stopLsn: manifest.stopLsn,
      walRange: manifest.walRange,
      parent: manifest.parent,
      retentionUntil: manifest.retentionUntil,
      storageClass: manifest.storageClass,
      regions: [...manifest.regions],
      repository: options.repository,
      manifestChecksum: manifest.checksum,
      artifacts: manifest.artifacts.map((artifact) => ({
        name: artifact.name,
        kind: artifact.kind,
        bytes: artifact.bytes,
        storedBytes: artifact.storedBytes,
        sha256: artifact.sha256,
        ...(artifact.tablespace ? { tablespace: { ...artifact.tablespace } } : {}),
      })),
    },
    { source: options.source, time: new Date(manifest.finishedAt) },
  );
}

export function backupFailedEvent(
  run: BackupRunFacts,
  error: unknown,
  source: string,
  failedAt = new Date(),
): CloudEvent<'dev.rookery.backup.failed'> {
  return createEvent(
    'dev.rookery.backup.failed',
    run.tier,
    {
      ...run,
      failedAt: failedAt.toISOString(),
      error: {
        code: isRookeryError(error) ? error.code : 'UNEXPECTED',
        message: (error instanceof Error ? error.message : String(error)).slice(0, 2000),
        retryable: isRookeryError(error) ? error.retryable : false,
      },
    },
    { source, time: failedAt },
  );
}
