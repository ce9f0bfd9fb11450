import { once } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';
import {
  ArtifactRecord,
  BackupManifest,
  CompressionSpec,
  IncrementalChainPolicy,
  IntegrityError,
  InvariantError,
  PHYSICAL_DATA_KINDS,
  rootCauseOf,
} from '@rookery/core';
import { createDecompressStream } from '@rookery/pipeline';
import { BackupRepository } from '@rookery/repository';
import { ReadArtifactOptions, keyMaterialFor, readArtifact } from './artifact.codec';
import type { EngineContext } from './engine.context';
import { encryptionRequired } from '@rookery/wal';
import { PageIndexLookup, PageIndexWriter, SpillStore, buildPageIndex } from './block-incremental';
import { resolveChain } from './logical-incremental.service';

/**
 * Block-level incrementals of a physical tier (issue 17), the parts the backup and the restore
 * share with nothing else: which backup an incremental is taken against (or why a full is taken
 * instead), the parent's page indexes, the index of a tar as it is stored, and the chain of
 * artifacts a restore combines. Formats and invariants: block-incremental/README.md.
 */

/** Memory each spill store (an index being written, a parent's index loaded) keeps before its temporary file. */
export const INDEX_SPILL_MEMORY_BYTES = 16 * 1024 * 1024;

/** Which tar of a physical backup an artifact belongs to: 'base' (the data directory) or 'tablespace:<oid>'. */
export type TarKey = string;

export function tarKeyOf(artifact: Pick<ArtifactRecord, 'tablespace'>): TarKey {
  return artifact.tablespace ? `tablespace:${artifact.tablespace.oid}` : 'base';
}

/** The artifact of `manifest` that holds the files of a tar (a full tar or an incremental of it), if any. */
export function dataArtifactOf(manifest: BackupManifest, key: TarKey): ArtifactRecord | undefined {
  return manifest.artifacts.find((artifact) => PHYSICAL_DATA_KINDS.includes(artifact.kind) && tarKeyOf(artifact) === key);
}

/** The page index `manifest` recorded of a tar, if any. */
export function pageIndexOf(manifest: BackupManifest, key: TarKey): ArtifactRecord | undefined {
  return manifest.artifacts.find((artifact) => artifact.kind === 'page-index' && tarKeyOf(artifact) === key);
}

/** The parent an incremental is taken against: the chain from its full to it, oldest first. */
export interface IncrementalParent {
  parent: BackupManifest;
  chain: BackupManifest[];
}

/**
 * The backup a new incremental of the tier is taken against — its newest physical backup — or why
 * a full is taken instead: none to chain to, another database system, a backup without page
 * indexes (taken before the tier took incrementals), or the chain at its policy bound (its full
 * `fullEveryDays` old, or its incrementals storing more than `maxChainFraction` of the full).
 * `backups` oldest first, as the repository lists them.
 */
export function chooseIncrementalParent(
  backups: readonly BackupManifest[],
  options: { policy: IncrementalChainPolicy; systemIdentifier: string; now: Date },
): IncrementalParent | { reason: string } {
  const physical = backups.filter((backup) => backup.method === 'physical');
  const parent = physical.at(-1);
  if (!parent) return { reason: 'the tier has no backup to take an incremental against' };
  if (parent.postgres.systemIdentifier !== options.systemIdentifier) {
    return {
      reason: `the newest backup ${parent.id} is of database system ${parent.postgres.systemIdentifier}, not ${options.systemIdentifier}`,
    };
  }
  if (!parent.artifacts.some((artifact) => artifact.kind === 'page-index')) {
    return { reason: `the newest backup ${parent.id} has no page index (taken before the tier took incrementals)` };
  }
  const chain = resolveChain(physical, parent);
  const full = chain[0];
  const ageDays = (options.now.getTime() - Date.parse(full.startedAt)) / 86_400_000;
  if (ageDays >= options.policy.fullEveryDays) {
    return {
      reason: `the chain's full backup ${full.id} is ${ageDays.toFixed(1)} days old (policy: a full every ${options.policy.fullEveryDays} days)`,
    };
  }
  const incrementalBytes = chain.slice(1).reduce((sum, backup) => sum + backup.storedBytes, 0);
  if (incrementalBytes > options.policy.maxChainFraction * full.storedBytes) {
    return {
      reason: `the chain's incrementals store ${incrementalBytes} bytes, more than ${options.policy.maxChainFraction} of its full backup ${full.id} (${full.storedBytes} bytes)`,
    };
  }
  return { parent, chain };
}

