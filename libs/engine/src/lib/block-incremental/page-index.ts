import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { FieldReader, FieldWriter } from './binary-fields';
import { ExactReader } from './exact-reader';
import { FILE_DIGEST_BYTES, PAGE_DIGEST_BYTES, PAGE_SIZE, fileDigestOfPages, pageCountOf } from './page-layout';
import { SpillHandle, SpillStore } from './spill-store';

export type IndexEntryKind = 'paged' | 'whole' | 'directory' | 'symlink';

/** What a backup's page index knows of one member of its base tar. */
export interface IndexEntry {
  path: string;
  kind: IndexEntryKind;
  /** Bytes of content (0 for a directory or a symbolic link). */
  size: number;
  /** SHA-256 of the content ('whole'), of the page digests ('paged'); empty otherwise. */
  fileDigest: Buffer;
  /** The page digests in page order, PAGE_DIGEST_BYTES each ('paged'; empty otherwise). */
  pageDigests: Buffer;
  /** A symbolic link's target ('' otherwise). */
  linkTarget: string;
}

/**
 * An entry only a delta index holds: a paged file of the parent whose content changed (its new
 * size and file digest, and the pages whose digest differs from the parent's or that the parent
 * lacks, as `u32 page` + digest records in increasing page order), or a path of the parent that
 * this backup lacks.
 */
export type DeltaRecord =
  | { kind: 'paged-delta'; path: string; size: number; fileDigest: Buffer; pages: Buffer }
  | { kind: 'removed'; path: string };

export type PageIndexRecord = IndexEntry | DeltaRecord;

/** What a page index's header says: a full index, or a delta of backup `backupId`'s index against its parent's. */
export interface PageIndexHeader {
  version: number;
  delta: { backupId: string; parentId: string } | null;
}

const MAGIC = Buffer.from('RKPAGIDX', 'latin1');
export const PAGE_INDEX_VERSION = 2;
const READABLE_VERSIONS = [1, 2];
const FORM_FULL = 0;
const FORM_DELTA = 1;
const KIND_CODES: Record<IndexEntryKind | DeltaRecord['kind'], number> = {
  paged: 1,
  whole: 2,
  directory: 3,
  symlink: 4,
  'paged-delta': 5,
  removed: 6,
};
const KINDS: Record<number, IndexEntryKind | DeltaRecord['kind']> = {
  1: 'paged',
  2: 'whole',
  3: 'directory',
  4: 'symlink',
  5: 'paged-delta',
  6: 'removed',
};
const END = 0;
/** A delta's page record: u32 page number, then the page's digest. */
const PAGE_RECORD_BYTES = 4 + PAGE_DIGEST_BYTES;

