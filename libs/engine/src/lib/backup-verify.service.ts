import { once } from 'node:events';
import { PassThrough, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ArtifactKind, BackupManifest, IntegrityError, RookeryError, TierName, compareBackupIds } from '@rookery/core';
import { repositoryLayout } from '@rookery/repository';
import { encryptionRequired } from '@rookery/wal';
import { assertArtifactEncrypted, readArtifactInto } from './artifact.codec';
import { ChainCheck, checkChain } from './backup-chain';
import { readIncremental } from './block-incremental/incremental-format';
import { PageIndexLookup, readPageIndex } from './block-incremental/page-index';
import { SpillStore } from './block-incremental/spill-store';
import { EngineContext } from './engine.context';
import { ProgressListener } from './engine.progress';
import { ChangesetCheck } from './logical-changeset';
import { resolveChain } from './logical-incremental.service';
import { LogicalTools } from './logical-tools';
import { INDEX_SPILL_MEMORY_BYTES, chainReadOptions, loadChainIndexes, tarKeyOf } from './physical-incremental';

export interface ArtifactCheck {
  name: string;
  kind?: ArtifactKind;
  ok: boolean;
  storedBytes: number;
  /** Entries listed in the archive (tar members, pg_restore --list entries of a dump). */
  entries?: number;
  error?: { code: string; message: string };
}

export interface VerifyResult {
  backup: string;
  tier: TierName;
  ok: boolean;
  artifacts: ArtifactCheck[];
  /**
   * An incremental's chain (its full first), followed through the repository's manifests: each
   * parent present and trusted, of the same kind. Manifests only; the parents' artifacts are
   * verified by verifying them. Absent for a full or a snapshot.
   */
  chain?: ChainCheck;
}

/**
 * Re-reads every artifact of a backup from the store and checks it end to end: stored sha256 and
 * size, decryption, decompression, logical sha256, and that the archive lists: tar for a base
 * backup, `pg_restore --list` for a dump, header and trailer for a changeset, every page digest,
 * block map and the trailer of a block incremental (no parent data needed), and a page index to
 * its trailer (a delta index applied, entry by entry, to its parent's chain of indexes). An incremental's chain of parent manifests is checked too (cheap: one listing), so
 * a broken link is named by the child's verify. It writes nothing.
 */
export class BackupVerifyService {
  constructor(
    private readonly context: EngineContext,
    private readonly logicalTools?: () => Promise<LogicalTools>,
  ) {}

  async verify(
    tier: TierName,
    backup: string,
    options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
  ): Promise<VerifyResult> {
    const manifest = await this.context.repository.find(tier, backup);
    if (backup === 'latest') await this.refuseNewerUntrusted(manifest);
    return this.verifyManifest(manifest, options);
  }

  /** Every artifact of `manifest` re-read and checked, whatever the repository thinks of the manifest itself. */
  async verifyManifest(
    manifest: BackupManifest,
    options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
  ): Promise<VerifyResult> {
    const artifacts: ArtifactCheck[] = [];
    for (const artifact of manifest.artifacts) {
      const check: ArtifactCheck = { name: artifact.name, kind: artifact.kind, ok: false, storedBytes: artifact.storedBytes };
      try {
        check.entries = await this.listArchive(manifest, artifact, options);
        check.ok = true;
      } catch (error) {
        if (!(error instanceof RookeryError)) throw error;
        check.error = { code: error.code, message: error.message };
      }
      artifacts.push(check);
    }
    const chain = manifest.type === 'incremental' ? checkChain(manifest, await this.context.repository.list(manifest.tier)) : undefined;
    return {
      backup: manifest.id,
      tier: manifest.tier,
      ok: artifacts.every((check) => check.ok) && chain?.ok !== false,
      artifacts,
      ...(chain ? { chain } : {}),
    };
  }

  /**
   * `verify latest` answers for the newest manifest in the repository: one newer than the newest
   * trusted backup that cannot be trusted (damaged, unsigned, forged) fails it, named.
   */
  private async refuseNewerUntrusted(newest: BackupManifest): Promise<void> {
    const { damaged } = await this.context.repository.list(newest.tier);
    const newer = damaged.filter((entry) => compareBackupIds(repositoryLayout.backupIdOf(entry.key) ?? '', newest.id) > 0);
    const untrusted = newer.at(-1);
    if (untrusted)
      throw new IntegrityError(untrusted.problem, {
        hint: `the newest manifest of tier '${newest.tier}' cannot be trusted; verify an older backup with --backup ${newest.id}`,
      });
  }

