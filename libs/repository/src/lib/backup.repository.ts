import {
  BackupManifest,
  BackupNotFoundError,
  ConfigError,
  IntegrityError,
  InvariantError,
  MANIFEST_FORMAT_VERSION,
  RequestOptions,
  SigningKeyring,
  Store,
  StorageNotFoundError,
  TierName,
  compareBackupsByAge,
  hasStoreFeature,
  isManifestIntact,
  manifestSignatureProblem,
  requiresSignatures,
  sealManifest,
} from '@rookery/core';
import { repositoryLayout } from './repository.layout';

/** A manifest found in the store that cannot be trusted, and why. */
export interface DamagedManifest {
  key: string;
  problem: string;
  /** What to do about it, when the reader knew (an unsigned manifest: `rookery repository sign`). */
  hint?: string;
}

export interface BackupListing {
  backups: BackupManifest[];
  damaged: DamagedManifest[];
}

/**
 * The repository's backup catalogue as the store holds it: manifests are the truth. A backup is
 * listed only when its manifest exists, parses and matches its own checksum (and, with a signing
 * keyring, carries a valid signature); everything else under the backups prefix is either an
 * artifact of a listed backup or garbage from a crashed run.
 */
export class BackupRepository {
  /** `keyring`: with any key, manifests are signed when committed and refused unsigned on read. */
  constructor(
    readonly store: Store,
    readonly keyring: SigningKeyring | null = null,
  ) {}

  /** Every intact backup of the tier (or of all tiers), oldest first (newest last). */
  async list(tier?: TierName): Promise<BackupListing> {
    const prefixes = tier ? [repositoryLayout.backupsPrefix(tier)] : [''];
    const keys: string[] = [];
    for (const prefix of prefixes) {
      for await (const object of this.store.list(prefix)) {
        if (repositoryLayout.isManifestKey(object.key)) keys.push(object.key);
      }
    }
    const backups: BackupManifest[] = [];
    const damaged: DamagedManifest[] = [];
    for (const key of keys.sort()) {
      try {
        backups.push(await this.readManifest(key));
      } catch (error) {
        if (!(error instanceof IntegrityError)) throw error;
        damaged.push({ key, problem: error.message, ...(error.hint ? { hint: error.hint } : {}) });
      }
    }
    backups.sort(compareBackupsByAge);
    return { backups, damaged };
  }

  /**
   * The backup with this id, or the newest one for 'latest'. A backup whose manifest is there but
   * cannot be trusted (damaged, unsigned, forged) is an IntegrityError naming why, not "not found";
   * so is 'latest' when only such manifests are there.
   */
  async find(tier: TierName, idOrLatest: string): Promise<BackupManifest> {
    const { backups, damaged } = await this.list(tier);
    const found = idOrLatest === 'latest' ? backups.at(-1) : backups.find((backup) => backup.id === idOrLatest);
    if (found) return found;
    const untrusted =
      idOrLatest === 'latest' ? damaged.at(-1) : damaged.find((entry) => repositoryLayout.backupIdOf(entry.key) === idOrLatest);
    if (untrusted)
      throw new IntegrityError(untrusted.problem, {
        hint: untrusted.hint ?? 'the repository holds this backup, but its manifest cannot be trusted; restore another backup',
      });
    throw new BackupNotFoundError(tier, idOrLatest);
  }