/** Orders paths by their UTF-8 bytes: the index's order, the same in every locale and runtime. */
export function comparePaths(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

function encodeHeader(delta: PageIndexHeader['delta']): Buffer {
  const fields = new FieldWriter().bytes(MAGIC).u16(PAGE_INDEX_VERSION).u32(PAGE_SIZE).u8(PAGE_DIGEST_BYTES);
  if (!delta) return fields.u8(FORM_FULL).toBuffer();
  return fields.u8(FORM_DELTA).text(delta.backupId).text(delta.parentId).toBuffer();
}

/** A serialized index: the header, the entries as `entries` yields them (in path order), the trailer. */
function serializeIndex(delta: PageIndexHeader['delta'], entries: () => AsyncIterable<Buffer>): Readable {
  return Readable.from(
    (async function* () {
      const sha256 = createHash('sha256');
      const emit = (bytes: Buffer) => (sha256.update(bytes), bytes);
      yield emit(encodeHeader(delta));
      let count = 0;
      for await (const entry of entries()) {
        count++;
        yield emit(entry);
      }
      const end = emit(new FieldWriter().u8(END).u32(count).toBuffer());
      yield Buffer.concat([end, sha256.digest()]);
    })(),
    { objectMode: false },
  );
}

/**
 * Collects a backup's index entries in the order its tar delivers them and writes them out sorted
 * by path, as a full index or as a delta against the parent's. Entries wait in a SpillStore
 * (memory bounded; the paths alone stay in memory).
 *
 * Format (version 2, big-endian): 'RKPAGIDX', u16 version, u32 page size, u8 page digest bytes,
 * u8 form (0 full; 1 delta, then the u16-length backup id and parent backup id); per entry, in path
 * order: u8 kind (1 paged, 2 whole, 3 directory, 4 symlink; in a delta also 5 paged delta, 6
 * removed), u16-length UTF-8 path, then for paged and whole files u64 size and the 32-byte file
 * digest, for paged files ceil(size / page size) page digests, for a symlink its u16-length
 * target, for a paged delta u64 size, the file digest, u32 n and n records (u32 page, digest);
 * then u8 0, u32 entry count and the SHA-256 of every byte before it. Version 1 is version 2
 * without the form byte (always full).
 */
export class PageIndexWriter {
  private readonly entries = new Map<string, SpillHandle>();

  constructor(private readonly spill: SpillStore) {}

  get size(): number {
    return this.entries.size;
  }

  async add(entry: IndexEntry): Promise<void> {
    if (this.entries.has(entry.path)) throw new IntegrityError(`the base backup holds '${entry.path}' twice`);
    this.entries.set(entry.path, await this.spill.append(encodeEntry(entry)));
  }

  /** The serialized full index. The writer's spill store must stay open until the stream ended. */
  serialize(): Readable {
    const paths = [...this.entries.keys()].sort(comparePaths);
    const entries = this.entries;
    const spill = this.spill;
    return serializeIndex(null, async function* () {
      for (const path of paths) yield await spill.read(entries.get(path) as SpillHandle);
    });
  }

  /**
   * The serialized index as a delta against `parent` (the parent backup's index of the same tar):
   * entries new or changed (a paged file the parent has as a paged file: only its changed pages),
   * paths the parent had and this backup lacks as removed, unchanged entries left out. Applied to
   * the parent's index (PageIndexLookup.advance) it gives exactly the full index `serialize`
   * writes. Both spill stores must stay open until the stream ended.
   */
  serializeDelta(parent: PageIndexLookup, header: { backupId: string; parentId: string }): Readable {
    const paths = [...this.entries.keys()].sort(comparePaths);
    const parentPaths = parent.paths();
    const entries = this.entries;
    const spill = this.spill;
    return serializeIndex(header, async function* () {
      let at = 0;
      const removedBefore = function* (path: string | null) {
        for (; at < parentPaths.length && (path === null || comparePaths(parentPaths[at], path) < 0); at++) {
          yield new FieldWriter().u8(KIND_CODES.removed).text(parentPaths[at]).toBuffer();
        }
      };
      for (const path of paths) {
        yield* removedBefore(path);
        const encoded = await spill.read(entries.get(path) as SpillHandle);
        const before = parent.meta(path);
        if (!before) {
          yield encoded;
          continue;
        }
        at++;
        const entry = decodeEntry(encoded);
        if (sameEntry(entry, before)) continue;
        if (entry.kind !== 'paged' || before.kind !== 'paged') {
          yield encoded;
          continue;
        }
        yield encodePagedDelta(entry, await parent.pageDigestsOf(path));
      }
      yield* removedBefore(null);
    });
  }
}

/** Whether an entry says what the parent's entry says (page digests follow from the file digest). */
function sameEntry(entry: IndexEntry, before: Omit<IndexEntry, 'pageDigests'>): boolean {
  return (
    entry.kind === before.kind &&
    entry.size === before.size &&
    entry.fileDigest.equals(before.fileDigest) &&
    entry.linkTarget === before.linkTarget
  );
}

function encodeEntry(entry: IndexEntry): Buffer {
  const fields = new FieldWriter().u8(KIND_CODES[entry.kind]).text(entry.path);
  if (entry.kind === 'paged' || entry.kind === 'whole') fields.u64(entry.size).bytes(entry.fileDigest);
  if (entry.kind === 'paged') fields.bytes(entry.pageDigests);
  if (entry.kind === 'symlink') fields.text(entry.linkTarget);
  return fields.toBuffer();
}

/** The changed pages of a paged file against the parent's page digests of it. */
function encodePagedDelta(entry: IndexEntry, parentDigests: Buffer): Buffer {
  const pages = pageCountOf(entry.size);
  const parentPages = parentDigests.length / PAGE_DIGEST_BYTES;
  const records: Buffer[] = [];
  for (let page = 0; page < pages; page++) {
    const offset = page * PAGE_DIGEST_BYTES;
    const digest = entry.pageDigests.subarray(offset, offset + PAGE_DIGEST_BYTES);
    if (page < parentPages && parentDigests.subarray(offset, offset + PAGE_DIGEST_BYTES).equals(digest)) continue;
    records.push(new FieldWriter().u32(page).bytes(digest).toBuffer());
  }
  return new FieldWriter()
    .u8(KIND_CODES['paged-delta'])
    .text(entry.path)
    .u64(entry.size)
    .bytes(entry.fileDigest)
    .u32(records.length)
    .bytes(Buffer.concat(records))
    .toBuffer();
}

/** An entry as encodeEntry wrote it (from the writer's own spill store: trusted). */
function decodeEntry(encoded: Buffer): IndexEntry {
  const kind = KINDS[encoded[0]] as IndexEntryKind;
  const pathLength = encoded.readUInt16BE(1);
  let at = 3 + pathLength;
  const entry: IndexEntry = {
    path: encoded.toString('utf8', 3, at),
    kind,
    size: 0,
    fileDigest: EMPTY,
    pageDigests: EMPTY,
    linkTarget: '',
  };
  if (kind === 'paged' || kind === 'whole') {
    entry.size = Number(encoded.readBigUInt64BE(at));
    entry.fileDigest = encoded.subarray(at + 8, at + 8 + FILE_DIGEST_BYTES);
    at += 8 + FILE_DIGEST_BYTES;
  }
  if (kind === 'paged') entry.pageDigests = encoded.subarray(at, at + pageCountOf(entry.size) * PAGE_DIGEST_BYTES);
  if (kind === 'symlink') entry.linkTarget = encoded.toString('utf8', at + 2, at + 2 + encoded.readUInt16BE(at));
  return entry;
}

/**
 * A serialized page index, opened: its header (read and checked before this resolves), then its
 * records in path order, checked as they are read: kinds (the delta kinds only in a delta),
 * strictly increasing paths, and at the end the entry count and the SHA-256 of the whole index.
 * `label` names the index in errors ("page index of backup X").
 */
export async function openPageIndex(
  source: AsyncIterable<Buffer>,
  label: string,
): Promise<{ header: PageIndexHeader; records: AsyncGenerator<PageIndexRecord> }> {
  const reader = new ExactReader(source, label, { sha256: true });
  const fields = new FieldReader(reader);
  const magic = await fields.bytes(MAGIC.length, 'the header');
  if (!magic.equals(MAGIC)) throw new IntegrityError(`${label} is not a rookery page index (no RKPAGIDX header)`);
  const version = await fields.u16('the version');
  if (!READABLE_VERSIONS.includes(version)) {
    throw new IntegrityError(`${label} has format version ${version}; this rookery reads versions ${READABLE_VERSIONS.join(' and ')}`, {
      hint: 'restore with the rookery version that took the backup, or a newer one',
    });
  }
  const pageSize = await fields.u32('the page size');
  const digestBytes = await fields.u8('the page digest size');
  if (pageSize !== PAGE_SIZE || digestBytes !== PAGE_DIGEST_BYTES) {
    throw new IntegrityError(
      `${label} was made for ${pageSize}-byte pages with ${digestBytes}-byte digests; rookery uses ${PAGE_SIZE} and ${PAGE_DIGEST_BYTES}`,
    );
  }
  const form = version === 1 ? FORM_FULL : await fields.u8('the form');
  if (form !== FORM_FULL && form !== FORM_DELTA) throw new IntegrityError(`${label} has an unknown form ${form}: the index is damaged`);
  const header: PageIndexHeader = {
    version,
    delta:
      form === FORM_DELTA ? { backupId: await fields.text('the backup id'), parentId: await fields.text('the parent backup id') } : null,
  };
  async function* records(): AsyncGenerator<PageIndexRecord> {
    let previous: string | null = null;
    let count = 0;
    for (;;) {
      const code = await fields.u8('an entry kind');
      if (code === END) break;
      const kind = KINDS[code];
      if (!kind || (!header.delta && (kind === 'paged-delta' || kind === 'removed')))
        throw new IntegrityError(`${label} has an entry of unknown kind ${code} at offset ${reader.offset - 1}: the index is damaged`);
      const path = await fields.text('a path');
      if (previous !== null && comparePaths(previous, path) >= 0) {
        throw new IntegrityError(`${label} lists '${path}' after '${previous}': the index is damaged (paths must be sorted and unique)`);
      }
      previous = path;
      count++;
      yield await readRecordBody(fields, kind, path);
    }
    const expected = await fields.u32('the entry count');
    const computed = reader.digestSoFar();
    const stored = await fields.bytes(32, 'the index checksum');
    if (expected !== count || !computed.equals(stored)) {
      throw new IntegrityError(`${label} is damaged: its checksum or entry count does not match its content`);
    }
    if (!(await reader.atEnd())) throw new IntegrityError(`${label} has bytes after its end`);
  }
  return { header, records: records() };
}

/**
 * The entries of a serialized full page index (version 1 or 2) in path order, checked as
 * openPageIndex checks them. A delta is refused: it means something only on top of its parent's
 * index (PageIndexLookup.advance).
 */
export async function* readPageIndex(source: AsyncIterable<Buffer>, label: string): AsyncGenerator<IndexEntry> {
  const { header, records } = await openPageIndex(source, label);
  if (header.delta) {
    throw new IntegrityError(
      `${label} is a delta against the page index of backup ${header.delta.parentId}: it is read on top of its parent's`,
    );
  }
  for await (const record of records) yield record as IndexEntry;
}

async function readRecordBody(fields: FieldReader, kind: PageIndexRecord['kind'], path: string): Promise<PageIndexRecord> {
  if (kind === 'removed') return { kind, path };
  if (kind === 'paged-delta') {
    const size = await fields.u64(`the size of '${path}'`);
    const fileDigest = await fields.bytes(FILE_DIGEST_BYTES, `the digest of '${path}'`);
    const count = await fields.u32(`the changed page count of '${path}'`);
    if (count > pageCountOf(size)) {
      throw new IntegrityError(`${fields.reader.label} lists ${count} changed pages of '${path}', which has ${pageCountOf(size)}`);
    }
    const pages = Buffer.from(await fields.bytes(count * PAGE_RECORD_BYTES, `the changed pages of '${path}'`));
    return { kind, path, size, fileDigest, pages };
  }
  const entry: IndexEntry = { path, kind, size: 0, fileDigest: EMPTY, pageDigests: EMPTY, linkTarget: '' };
  if (kind === 'paged' || kind === 'whole') {
    entry.size = await fields.u64(`the size of '${path}'`);
    entry.fileDigest = await fields.bytes(FILE_DIGEST_BYTES, `the digest of '${path}'`);
  }
  if (kind === 'paged')
    entry.pageDigests = await fields.bytes(pageCountOf(entry.size) * PAGE_DIGEST_BYTES, `the page digests of '${path}'`);
  if (kind === 'symlink') entry.linkTarget = await fields.text(`the target of '${path}'`);
  return entry;
}

const EMPTY = Buffer.alloc(0);

type LookupEntry = Omit<IndexEntry, 'pageDigests'> & { pageDigests: SpillHandle | null };

/**
 * A page index loaded for lookups by path (the parent's, while an incremental is taken): the page
 * digests wait in a SpillStore, only paths, sizes and file digests stay in memory. Built from a
 * full index, or from a chain of them (`advance`: a full index, then each backup's delta on top).
 */
export class PageIndexLookup {
  private constructor(
    private entries: Map<string, LookupEntry>,
    private readonly spill: SpillStore,
    /** The backup whose index this is, when it was read with `advance` (a delta must name it as its parent). */
    private backupId: string | null,
  ) {}

  /** A full index (a delta is refused: see `advance`). */
  static async load(source: AsyncIterable<Buffer>, label: string, spill: SpillStore): Promise<PageIndexLookup> {
    const entries = new Map<string, LookupEntry>();
    for await (const entry of readPageIndex(source, label)) {
      const pageDigests = entry.pageDigests.length > 0 ? await spill.append(entry.pageDigests) : null;
      entries.set(entry.path, { ...entry, pageDigests });
    }
    return new PageIndexLookup(entries, spill, null);
  }

  /** An index with no entries: every file is new against it. */
  static none(): PageIndexLookup {
    return new PageIndexLookup(new Map(), new SpillStore({ memoryBytes: 0 }), null);
  }

  /** The start of a chain of indexes read with `advance` (digests in `spill`). */
  static empty(spill: SpillStore): PageIndexLookup {
    return new PageIndexLookup(new Map(), spill, null);
  }

  /**
   * Reads backup `backupId`'s index of the tar on top of this one (its parent's, read before):
   * a full index replaces what this holds, a delta is applied. A delta must name `backupId` and
   * the backup this lookup was last advanced to; `expect` (what the backup's manifest says) must
   * agree with the header. Each delta entry is checked against the parent's: a paged delta changes
   * a paged file the parent has, its page records are in increasing order below the new page
   * count, list every page the parent lacks, and the page digests they give hash to the file
   * digest the entry names; a removed path is one the parent has. Returns the entries read.
   */
  async advance(source: AsyncIterable<Buffer>, label: string, backupId: string, expect?: { deltaOf: string | null }): Promise<number> {
    const { header, records } = await openPageIndex(source, label);
    const deltaOf = header.delta?.parentId ?? null;
    if (expect && deltaOf !== expect.deltaOf) {
      await records.return(undefined);
      throw new IntegrityError(
        `${label} is ${deltaOf ? `a delta against backup ${deltaOf}` : 'a full index'}, but its backup's manifest says it is ${expect.deltaOf ? `a delta against backup ${expect.deltaOf}` : 'a full index'}`,
      );
    }
    if (header.delta) {
      if (header.delta.backupId !== backupId) {
        throw new IncrementalChainError(`${label} holds the page index of backup ${header.delta.backupId}: the artifact was moved`);
      }
      if (this.backupId === null) {
        throw new IncrementalChainError(
          `${label} is a delta against backup ${header.delta.parentId}, and no page index of that backup's tar was read before it`,
        );
      }
      if (header.delta.parentId !== this.backupId) {
        throw new IncrementalChainError(
          `${label} is a delta against backup ${header.delta.parentId}, not against backup ${this.backupId}: the chain is out of order`,
        );
      }
    } else {
      this.entries = new Map();
    }
    let count = 0;
    for await (const record of records) {
      count++;
      await this.applyRecord(record, label);
    }
    this.backupId = backupId;
    return count;
  }

  private async applyRecord(record: PageIndexRecord, label: string): Promise<void> {
    const damaged = (what: string) => new IntegrityError(`${label} does not apply to its parent's index: ${what}`);
    if (record.kind === 'removed') {
      if (!this.entries.delete(record.path)) throw damaged(`it removes '${record.path}', which the parent's index lacks`);
      return;
    }
    if (record.kind !== 'paged-delta') {
      const pageDigests = record.pageDigests.length > 0 ? await this.spill.append(record.pageDigests) : null;
      this.entries.set(record.path, { ...record, pageDigests });
      return;
    }
    const before = this.entries.get(record.path);
    if (before?.kind !== 'paged') throw damaged(`it changes pages of '${record.path}', which the parent's index lacks as a relation file`);
    const pages = pageCountOf(record.size);
    const count = record.pages.length / PAGE_RECORD_BYTES;
    // Every page past the parent's must be listed (checked before anything is allocated for them).
    if (pages > pageCountOf(before.size) + count) throw damaged(`it lists too few pages of '${record.path}' for its size ${record.size}`);
    const parentDigests = before.pageDigests ? await this.spill.read(before.pageDigests) : EMPTY;
    const parentPages = Math.min(parentDigests.length / PAGE_DIGEST_BYTES, pages);
    const digests = Buffer.alloc(pages * PAGE_DIGEST_BYTES);
    parentDigests.copy(digests, 0, 0, parentPages * PAGE_DIGEST_BYTES);
    let next = 0;
    for (let at = 0; at < record.pages.length; at += PAGE_RECORD_BYTES) {
      const page = record.pages.readUInt32BE(at);
      if (page < next || page >= pages) throw damaged(`its page ${page} of '${record.path}' is out of order or beyond the file`);
      // Pages the parent lacks must all be listed: none of those skipped (next … page - 1) may be one.
      if (page > next && page > parentPages) {
        throw damaged(`it leaves out page ${Math.max(next, parentPages)} of '${record.path}', which the parent lacks`);
      }
      record.pages.copy(digests, page * PAGE_DIGEST_BYTES, at + 4, at + PAGE_RECORD_BYTES);
      next = page + 1;
    }
    if (next < pages && pages > parentPages) {
      throw damaged(`it leaves out page ${Math.max(next, parentPages)} of '${record.path}', which the parent lacks`);
    }
    if (!fileDigestOfPages(digests).equals(record.fileDigest)) {
      throw damaged(`the page digests of '${record.path}' it gives do not hash to its file digest`);
    }
    this.entries.set(record.path, {
      path: record.path,
      kind: 'paged',
      size: record.size,
      fileDigest: record.fileDigest,
      linkTarget: '',
      pageDigests: digests.length > 0 ? await this.spill.append(digests) : null,
    });
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  get size(): number {
    return this.entries.size;
  }

  async get(path: string): Promise<IndexEntry | undefined> {
    const entry = this.entries.get(path);
    if (!entry) return undefined;
    return { ...entry, pageDigests: entry.pageDigests ? await this.spill.read(entry.pageDigests) : EMPTY };
  }

  /** An entry without its page digests (nothing read from the spill store). */
  meta(path: string): Omit<IndexEntry, 'pageDigests'> | undefined {
    return this.entries.get(path);
  }

  async pageDigestsOf(path: string): Promise<Buffer> {
    const handle = this.entries.get(path)?.pageDigests;
    return handle ? await this.spill.read(handle) : EMPTY;
  }

  /** The paths, sorted. */
  paths(): string[] {
    return [...this.entries.keys()].sort(comparePaths);
  }

  /** The index this lookup holds, serialized as a full index (what PageIndexWriter.serialize writes for the same entries). */
  serialize(): Readable {
    const paths = this.paths();
    return serializeIndex(null, () => this.encodedEntries(paths));
  }

  private async *encodedEntries(paths: string[]): AsyncGenerator<Buffer> {
    for (const path of paths) yield encodeEntry((await this.get(path)) as IndexEntry);
  }
}