/** What an artifact reader needs: the backup's repository and how to decrypt. */
export interface ChainReadOptions {
  repository: BackupRepository;
  keyMaterialOf: (manifest: BackupManifest) => Buffer | null;
  requireEncryption: boolean;
  signal?: AbortSignal;
  onStoredBytes?: (artifact: ArtifactRecord, bytes: number) => void;
  /** See ReadArtifactOptions.decodedCheckedByCaller. */
  decodedCheckedByCaller?: boolean;
}

/** Decoded chunks an artifact read may run ahead of its consumer (up to 4 MiB each). */
const DECODED_CHUNKS_AHEAD = 8;

/** How the engine reads artifacts of a chain: its primary repository and its encryption settings. */
export function chainReadOptions(context: Pick<EngineContext, 'repository' | 'encoding'>, signal?: AbortSignal): ChainReadOptions {
  return {
    repository: context.repository,
    keyMaterialOf: (manifest) => keyMaterialFor(manifest, context.encoding),
    requireEncryption: encryptionRequired(context.encoding),
    signal,
  };
}

/** How an artifact of a chain is read: its backup's key, the encryption demanded, cancellation, progress. */
export function artifactReadOptions(manifest: BackupManifest, artifact: ArtifactRecord, options: ChainReadOptions): ReadArtifactOptions {
  return {
    keyMaterial: options.keyMaterialOf(manifest),
    requireEncryption: options.requireEncryption,
    signal: options.signal,
    onStoredBytes: options.onStoredBytes && ((bytes) => options.onStoredBytes?.(artifact, bytes)),
  };
}

/**
 * An artifact's decoded bytes as an async iterable, fetched (and every check of readArtifact made)
 * only once iteration starts: a chain's full tar is read after its incrementals, and an S3 read
 * opened early would sit idle meanwhile. Iteration fails with the read's own error (the integrity
 * error naming the artifact, not the broken pipe it leaves).
 */
export function decodedArtifact(manifest: BackupManifest, artifact: ArtifactRecord, options: ChainReadOptions): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      // Chunk by chunk as the decoder made them (object mode): a byte-mode PassThrough hands its
      // async iterator every buffered chunk concatenated into a new buffer, a copy of each byte.
      const sink = new PassThrough({ objectMode: true, highWaterMark: DECODED_CHUNKS_AHEAD });
      const failures: unknown[] = [];
      const read = readArtifact(
        options.repository.store,
        manifest,
        artifact,
        options.repository.artifactKey(manifest, artifact.name),
        sink,
        { ...artifactReadOptions(manifest, artifact, options), decodedCheckedByCaller: options.decodedCheckedByCaller },
      ).catch((error: unknown) => {
        failures.push(error);
        sink.destroy(error instanceof Error ? error : new Error(String(error)));
      });
      try {
        for await (const chunk of sink) yield chunk as Buffer;
      } catch (error) {
        await read;
        throw ofBackup(manifest, failures.length > 0 ? rootCauseOf([...failures, error]) : error);
      } finally {
        if (!sink.readableEnded) sink.destroy();
      }
      await read;
      if (failures.length > 0) throw ofBackup(manifest, rootCauseOf(failures));
    },
  };
}

/** A damaged artifact of a chain names its backup: the artifact's name alone is the same in every link. */
function ofBackup(manifest: BackupManifest, error: unknown): unknown {
  if (!(error instanceof IntegrityError) || error.message.includes(manifest.id)) return error;
  return new IntegrityError(`backup ${manifest.id}: ${error.message}`, { hint: error.hint, cause: error });
}

/**
 * The links of `chain` (a backup's chain, its full first) whose page indexes the newest link's
 * index needs: from the newest link whose indexes are all full (a full backup, or an incremental
 * that stored full indexes) to the end. Manifests only.
 */
