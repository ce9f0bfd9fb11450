import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IncrementalChainError } from '@rookery/core';
import { FieldWriter } from './binary-fields';
import { ExactReader } from './exact-reader';
import {
  END_OF_PAGES,
  ENTRY_TAGS,
  IncrementalHeader,
  MemberMeta,
  encodeHeader,
  encodeMemberStart,
  encodePageRecord,
} from './incremental-format';
import { IndexEntry, PageIndexLookup, PageIndexWriter, comparePaths } from './page-index';
import { PAGE_DIGEST_BYTES, PAGE_SIZE, fileDigestOfPages, isPagedPath, pageCountOf, pageDigest, pageLengthOf } from './page-layout';
import { readServerIncrementalHeader, reconstructedBlockLength, serverIncrementalTarget } from './server-incremental';
import { TarMember, readTarMembers } from './tar-members';

/** Whole files up to this size are held back until their digest says whether they changed. */
const WHOLE_FILE_HOLD_BYTES = 4 * 1024 * 1024;

export interface IncrementalCounts {
  /** Regular files in the new base tar. */
  files: number;
  unchangedFiles: number;
  deltaFiles: number;
  wholeFiles: number;
  removed: number;
  /** Pages read (one digest each) and pages written into the artifact. */
  pagesRead: number;
  pagesStored: number;
  /**
   * PostgreSQL 17+ (serverIncremental): relation files the server sent as INCREMENTAL.* members,
   * and the pages of those files it did not send (neither read nor digested: their digests are the
   * parent's). pagesRead + pagesSkipped is every page of the new backup.
   */
  serverIncrementalFiles: number;
  pagesSkipped: number;
}

const noCounts = (): IncrementalCounts => ({
  files: 0,
  unchangedFiles: 0,
  deltaFiles: 0,
  wholeFiles: 0,
  removed: 0,
  pagesRead: 0,
  pagesStored: 0,
  serverIncrementalFiles: 0,
  pagesSkipped: 0,
});

export interface IncrementalWriting {
  /** The incremental artifact; the new base tar is read as this is read. */
  artifact: Readable;
  /**
   * Settles once the artifact ended: the new backup's full page index (serialize it while its
   * spill store is open: the next incremental compares against it) and what was stored.
   */
  result: Promise<{ index: PageIndexWriter; counts: IncrementalCounts }>;
}

/**
 * Turns a new base tar into an incremental against its parent's page index, in one pass: each page
 * of a relation file is digested once and stored only when the parent's digest differs; other
 * files are stored whole unless their SHA-256 says they did not change; members of the parent that
 * are gone are listed as removed. Memory: one file's page digests and a held-back small file; the
 * new index waits in `spill`.
 */
export function writeIncremental(options: {
  tar: AsyncIterable<Buffer>;
  /** Names the tar in errors. */
  label: string;
  header: IncrementalHeader;
  parent: PageIndexLookup;
  index: PageIndexWriter;
  /**
   * The tar comes from `BASE_BACKUP ... INCREMENTAL` (PostgreSQL 17+) against the parent's
   * backup_manifest: each `INCREMENTAL.<name>` member becomes a delta of `<name>` built from the
   * blocks the server sent, the other pages keeping the parent's digests unread. Every other
   * member goes through the same comparison as a full tar's.
   */
  serverIncremental?: boolean;
}): IncrementalWriting {
  let settle!: { resolve: (value: { index: PageIndexWriter; counts: IncrementalCounts }) => void; reject: (error: unknown) => void };
  const result = new Promise<{ index: PageIndexWriter; counts: IncrementalCounts }>((resolve, reject) => (settle = { resolve, reject }));
  result.catch(() => undefined);
  const counts = noCounts();
  async function* produce(): AsyncGenerator<Buffer> {
    const sha256 = createHash('sha256');
    const emit = (bytes: Buffer) => (sha256.update(bytes), bytes);
    let entries = 0;
    try {
      yield emit(encodeHeader(options.header));
      const reader = new ExactReader(options.tar, options.label);
      const seen = new Set<string>();
      for await (const member of readTarMembers(reader)) {
        const target = options.serverIncremental && member.type === 'file' ? serverIncrementalTarget(member.path) : null;
        const entryMember = target ? { ...member, path: target } : member;
        if (seen.has(entryMember.path)) {
          throw new IncrementalChainError(`${options.label} holds '${entryMember.path}' twice (as itself and as an incremental file)`);
        }
        seen.add(entryMember.path);
        entries++;
        const source = target ? { incrementalPath: member.path, label: options.label } : undefined;
        if (options.serverIncremental && member.type === 'file' && member.path === 'backup_label') {
          yield emit(await combinedBackupLabel(reader, member, options.index, counts, options.label));
          continue;
        }
        for await (const bytes of memberEntry(reader, entryMember, options.parent, options.index, counts, source)) yield emit(bytes);
      }
      for (const path of options.parent.paths().sort(comparePaths)) {
        if (seen.has(path)) continue;
        entries++;
        counts.removed++;
        yield emit(new FieldWriter().u8(ENTRY_TAGS.removed).text(path).toBuffer());
      }
      const end = emit(new FieldWriter().u8(ENTRY_TAGS.end).u32(entries).toBuffer());
      yield Buffer.concat([end, sha256.digest()]);
      settle.resolve({ index: options.index, counts });
    } catch (error) {
      settle.reject(error);
      throw error;
    }
  }
  const artifact = Readable.from(produce(), { objectMode: false });
  // A consumer that stops reading (a failed store write) ends the walk; the result says so.
  artifact.on('close', () => settle.reject(new Error(`the incremental of ${options.label} was not read to its end`)));
  return { artifact, result };
}

