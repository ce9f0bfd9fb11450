import { BackupManifest, ConfigError, IntegrityError, TierName } from '@rookery/core';
import { WalArchive } from '@rookery/repository';
import { BackupVerifyService } from './backup-verify.service';
import { EngineContext } from './engine.context';
import { ProgressListener } from './engine.progress';

/** What `rookery repository sign` did with one manifest (or with the WAL archive's system record). */
export interface ManifestSigning {
  /** The backup's id; for the WAL system record, its key. */
  backup: string;
  key: string;
  /** signed: verified and signed now; current: already signed by the signing key; failed: left as it was. */
  outcome: 'signed' | 'current' | 'failed';
  problem?: string;
}

/**
 * The upgrade of a repository written before signing was configured: each unsigned manifest (and
 * each signed by an older key of the keyring) is signed with the signing key, but only after every
 * artifact of its backup was re-read and matched the manifest. A manifest the repository does not
 * trust for another reason (damaged, altered after it was signed, an unknown key) is never signed:
 * signing would launder a forgery. The WAL archive's system record is signed last, when it names the
 * system of the newest physical backup now trusted (or there is none). Running it again signs
 * nothing new.
 */
export class ManifestSigningService {
  constructor(
    private readonly context: EngineContext,
    private readonly verifier: BackupVerifyService,
  ) {}

  async signTier(tier: TierName, options: { signal?: AbortSignal; onProgress?: ProgressListener } = {}): Promise<ManifestSigning[]> {
    const { repository } = this.context;
    const signing = repository.keyring?.signing;
    if (!signing) {
      throw new ConfigError('no signing key configured', ['integrity.keyFile'], {
        hint: 'set integrity.keyFile (or encryption.keyFile) in rookery.yaml to the key that is to sign the repository',
      });
    }
    const { backups, damaged } = await repository.list(tier);
    const results: ManifestSigning[] = [];
    const trusted: BackupManifest[] = [];
    for (const backup of backups) {
      const key = repository.manifestKeyOf(backup);
      if (backup.signature?.keyId === signing.id) results.push({ backup: backup.id, key, outcome: 'current' });
      else results.push(await this.verifyAndSign(backup, key, options));
      if (results.at(-1)?.outcome !== 'failed') trusted.push(backup);
    }
    for (const entry of damaged) {
      const unsigned = await this.unsignedManifest(entry.key);
      if (unsigned) results.push(await this.verifyAndSign(unsigned, entry.key, options));
      else results.push({ backup: entry.key, key: entry.key, outcome: 'failed', problem: entry.problem });
      if (unsigned && results.at(-1)?.outcome !== 'failed') trusted.push(unsigned);
    }
    const newest = trusted
      .filter((backup) => backup.method === 'physical')
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt))
      .at(-1);
    const system = await new WalArchive(repository.store, repository.keyring).signSystem(tier, newest?.postgres ?? null);
    if (system.outcome !== 'absent') results.push({ backup: system.key, ...system });
    return results;
  }

  /** The manifest at `key` when its only fault is that it is unsigned; null when it is damaged or signed. */
  private async unsignedManifest(key: string): Promise<BackupManifest | null> {
    try {
      const manifest = await this.context.repository.readManifest(key, { requireSignature: false });
      return manifest.signature ? null : manifest;
    } catch (error) {
      if (error instanceof IntegrityError) return null;
      throw error;
    }
  }

  private async verifyAndSign(
    manifest: BackupManifest,
    key: string,
    options: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<ManifestSigning> {
    const verified = await this.verifier.verifyManifest(manifest, options);
    const failed = verified.artifacts.find((artifact) => !artifact.ok);
    if (failed) {
      return {
        backup: manifest.id,
        key,
        outcome: 'failed',
        problem: `artifact '${failed.name}' failed verification: ${failed.error?.message}`,
      };
    }
    await this.context.repository.resign(manifest);
    return { backup: manifest.id, key, outcome: 'signed' };
  }
}