  private async listArchive(
    manifest: BackupManifest,
    artifact: BackupManifest['artifacts'][number],
    options: { signal?: AbortSignal; onProgress?: ProgressListener },
  ): Promise<number> {
    const { repository } = this.context;
    const key = this.context.encoding.key;
    // Refused before a checker starts: it would wait for bytes that never come.
    assertArtifactEncrypted(manifest, artifact, encryptionRequired(this.context.encoding));
    const check = await this.checker(manifest, artifact, options.signal);
    return readArtifactInto(
      repository.store,
      manifest,
      artifact,
      repository.artifactKey(manifest, artifact.name),
      { sink: check.sink, result: check.entries, abort: check.abort },
      {
        keyMaterial: key?.material ?? null,
        requireEncryption: encryptionRequired(this.context.encoding),
        signal: options.signal,
        onStoredBytes: (bytes) =>
          options.onProgress?.({ phase: 'verify', artifact: artifact.name, bytes, totalBytes: artifact.storedBytes }),
      },
    );
  }

  /** What reads the artifact's bytes and says how many entries it holds, by kind. */
  private async checker(
    manifest: BackupManifest,
    artifact: BackupManifest['artifacts'][number],
    signal?: AbortSignal,
  ): Promise<{ sink: Writable; entries: Promise<number>; abort: (error: Error) => void }> {
    const controller = new AbortController();
    const abort = (error: Error) => controller.abort(error);
    if (artifact.kind === 'base-tar' || artifact.kind === 'tablespace-tar') {
      let entries = 0;
      const tar = require('tar') as typeof import('tar');
      const sink = tar.t({ onReadEntry: () => void entries++ }) as unknown as Writable;
      return {
        sink,
        entries: once(sink, 'end').then(
          () => entries,
          () => entries,
        ),
        abort,
      };
    }
    if (artifact.kind === 'base-incremental' || artifact.kind === 'tablespace-incremental') {
      const parentId = manifest.parent;
      if (!parentId) throw new IntegrityError(`backup '${manifest.id}' has incremental artifact '${artifact.name}' but names no parent`);
      // The header must name this backup and its parent: an artifact moved between backups, or a
      // chain out of order, is refused as the restore would refuse it.
      return readerCheck(artifact.name, (source) => readIncremental(source, { backupId: manifest.id, parentId }), isMember);
    }
    if (artifact.kind === 'page-index' && artifact.pageIndex) {
      return this.deltaIndexCheck(manifest, artifact, artifact.pageIndex.deltaOf, signal);
    }
    if (artifact.kind === 'page-index') {
      const label = `the page index '${artifact.name}' of backup ${manifest.id}`;
      return readerCheck(
        artifact.name,
        (source) => readPageIndex(source, label),
        () => true,
      );
    }
    if (artifact.kind === 'pg-manifest') {
      // PostgreSQL's backup_manifest: JSON listing every file of the tar beside it.
      const chunks: Buffer[] = [];
      const sink = new Writable({ write: (chunk: Buffer, _encoding, callback) => (chunks.push(chunk), callback()) });
      const entries = finished(sink).then(() => {
        const files = parsePgManifestFiles(Buffer.concat(chunks).toString('utf8'));
        if (files === null) throw new IntegrityError(`artifact '${artifact.name}' is not a PostgreSQL backup manifest`);
        return files;
      });
      entries.catch(() => undefined);
      return { sink, entries, abort };
    }
    if (artifact.kind === 'changeset') {
      const changes = manifest.logical?.changes;
      if (!changes) throw new IntegrityError(`backup '${manifest.id}' has changeset '${artifact.name}' but no changes section`);
      const sink = new ChangesetCheck(artifact.name, changes);
      const entries = finished(sink).then(() => changes.tables.length);
      // A failed read destroys the sink too; the read's own error is the one reported.
      entries.catch(() => undefined);
      return { sink, entries, abort };
    }
    if (artifact.kind === 'dump' && this.logicalTools) {
      const tools = await this.logicalTools();
      const listing =
        manifest.logical?.format === 'directory'
          ? tools.restore.listTarStream({ signal: controller.signal, workDirectory: tools.workDirectory })
          : tools.restore.listStream({ signal: controller.signal });
      const entries = listing.result.then((toc) => {
        if (toc.length === 0)
          throw new IntegrityError(`artifact '${artifact.name}' is not a usable dump: pg_restore --list shows no entries`);
        return toc.length;
      });
      entries.catch(() => undefined);
      return { sink: listing.sink, entries, abort };
    }
    return { sink: new Writable({ write: (_chunk, _encoding, callback) => callback() }), entries: Promise.resolve(0), abort };
  }

