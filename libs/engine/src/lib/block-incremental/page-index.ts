import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IntegrityError } from '@rookery/core';
import { FieldReader, FieldWriter } from './binary-fields';
import { ExactReader } from './exact-reader';
import { FILE_DIGEST_BYTES, PAGE_DIGEST_BYTES, PAGE_SIZE, pageCountOf } from './page-layout';
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

const MAGIC = Buffer.from('RKPAGIDX', 'latin1');
export const PAGE_INDEX_VERSION = 1;
const KIND_CODES: Record<IndexEntryKind, number> = { paged: 1, whole: 2, directory: 3, symlink: 4 };
const KINDS: Record<number, IndexEntryKind> = { 1: 'paged', 2: 'whole', 3: 'directory', 4: 'symlink' };
const END = 0;

/** Orders paths by their UTF-8 bytes: the index's order, the same in every locale and runtime. */
export function comparePaths(left: string, right: string): number {
  return Buffer.compare(Buffer.from(left, 'utf8'), Buffer.from(right, 'utf8'));
}

/**
 * Collects a backup's index entries in the order its tar delivers them and writes them out sorted
 * by path. Entries wait in a SpillStore (memory bounded; the paths alone stay in memory).
 *
 * Format (version 1, big-endian): 'RKPAGIDX', u16 version, u32 page size, u8 page digest bytes;
 * per entry, in path order: u8 kind (1 paged, 2 whole, 3 directory, 4 symlink), u16-length UTF-8
 * path, then for paged and whole files u64 size and the 32-byte file digest, for paged files
 * ceil(size / page size) page digests, for a symlink its u16-length target; then u8 0, u32 entry
 * count and the SHA-256 of every byte before it.
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

  /** The serialized index. The writer's spill store must stay open until the stream ended. */
  serialize(): Readable {
    const paths = [...this.entries.keys()].sort(comparePaths);
    const entries = this.entries;
    const spill = this.spill;
    return Readable.from(
      (async function* () {
        const sha256 = createHash('sha256');
        const emit = (bytes: Buffer) => (sha256.update(bytes), bytes);
        yield emit(new FieldWriter().bytes(MAGIC).u16(PAGE_INDEX_VERSION).u32(PAGE_SIZE).u8(PAGE_DIGEST_BYTES).toBuffer());
        for (const path of paths) yield emit(await spill.read(entries.get(path) as SpillHandle));
        const end = emit(new FieldWriter().u8(END).u32(paths.length).toBuffer());
        yield Buffer.concat([end, sha256.digest()]);
      })(),
      { objectMode: false },
    );
  }
}

function encodeEntry(entry: IndexEntry): Buffer {
  const fields = new FieldWriter().u8(KIND_CODES[entry.kind]).text(entry.path);
  if (entry.kind === 'paged' || entry.kind === 'whole') fields.u64(entry.size).bytes(entry.fileDigest);
  if (entry.kind === 'paged') fields.bytes(entry.pageDigests);
  if (entry.kind === 'symlink') fields.text(entry.linkTarget);
  return fields.toBuffer();
}

/**
 * The entries of a serialized page index in path order, checked as they are read: header, kinds,
 * strictly increasing paths, and at the end the entry count and the SHA-256 of the whole index.
 * `label` names the index in errors ("page index of backup X").
 */
export async function* readPageIndex(source: AsyncIterable<Buffer>, label: string): AsyncGenerator<IndexEntry> {
  const reader = new ExactReader(source, label, { sha256: true });
  const fields = new FieldReader(reader);
  const magic = await fields.bytes(MAGIC.length, 'the header');
  if (!magic.equals(MAGIC)) throw new IntegrityError(`${label} is not a rookery page index (no RKPAGIDX header)`);
  const version = await fields.u16('the version');
  if (version !== PAGE_INDEX_VERSION) {
    throw new IntegrityError(`${label} has format version ${version}; this rookery reads version ${PAGE_INDEX_VERSION}`, {
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
  let previous: string | null = null;
  let count = 0;
  for (;;) {
    const code = await fields.u8('an entry kind');
    if (code === END) break;
    const kind = KINDS[code];
    if (!kind)
      throw new IntegrityError(`${label} has an entry of unknown kind ${code} at offset ${reader.offset - 1}: the index is damaged`);
    const path = await fields.text('a path');
    if (previous !== null && comparePaths(previous, path) >= 0) {
      throw new IntegrityError(`${label} lists '${path}' after '${previous}': the index is damaged (paths must be sorted and unique)`);
    }
    previous = path;
    count++;
    yield await readEntryBody(fields, kind, path);
  }
  const expected = await fields.u32('the entry count');
  const computed = reader.digestSoFar();
  const stored = await fields.bytes(32, 'the index checksum');
  if (expected !== count || !computed.equals(stored)) {
    throw new IntegrityError(`${label} is damaged: its checksum or entry count does not match its content`);
  }
  if (!(await reader.atEnd())) throw new IntegrityError(`${label} has bytes after its end`);
}

async function readEntryBody(fields: FieldReader, kind: IndexEntryKind, path: string): Promise<IndexEntry> {
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

/**
 * A page index loaded for lookups by path (the parent's, while an incremental is taken): the page
 * digests wait in a SpillStore, only paths, sizes and file digests stay in memory.
 */
export class PageIndexLookup {
  private constructor(
    private readonly entries: Map<string, Omit<IndexEntry, 'pageDigests'> & { pageDigests: SpillHandle | null }>,
    private readonly spill: SpillStore,
  ) {}

  static async load(source: AsyncIterable<Buffer>, label: string, spill: SpillStore): Promise<PageIndexLookup> {
    const entries = new Map<string, Omit<IndexEntry, 'pageDigests'> & { pageDigests: SpillHandle | null }>();
    for await (const entry of readPageIndex(source, label)) {
      const pageDigests = entry.pageDigests.length > 0 ? await spill.append(entry.pageDigests) : null;
      entries.set(entry.path, { ...entry, pageDigests });
    }
    return new PageIndexLookup(entries, spill);
  }

  /** An index with no entries: every file is new against it. */
  static none(): PageIndexLookup {
    return new PageIndexLookup(new Map(), new SpillStore({ memoryBytes: 0 }));
  }

  has(path: string): boolean {
    return this.entries.has(path);
  }

  async get(path: string): Promise<IndexEntry | undefined> {
    const entry = this.entries.get(path);
    if (!entry) return undefined;
    return { ...entry, pageDigests: entry.pageDigests ? await this.spill.read(entry.pageDigests) : EMPTY };
  }

  /** The paths, sorted. */
  paths(): string[] {
    return [...this.entries.keys()];
  }
}
