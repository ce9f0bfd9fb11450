import { once } from 'node:events';
import { Writable } from 'node:stream';
import * as tar from 'tar';
import { BackupManifest, RookeryError, TierName } from '@rookery/core';
import { readArtifact } from './artifact.codec';
import { EngineContext } from './engine.context';
import { ProgressListener } from './engine.progress';

export interface ArtifactCheck {
  name: string;
  ok: boolean;
  storedBytes: number;
  /** Entries listed in the archive (tar members). */
  entries?: number;
  error?: { code: string; message: string };
}

export interface VerifyResult {
  backup: string;
  tier: TierName;
  ok: boolean;
  artifacts: ArtifactCheck[];
}

/**
 * Re-reads every artifact of a backup from the store and checks it end to end: stored sha256 and
 * size, decryption, decompression, logical sha256, and that the archive lists. It writes nothing.
 */
export class BackupVerifyService {
  constructor(private readonly context: EngineContext) {}

  async verify(
    tier: TierName,
    backup: string,
    options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
  ): Promise<VerifyResult> {
    const { repository } = this.context;
    const manifest = await repository.find(tier, backup);
    const artifacts: ArtifactCheck[] = [];
    for (const artifact of manifest.artifacts) {
      const check: ArtifactCheck = { name: artifact.name, ok: false, storedBytes: artifact.storedBytes };
      try {
        check.entries = await this.listArchive(manifest, artifact, options);
        check.ok = true;
      } catch (error) {
        if (!(error instanceof RookeryError)) throw error;
        check.error = { code: error.code, message: error.message };
      }
      artifacts.push(check);
    }
    return { backup: manifest.id, tier, ok: artifacts.every((check) => check.ok), artifacts };
  }

  private async listArchive(
    manifest: BackupManifest,
    artifact: BackupManifest['artifacts'][number],
    options: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<number> {
    const { repository } = this.context;
    const key = this.context.encoding.key;
    let entries = 0;
    const sink: Writable =
      artifact.kind === 'base-tar'
        ? (tar.t({ onReadEntry: () => void entries++ }) as unknown as Writable)
        : new Writable({ write: (_chunk, _encoding, callback) => callback() });
    const closed = artifact.kind === 'base-tar' ? once(sink, 'end').catch(() => undefined) : Promise.resolve();
    await readArtifact(repository.store, manifest, artifact, repository.artifactKey(manifest, artifact.name), sink, {
      keyMaterial: key?.material ?? null,
      signal: options.signal,
      onStoredBytes: (bytes) =>
        options.onProgress?.({ phase: 'verify', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
    });
    await closed;
    return entries;
  }
}