async function* memberEntry(
  reader: ExactReader,
  member: TarMember,
  parent: PageIndexLookup,
  index: PageIndexWriter,
  counts: IncrementalCounts,
  /** Set when `member` is the relation file an INCREMENTAL.* member of the server stands for. */
  serverIncremental?: { incrementalPath: string; label: string },
): AsyncGenerator<Buffer> {
  const meta: MemberMeta = { path: member.path, mode: member.mode, mtime: member.mtime };
  const entry: IndexEntry = { path: member.path, kind: 'directory', size: 0, fileDigest: EMPTY, pageDigests: EMPTY, linkTarget: '' };
  if (member.type === 'directory') {
    yield encodeMemberStart(ENTRY_TAGS.directory, meta).toBuffer();
  } else if (member.type === 'symlink') {
    entry.kind = 'symlink';
    entry.linkTarget = member.linkTarget;
    yield encodeMemberStart(ENTRY_TAGS.symlink, meta).text(member.linkTarget).toBuffer();
  } else {
    counts.files++;
    const previous = await parent.get(member.path);
    if (serverIncremental) {
      entry.kind = 'paged';
      yield* serverIncrementalEntry({ reader, member, meta, previous, entry, counts }, serverIncremental);
    } else if (isPagedPath(member.path)) {
      entry.kind = 'paged';
      yield* pagedEntry({ reader, member, meta, previous: previous?.kind === 'paged' ? previous : undefined, entry, counts });
    } else {
      entry.kind = 'whole';
      yield* wholeEntry({ reader, member, meta, previous: previous?.kind === 'whole' ? previous : undefined, entry, counts });
    }
  }
  await index.add(entry);
}

/** What an entry for one regular file is made from: the member (its content next in `reader`) and the parent's entry. */
interface FileEntryInput {
  reader: ExactReader;
  member: TarMember;
  meta: MemberMeta;
  /** The parent's entry of the same kind at this path. */
  previous: IndexEntry | undefined;
  /** The new index's entry, filled in. */
  entry: IndexEntry;
  counts: IncrementalCounts;
}