export function indexChainOf(chain: readonly BackupManifest[]): BackupManifest[] {
  const isDelta = (backup: BackupManifest) => backup.artifacts.some((artifact) => artifact.kind === 'page-index' && artifact.pageIndex);
  let start = chain.length - 1;
  while (start > 0 && isDelta(chain[start])) start--;
  return chain.slice(start);
}

/**
 * The page index of each tar of the newest backup of `chain` (its full first, as resolveChain
 * gives it; every manifest trusted), loaded for lookups (digests in `spill`): the chain's indexes
 * read oldest first from the newest link with full indexes (indexChainOf), each delta applied on
 * top of its parent's and checked against it. `only` limits it to one tar. A link's index that is
 * missing, damaged, or does not apply is an error naming that backup.
 */
export async function loadChainIndexes(
  chain: readonly BackupManifest[],
  options: ChainReadOptions & { spill: SpillStore; only?: TarKey },
): Promise<Map<TarKey, PageIndexLookup>> {
  let indexes = new Map<TarKey, PageIndexLookup>();
  for (const link of indexChainOf(chain)) {
    const next = new Map<TarKey, PageIndexLookup>();
    for (const artifact of link.artifacts.filter((entry) => entry.kind === 'page-index')) {
      const key = tarKeyOf(artifact);
      if (options.only !== undefined && key !== options.only) continue;
      const label = `page index '${artifact.name}' of backup ${link.id}`;
      // A tar the previous link lacks (a tablespace created since) starts from nothing: its index must be full.
      const lookup = indexes.get(key) ?? PageIndexLookup.empty(options.spill);
      await lookup.advance(decodedArtifact(link, artifact, options), label, link.id, { deltaOf: artifact.pageIndex?.deltaOf ?? null });
      next.set(key, lookup);
    }
    // A tar this link lacks (a tablespace dropped) is gone from the chain's indexes.
    indexes = next;
  }
  const newest = chain[chain.length - 1];
  if (options.only === undefined && !indexes.has('base')) {
    throw new InvariantError(`backup ${newest.id} has no page index of its data directory`);
  }
  return indexes;
}

/** The page index of each tar of the parent an incremental is taken against, loaded through its chain. */
export async function loadParentIndexes(
  parent: IncrementalParent,
  options: ChainReadOptions & { spill: SpillStore },
): Promise<Map<TarKey, PageIndexLookup>> {
  return loadChainIndexes(parent.chain, options);
}

/**
 * A tar on its way to the store, also read into a page index (decoded first when the server
 * compressed it): `stored` is what the store reads; `index` settles once the tar ended, with the
 * index of its files. The store's pace sets the pace of both. The chunks must not be reused by
 * their producer after the store wrote them (the index may still hold them): no slab reuse here.
 */
export function indexWhileStoring(
  source: Readable,
  options: { label: string; spill: SpillStore; compression?: CompressionSpec },
): { stored: Readable; index: Promise<PageIndexWriter> } {
  const decode = options.compression
    ? createDecompressStream(options.compression, { label: options.label, offload: true })
    : new PassThrough();
  const index = buildPageIndex(decode as AsyncIterable<Buffer>, options.label, new PageIndexWriter(options.spill));
  // Heard at once: a tar that fails is reported by the store write, the index's failure follows.
  index.catch((error: unknown) => source.destroy(error instanceof Error ? error : new Error(String(error))));
  async function* tee(): AsyncGenerator<Buffer> {
    let ended = false;
    try {
      for await (const chunk of source) {
        if (!decode.write(chunk)) await drained(decode);
        yield chunk as Buffer;
      }
      decode.end();
      ended = true;
    } finally {
      // A store write that failed stops reading here: the index is of no use then.
      if (!ended) decode.destroy(new InvariantError(`the tar ${options.label} was not stored to its end`));
    }
  }
  return { stored: Readable.from(tee(), { objectMode: false }), index };
}

/** Resolves once `stream` drained, rejects when it fails or closes first. */
async function drained(stream: Writable): Promise<void> {
  const closed = new AbortController();
  const onClose = () => closed.abort(new InvariantError('the page index stopped reading its tar'));
  stream.once('close', onClose);
  try {
    await once(stream, 'drain', { signal: closed.signal });
  } catch (error) {
    throw closed.signal.aborted ? closed.signal.reason : error;
  } finally {
    stream.off('close', onClose);
  }
}