  /**
   * The manifest at `key`, checked: valid JSON, its checksum, a format this rookery reads and, when
   * the repository requires signatures, a signature by one of the keyring's keys (a checksum
   * anyone can recompute; the signature only the key's holder). `requireSignature: false` reads
   * an unsigned manifest (`rookery repository sign` upgrading a repository).
   */
  async readManifest(key: string, options: { requireSignature?: boolean } = {}): Promise<BackupManifest> {
    const text = await readAll(await this.store.read(key));
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(text) as BackupManifest;
    } catch (error) {
      throw new IntegrityError(`manifest '${key}' is not valid JSON`, { cause: error });
    }
    if (!isManifestIntact(manifest)) {
      throw new IntegrityError(`manifest '${key}' does not match its checksum`, {
        hint: 'the manifest was altered or damaged after it was written',
      });
    }
    if (manifest.formatVersion > MANIFEST_FORMAT_VERSION) {
      throw new IntegrityError(
        `manifest '${key}' has format version ${manifest.formatVersion}; this rookery reads up to ${MANIFEST_FORMAT_VERSION}`,
        { hint: 'upgrade rookery' },
      );
    }
    if (options.requireSignature !== false && requiresSignatures(this.keyring)) {
      const problem = manifestSignatureProblem(manifest, this.keyring);
      if (problem) throw new IntegrityError(`manifest '${key}' ${problem}`, { hint: signatureHint(problem, manifest.tier, this.keyring) });
    }
    return manifest;
  }

  /**
   * The ids of every folder under the tier's backups/, whatever its date: a manifest's, or the
   * artifacts of a run that crashed. Such an id must not be reused, or its objects would be
   * overwritten, and two backups listed under one id could not be told apart. Every date folder
   * counts, not only the new backup's: an id chosen by the caller can carry any date.
   */
  async backupIdsInUse(tier: TierName): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const object of this.store.list(repositoryLayout.backupsPrefix(tier))) {
      const id = repositoryLayout.backupIdOf(object.key);
      if (id) ids.add(id);
    }
    return ids;
  }

  /**
   * Removes what a backup that did not complete wrote under its folder, so that a failed run leaves
   * nothing behind (on a full disk, the tar of a failed run would fail every later backup too). A
   * backup whose manifest exists is complete (a commit whose answer was lost) and is left alone.
   * Returns the keys removed; a removal that fails throws, leaving the rest. `signal` gives up on
   * a store that does not answer.
   */
  async discard(backup: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>, options: RequestOptions = {}): Promise<string[]> {
    const startedAt = new Date(backup.startedAt);
    if (await this.store.stat(repositoryLayout.manifestKey(backup.tier, backup.id, startedAt), options)) return [];
    const keys: string[] = [];
    for await (const object of this.store.list(this.folderOf(backup), options)) keys.push(object.key);
    for (const key of keys) await this.store.remove(key, options);
    return keys;
  }

  manifestKeyOf(backup: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>): string {
    return repositoryLayout.manifestKey(backup.tier, backup.id, new Date(backup.startedAt));
  }

  /** The folder (key prefix) holding a backup's objects. */
  folderOf(backup: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>): string {
    return repositoryLayout.backupFolder(backup.tier, backup.id, new Date(backup.startedAt));
  }

  artifactKey(manifest: Pick<BackupManifest, 'tier' | 'id' | 'startedAt'>, artifact: string): string {
    return repositoryLayout.artifactKey(manifest.tier, manifest.id, new Date(manifest.startedAt), artifact);
  }

  /**
   * Makes a backup exist. Called only after every artifact write has resolved (durable). Each
   * artifact is checked to be present with the stored size the manifest claims, so a manifest
   * never points at a missing or short object; the manifest is created only if absent, signed
   * when the repository has a signing key. Resolves with the manifest as written.
   */
  async commit(checksummed: BackupManifest): Promise<BackupManifest> {
    if (!isManifestIntact(checksummed)) {
      throw new InvariantError(`refusing to commit manifest of backup '${checksummed.id}' without its checksum`);
    }
    const manifest = this.seal(checksummed);
    for (const artifact of manifest.artifacts) {
      const key = this.artifactKey(manifest, artifact.name);
      const info = await this.store.stat(key);
      if (!info) throw new StorageNotFoundError(key, { hint: 'the artifact vanished before the manifest was written' });
      if (info.size !== artifact.storedBytes) {
        throw new IntegrityError(
          `artifact '${artifact.name}' of backup '${manifest.id}' has ${info.size} bytes in the store, expected ${artifact.storedBytes}`,
        );
      }
    }
    await this.lockArtifacts(manifest);
    const key = repositoryLayout.manifestKey(manifest.tier, manifest.id, new Date(manifest.startedAt));
    await this.store.write(key, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), { ifAbsent: true });
    return manifest;
  }

  /**
   * Replaces a backup's manifest by the same one signed with the repository's signing key
   * (`rookery repository sign`, after every artifact verified). Resolves with the signed manifest.
   */
  async resign(manifest: BackupManifest): Promise<BackupManifest> {
    const signed = this.seal(manifest);
    await this.store.write(this.manifestKeyOf(signed), Buffer.from(`${JSON.stringify(signed, null, 2)}\n`));
    return signed;
  }

  /** The manifest signed when a keyring requires signatures; a keyring that only verifies cannot write. */
  seal(manifest: BackupManifest): BackupManifest {
    if (!requiresSignatures(this.keyring)) return manifest;
    if (!this.keyring.signing) {
      throw new ConfigError('the repository requires signed manifests, but no signing key is configured', ['integrity.keyFile'], {
        hint: 'set integrity.keyFile (or encryption.keyFile); integrity.verifyKeyFiles only verify',
      });
    }
    return sealManifest(manifest, this.keyring.signing);
  }

  /**
   * Where the store supports Object Lock, puts a COMPLIANCE retention on every artifact until the
   * backup's retention date (SOX): not even the bucket's owner can delete them early. Done before
   * the manifest, so a backup that exists is a locked one. A store without Object Lock is left
   * as is; `rookery info` reports that limitation.
   */
  async lockArtifacts(manifest: BackupManifest): Promise<boolean> {
    if (!hasStoreFeature(this.store, 'objectLock') || !(await this.store.objectLock()).supported) return false;
    const until = new Date(manifest.retentionUntil);
    for (const artifact of manifest.artifacts) await this.store.retain(this.artifactKey(manifest, artifact.name), until);
    return true;
  }
}

/** What to do about a signature problem of one of the tier's records (`record`: what it is, for the last resort). */
export function signatureHint(problem: string, tier: TierName, keyring: SigningKeyring, record = 'manifest'): string {
  if (problem === 'is not signed')
    return `written before signing was configured, or forged; run rookery repository sign --tier ${tier} to sign what verifies`;
  if (problem.includes('unknown key')) {
    const configured = keyring.signing ? ` (the configured key is ${keyring.signing.id})` : '';
    return `wrong key${configured}: configure the key this repository was written with, or add it to integrity.verifyKeyFiles; otherwise the ${record} was forged`;
  }
  return `the ${record} was altered after it was signed: do not ${record === 'manifest' ? 'restore' : 'trust'} it`;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}