/** A relation file: the pages whose digest differs from the parent's, or 'unchanged'. */
async function* pagedEntry({ reader, member, meta, previous, entry, counts }: FileEntryInput): AsyncGenerator<Buffer> {
  const pages = pageCountOf(member.size);
  const parentPages = previous ? pageCountOf(previous.size) : 0;
  const digests = Buffer.allocUnsafe(pages * PAGE_DIGEST_BYTES);
  const start = encodeMemberStart(ENTRY_TAGS.delta, meta)
    .u64(member.size)
    .u64(previous?.size ?? 0)
    .u8(previous ? 1 : 0)
    .toBuffer();
  const map = createHash('sha256');
  let started = false;
  for (let page = 0; page < pages; page++) {
    const data = await reader.read(pageLengthOf(member.size, page), `page ${page} of '${member.path}'`);
    const digest = pageDigest(data);
    counts.pagesRead++;
    digests.set(digest, page * PAGE_DIGEST_BYTES);
    const offset = page * PAGE_DIGEST_BYTES;
    if (previous && page < parentPages && previous.pageDigests.subarray(offset, offset + PAGE_DIGEST_BYTES).equals(digest)) continue;
    if (!started) {
      started = true;
      map.update(start);
      yield start;
    }
    const record = encodePageRecord(page, digest);
    map.update(record);
    counts.pagesStored++;
    yield record;
    yield data;
  }
  entry.size = member.size;
  entry.pageDigests = digests;
  entry.fileDigest = fileDigestOfPages(digests);
  if (!started && previous && previous.size === member.size) {
    counts.unchangedFiles++;
    yield encodeMemberStart(ENTRY_TAGS.unchanged, meta).u64(member.size).bytes(entry.fileDigest).toBuffer();
    return;
  }
  counts.deltaFiles++;
  // Cut or emptied without a changed page: the entry still says so.
  if (!started) {
    map.update(start);
    yield start;
  }
  const end = Buffer.concat([encodePageRecord(END_OF_PAGES, EMPTY), entry.fileDigest]);
  map.update(end);
  yield Buffer.concat([end, map.digest().subarray(0, PAGE_DIGEST_BYTES)]);
}

/**
 * Any other file, stored whole, unless a file of the same size in the parent has its SHA-256:
 * such a file (up to WHOLE_FILE_HOLD_BYTES) is held back until its digest is known.
 */
async function* wholeEntry({ reader, member, meta, previous, entry, counts }: FileEntryInput): AsyncGenerator<Buffer> {
  const sha256 = createHash('sha256');
  entry.size = member.size;
  if (previous && previous.size === member.size && member.size <= WHOLE_FILE_HOLD_BYTES) {
    const content = await reader.read(member.size, `the content of '${member.path}'`);
    entry.fileDigest = sha256.update(content).digest();
    if (entry.fileDigest.equals(previous.fileDigest)) {
      counts.unchangedFiles++;
      yield encodeMemberStart(ENTRY_TAGS.unchanged, meta).u64(member.size).bytes(entry.fileDigest).toBuffer();
      return;
    }
    counts.wholeFiles++;
    yield encodeMemberStart(ENTRY_TAGS.whole, meta).u64(member.size).toBuffer();
    yield content;
    yield entry.fileDigest;
    return;
  }
  counts.wholeFiles++;
  yield encodeMemberStart(ENTRY_TAGS.whole, meta).u64(member.size).toBuffer();
  for await (const piece of reader.pieces(member.size, `the content of '${member.path}'`)) {
    sha256.update(piece);
    yield piece;
  }
  entry.fileDigest = sha256.digest();
  yield entry.fileDigest;
}

/**
 * A relation file the server sent as INCREMENTAL.<name>: reconstructed exactly as pg_combinebackup
 * does (reconstruct.c), as a delta on the parent's file. Block b of the new file, for b below the
 * reconstructed length, is the block sent if the server sent it; else the parent's block if b is
 * below the truncation block length and the parent's file has it (its digest copied from the
 * parent's index: never read, never sent); else zeros (a relation extended without WAL, or cut and
 * re-extended), stored as a zero page so the delta rule holds. Memory: the block numbers (≤ 512 KiB)
 * and the file's page digests.
 */