  /**
   * A delta page index: its parent's chain of indexes of the same tar is loaded first (each link's
   * index read and checked; a broken link named), then the delta is applied to it entry by entry
   * (a paged delta's resulting page digests must hash to its file digest, a removed path must be
   * the parent's, …). Entries: the files of the resulting index.
   */
  private async deltaIndexCheck(
    manifest: BackupManifest,
    artifact: BackupManifest['artifacts'][number],
    deltaOf: string,
    signal?: AbortSignal,
  ): Promise<{ sink: Writable; entries: Promise<number>; abort: (error: Error) => void }> {
    const label = `the page index '${artifact.name}' of backup ${manifest.id}`;
    if (manifest.parent !== deltaOf) {
      throw new IntegrityError(`${label} is recorded as a delta against backup ${deltaOf}, but the backup's parent is ${manifest.parent}`);
    }
    const physical = (await this.context.repository.list(manifest.tier)).backups.filter((backup) => backup.method === 'physical');
    const parent = physical.find((backup) => backup.id === deltaOf);
    if (!parent) throw new IntegrityError(`${label} is a delta against backup ${deltaOf}, which is not in the repository (or not trusted)`);
    const spill = new SpillStore({ memoryBytes: INDEX_SPILL_MEMORY_BYTES });
    try {
      const key = tarKeyOf(artifact);
      const indexes = await loadChainIndexes(resolveChain(physical, parent), {
        ...chainReadOptions(this.context, signal),
        spill,
        only: key,
      });
      const lookup = indexes.get(key) ?? PageIndexLookup.empty(spill);
      const check = sourceCheck(artifact.name, async (source) => {
        await lookup.advance(source, label, manifest.id, { deltaOf });
        return lookup.size;
      });
      check.entries.then(
        () => spill.close(),
        () => spill.close(),
      );
      return check;
    } catch (error) {
      await spill.close();
      throw error;
    }
  }
}

/**
 * A sink whose bytes an async reader of a rookery format checks to the end (every digest and the
 * trailer), counting the items `counts` accepts. A refusal stops the sink, so the artifact's read
 * stops too and the reader's error (which names the backup and the file) is the one reported.
 */
function readerCheck<T>(
  name: string,
  read: (source: AsyncIterable<Buffer>) => AsyncIterable<T>,
  counts: (item: T) => boolean,
): { sink: Writable; entries: Promise<number>; abort: (error: Error) => void } {
  return sourceCheck(name, async (source) => {
    let count = 0;
    for await (const item of read(source)) if (counts(item)) count++;
    return count;
  });
}

/** A sink whose bytes `consume` reads to the end and checks, saying how many entries they held (see readerCheck). */
function sourceCheck(
  name: string,
  consume: (source: AsyncIterable<Buffer>) => Promise<number>,
): { sink: Writable; entries: Promise<number>; abort: (error: Error) => void } {
  const sink = new PassThrough();
  const entries = consume(sink);
  entries.catch((error: unknown) => sink.destroy(error instanceof Error ? error : new Error(`artifact '${name}': ${String(error)}`)));
  return { sink, entries, abort: (error) => sink.destroy(error) };
}

/** The events of an incremental that stand for one member of its tar (or one removed). */
function isMember(event: { type: string }): boolean {
  return event.type !== 'page' && event.type !== 'delta-end' && event.type !== 'data' && event.type !== 'whole-end';
}

/** The number of files a PostgreSQL backup_manifest lists, or null when the text is not one. */
export function parsePgManifestFiles(text: string): number | null {
  try {
    const parsed = JSON.parse(text) as { 'PostgreSQL-Backup-Manifest-Version'?: unknown; Files?: unknown };
    return parsed['PostgreSQL-Backup-Manifest-Version'] !== undefined && Array.isArray(parsed.Files) ? parsed.Files.length : null;
  } catch {
    return null;
  }
}
