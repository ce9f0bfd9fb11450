import { Writable } from 'node:stream';
import { ArtifactRecord, BackupManifest, LogicalBackupInfo, LogicalPolicy } from '@rookery/core';
import { encryptionRequired } from '@rookery/wal';
import { ArtifactEncoding, readArtifactInto } from './artifact.codec';
import type { NamedBackupRequest } from './backup-run';
import { EngineContext } from './engine.context';

/**
 * What a logical backup (full, snapshot or incremental) is working on once named and locked, and
 * what each kind hands back: shared by logical-backup.service and logical-incremental.service,
 * which import this and not each other.
 */
export interface LogicalBackupJob {
  request: NamedBackupRequest;
  id: string;
  startedAt: Date;
  url: string;
  policy: LogicalPolicy;
  encoding: ArtifactEncoding;
}

/** The artifacts a backup wrote and validated, and its manifest's logical section. */
export interface LogicalReadOutcome {
  artifacts: ArtifactRecord[];
  info: LogicalBackupInfo;
  parent: string | null;
}

/**
 * Reads a stored artifact back (every checksum checked on the way) into a checker's sink: the
 * checker's verdict, or the error of either side that explains the other.
 */
export async function readArtifactBack<T>(
  context: Pick<EngineContext, 'repository' | 'encoding'>,
  request: NamedBackupRequest,
  job: { id: string; startedAt: Date },
  artifact: ArtifactRecord,
  key: string,
  checker: (signal: AbortSignal) => { sink: Writable; result: Promise<T> },
): Promise<T> {
  const controller = new AbortController();
  const signal = request.signal ? AbortSignal.any([request.signal, controller.signal]) : controller.signal;
  const check = checker(signal);
  const provisional = { id: job.id, tier: request.tier, startedAt: job.startedAt.toISOString() } as BackupManifest;
  return readArtifactInto(
    context.repository.store,
    provisional,
    artifact,
    key,
    { ...check, abort: (error) => controller.abort(error) },
    {
      keyMaterial: context.encoding.key?.material ?? null,
      requireEncryption: encryptionRequired(context.encoding),
      signal: request.signal,
      onStoredBytes: (bytes) => request.onProgress?.({ phase: 'verify', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
    },
  );
}