async function* serverIncrementalEntry(
  { reader, member, meta, previous, entry, counts }: FileEntryInput,
  source: { incrementalPath: string; label: string },
): AsyncGenerator<Buffer> {
  const what = `incremental file '${source.incrementalPath}' of ${source.label}`;
  if (!isPagedPath(member.path)) {
    throw new IncrementalChainError(`${what} stands for '${member.path}', which is not a relation file`);
  }
  if (previous?.kind !== 'paged') {
    // The server sends an incremental file only for a file the uploaded manifest lists.
    throw new IncrementalChainError(
      `${what} needs '${member.path}' of the parent backup, which its page index does not hold as a relation file`,
      {
        hint: "the backup_manifest uploaded was not the parent's: take the incremental again against the right parent, or a full backup",
      },
    );
  }
  counts.serverIncrementalFiles++;
  const header = await readServerIncrementalHeader(reader, member.size, what);
  const blockLength = reconstructedBlockLength(header);
  const size = blockLength * PAGE_SIZE;
  // Blocks below this that were not sent are the parent's (pg_combinebackup reads only whole blocks).
  const fromParent = Math.min(header.truncationBlockLength, Math.floor(previous.size / PAGE_SIZE));
  const digests = Buffer.allocUnsafe(blockLength * PAGE_DIGEST_BYTES);
  entry.size = size;
  if (header.blocks.length === 0 && size === previous.size && fromParent >= blockLength) {
    counts.pagesSkipped += blockLength;
    counts.unchangedFiles++;
    entry.pageDigests = previous.pageDigests;
    entry.fileDigest = previous.fileDigest;
    yield encodeMemberStart(ENTRY_TAGS.unchanged, meta).u64(size).bytes(entry.fileDigest).toBuffer();
    return;
  }
  const start = encodeMemberStart(ENTRY_TAGS.delta, meta).u64(size).u64(previous.size).u8(1).toBuffer();
  const map = createHash('sha256').update(start);
  yield start;
  let next = 0;
  for (let page = 0; page < blockLength; page++) {
    const offset = page * PAGE_DIGEST_BYTES;
    let data: Buffer;
    if (next < header.blocks.length && header.blocks[next] === page) {
      next++;
      data = await reader.read(PAGE_SIZE, `block ${page} of ${what}`);
      counts.pagesRead++;
    } else if (page < fromParent) {
      previous.pageDigests.copy(digests, offset, offset, offset + PAGE_DIGEST_BYTES);
      counts.pagesSkipped++;
      continue;
    } else {
      data = ZERO_PAGE;
    }
    const digest = data === ZERO_PAGE ? ZERO_PAGE_DIGEST : pageDigest(data);
    digests.set(digest, offset);
    const record = encodePageRecord(page, digest);
    map.update(record);
    counts.pagesStored++;
    yield record;
    yield data;
  }
  counts.deltaFiles++;
  entry.pageDigests = digests;
  entry.fileDigest = fileDigestOfPages(digests);
  const end = Buffer.concat([encodePageRecord(END_OF_PAGES, EMPTY), entry.fileDigest]);
  map.update(end);
  yield Buffer.concat([end, map.digest().subarray(0, PAGE_DIGEST_BYTES)]);
}

/**
 * An incremental's backup_label names its parent (`INCREMENTAL FROM LSN/TLI`), and PostgreSQL
 * refuses to start on such a label ("this is an incremental backup, not a data directory"): as
 * pg_combinebackup does when it writes the combined backup, the lines go, the rest stays. Stored
 * whole, as a full's backup_label always changes anyway.
 */
async function combinedBackupLabel(
  reader: ExactReader,
  member: TarMember,
  index: PageIndexWriter,
  counts: IncrementalCounts,
  label: string,
): Promise<Buffer> {
  if (member.size > 64 * 1024) {
    throw new IncrementalChainError(`the backup_label of ${label} is ${member.size} bytes: not a backup label`);
  }
  const original = (await reader.read(member.size, `the content of 'backup_label'`)).toString('utf8');
  const content = Buffer.from(
    original
      .split('\n')
      .filter((line) => !/^INCREMENTAL FROM (LSN|TLI): /.test(line))
      .join('\n'),
    'utf8',
  );
  const fileDigest = createHash('sha256').update(content).digest();
  counts.files++;
  counts.wholeFiles++;
  await index.add({ path: member.path, kind: 'whole', size: content.length, fileDigest, pageDigests: EMPTY, linkTarget: '' });
  const meta: MemberMeta = { path: member.path, mode: member.mode, mtime: member.mtime };
  return Buffer.concat([encodeMemberStart(ENTRY_TAGS.whole, meta).u64(content.length).toBuffer(), content, fileDigest]);
}

const EMPTY = Buffer.alloc(0);
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);
const ZERO_PAGE_DIGEST = pageDigest(ZERO_PAGE);

/**
 * The page index of a full backup, from its base tar in one pass (one digest per page of a
 * relation file, a SHA-256 of every other file): what the first incremental compares against.
 */
export async function buildPageIndex(tar: AsyncIterable<Buffer>, label: string, index: PageIndexWriter): Promise<PageIndexWriter> {
  const reader = new ExactReader(tar, label);
  const counts = noCounts();
  const none = PageIndexLookup.none();
  for await (const member of readTarMembers(reader)) {
    // The entry's bytes are an incremental against nothing: read for the index, not kept.
    for await (const bytes of memberEntry(reader, member, none, index, counts)) void bytes;
  }
  return index;
}
