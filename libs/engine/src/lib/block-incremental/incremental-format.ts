import { createHash } from 'node:crypto';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { FieldReader, FieldWriter } from './binary-fields';
import { ExactReader } from './exact-reader';
import { FILE_DIGEST_BYTES, PAGE_DIGEST_BYTES, PAGE_SIZE, pageCountOf, pageDigest, pageLengthOf } from './page-layout';

/*
 * An incremental artifact (version 1, big-endian): 'RKBLKINC', u16 version, u32 page size, u8 page
 * digest bytes, the backup's id and its parent's (u16-length UTF-8); then one entry per member of
 * the new base tar, in its order, and one per member of the parent that is gone; then u8 0, u32
 * entry count, and the SHA-256 of every byte before it. An entry starts with a tag:
 *
 *   1 directory  path, u32 mode, u64 mtime
 *   2 symlink    path, u32 mode, u64 mtime, target
 *   3 unchanged  path, u32 mode, u64 mtime, u64 size, file digest      (content as in the parent)
 *   4 delta      path, u32 mode, u64 mtime, u64 size, u64 parent size, u8 parent has the file;
 *                page records (u32 page number, page digest, the page's bytes) in increasing page
 *                order, ended by u32 0xffffffff; the new content's file digest; the block map's
 *                digest (SHA-256/128 of the entry without the pages' bytes)
 *   5 whole      path, u32 mode, u64 mtime, u64 size, the content, its SHA-256
 *   6 removed    path
 *
 * A delta's new content is the parent's content cut to `size`, with the listed pages written
 * over it; every page the parent did not have is listed. Tags: ENTRY_TAGS.
 */

const MAGIC = Buffer.from('RKBLKINC', 'latin1');
export const INCREMENTAL_VERSION = 1;
export const ENTRY_TAGS = { end: 0, directory: 1, symlink: 2, unchanged: 3, delta: 4, whole: 5, removed: 6 } as const;
export const END_OF_PAGES = 0xffffffff;

export interface IncrementalHeader {
  backupId: string;
  parentId: string;
}

export interface MemberMeta {
  path: string;
  mode: number;
  mtime: number;
}

/** What reading an incremental yields, in stream order. */
export type IncrementalEvent =
  | ({ type: 'directory' } & MemberMeta)
  | ({ type: 'symlink'; linkTarget: string } & MemberMeta)
  | ({ type: 'unchanged'; size: number; fileDigest: Buffer } & MemberMeta)
  | ({ type: 'delta'; size: number; parentSize: number; parentPresent: boolean } & MemberMeta)
  /** A page of the delta just announced, its digest checked. */
  | { type: 'page'; path: string; page: number; digest: Buffer; data: Buffer }
  /** The delta's end: its block map checked (page order, pages the parent lacked all present). */
  | { type: 'delta-end'; path: string; fileDigest: Buffer }
  | ({ type: 'whole'; size: number } & MemberMeta)
  /** A piece of the whole file just announced. */
  | { type: 'data'; path: string; data: Buffer }
  /** The whole file's end, its SHA-256 checked. */
  | { type: 'whole-end'; path: string; fileDigest: Buffer }
  | { type: 'removed'; path: string };

export function encodeHeader(header: IncrementalHeader): Buffer {
  return new FieldWriter()
    .bytes(MAGIC)
    .u16(INCREMENTAL_VERSION)
    .u32(PAGE_SIZE)
    .u8(PAGE_DIGEST_BYTES)
    .text(header.backupId)
    .text(header.parentId)
    .toBuffer();
}

export function encodeMemberStart(tag: number, meta: MemberMeta): FieldWriter {
  return new FieldWriter().u8(tag).text(meta.path).u32(meta.mode).u64(meta.mtime);
}

/** The record header of one page of a delta (the page's bytes follow it). */
export function encodePageRecord(page: number, digest: Buffer): Buffer {
  return new FieldWriter().u32(page).bytes(digest).toBuffer();
}

/**
 * Reads an incremental artifact, checking as it goes everything it can without the parent: the
 * header (format, page size, and that it is the backup `expected` and the child of its parent),
 * each page against its digest, each block map against its digest and its rules, each whole file
 * against its SHA-256, and at the end the entry count and the SHA-256 of the whole artifact.
 * Errors name the backup and the file.
 */
export async function* readIncremental(
  source: AsyncIterable<Buffer>,
  expected: IncrementalHeader,
): AsyncGenerator<IncrementalEvent, void, undefined> {
  const label = `incremental backup ${expected.backupId}`;
  const reader = new ExactReader(source, label, { sha256: true });
  const fields = new FieldReader(reader);
  await readHeader(fields, expected);
  let count = 0;
  for (;;) {
    const tag = await fields.u8('an entry tag');
    if (tag === ENTRY_TAGS.end) break;
    count++;
    if (tag === ENTRY_TAGS.removed) {
      yield { type: 'removed', path: await fields.text('a path') };
      continue;
    }
    const meta = await readMemberStart(fields);
    switch (tag) {
      case ENTRY_TAGS.directory:
        yield { type: 'directory', ...meta };
        break;
      case ENTRY_TAGS.symlink:
        yield { type: 'symlink', ...meta, linkTarget: await fields.text(`the target of '${meta.path}'`) };
        break;
      case ENTRY_TAGS.unchanged:
        yield {
          type: 'unchanged',
          ...meta,
          size: await fields.u64(`the size of '${meta.path}'`),
          fileDigest: await fields.bytes(FILE_DIGEST_BYTES, `the digest of '${meta.path}'`),
        };
        break;
      case ENTRY_TAGS.delta:
        yield* readDelta(fields, meta, label);
        break;
      case ENTRY_TAGS.whole:
        yield* readWhole(fields, meta, label);
        break;
      default:
        throw new IntegrityError(`${label} has an entry with unknown tag ${tag} at offset ${reader.offset - 1}: the artifact is damaged`);
    }
  }
  const expectedCount = await fields.u32('the entry count');
  const computed = reader.digestSoFar();
  const stored = await fields.bytes(32, 'the artifact checksum');
  if (expectedCount !== count || !computed.equals(stored)) {
    throw new IntegrityError(`${label} is damaged: its checksum or entry count does not match its content`, {
      hint: 'the chain cannot be restored past this backup; restore an earlier one, and take a new full backup',
    });
  }
  if (!(await reader.atEnd())) throw new IntegrityError(`${label} has bytes after its end`);
}

async function readHeader(fields: FieldReader, expected: IncrementalHeader): Promise<void> {
  const label = fields.reader.label;
  const magic = await fields.bytes(MAGIC.length, 'the header');
  if (!magic.equals(MAGIC)) throw new IntegrityError(`${label} is not a rookery block incremental (no RKBLKINC header)`);
  const version = await fields.u16('the version');
  if (version !== INCREMENTAL_VERSION) {
    throw new IntegrityError(`${label} has format version ${version}; this rookery reads version ${INCREMENTAL_VERSION}`);
  }
  const pageSize = await fields.u32('the page size');
  const digestBytes = await fields.u8('the page digest size');
  if (pageSize !== PAGE_SIZE || digestBytes !== PAGE_DIGEST_BYTES) {
    throw new IntegrityError(
      `${label} was made for ${pageSize}-byte pages with ${digestBytes}-byte digests; rookery uses ${PAGE_SIZE} and ${PAGE_DIGEST_BYTES}`,
    );
  }
  const backupId = await fields.text('the backup id');
  const parentId = await fields.text('the parent id');
  if (backupId !== expected.backupId) {
    throw new IntegrityError(`${label} holds the incremental of backup ${backupId}: the artifact was moved between backups`);
  }
  if (parentId !== expected.parentId) {
    throw new IncrementalChainError(`${label} was taken against backup ${parentId}, not ${expected.parentId}: the chain is broken there`);
  }
}

async function readMemberStart(fields: FieldReader): Promise<MemberMeta> {
  const path = await fields.text('a path');
  return { path, mode: await fields.u32(`the mode of '${path}'`), mtime: await fields.u64(`the mtime of '${path}'`) };
}

async function* readDelta(fields: FieldReader, meta: MemberMeta, label: string): AsyncGenerator<IncrementalEvent> {
  const { path } = meta;
  const size = await fields.u64(`the size of '${path}'`);
  const parentSize = await fields.u64(`the parent size of '${path}'`);
  const parentPresent = (await fields.u8(`the parent flag of '${path}'`)) === 1;
  yield { type: 'delta', ...meta, size, parentSize, parentPresent };
  const map = createHash('sha256');
  map.update(
    encodeMemberStart(ENTRY_TAGS.delta, meta)
      .u64(size)
      .u64(parentSize)
      .u8(parentPresent ? 1 : 0)
      .toBuffer(),
  );
  const pages = pageCountOf(size);
  const firstRequired = firstRequiredPage(size, parentPresent ? parentSize : null);
  const refuse = (what: string) =>
    new IntegrityError(`the block map of '${path}' in ${label} is damaged: ${what}`, {
      hint: 'the chain cannot be restored past this backup; restore an earlier one, and take a new full backup',
    });
  let previous = -1;
  for (;;) {
    const page = await fields.u32(`a page number of '${path}'`);
    if (page === END_OF_PAGES) {
      map.update(encodePageRecord(page, Buffer.alloc(0)));
      break;
    }
    if (page <= previous || page >= pages) throw refuse(`page ${page} after page ${previous} in a file of ${pages} pages`);
    const required = Math.max(firstRequired, previous + 1);
    if (page > required && required < pages) throw refuse(`page ${required}, which the parent does not have as it is now, is missing`);
    previous = page;
    const digest = await fields.bytes(PAGE_DIGEST_BYTES, `the digest of page ${page} of '${path}'`);
    map.update(encodePageRecord(page, digest));
    const data = await fields.bytes(pageLengthOf(size, page), `page ${page} of '${path}'`);
    if (!pageDigest(data).equals(digest)) {
      throw new IntegrityError(`page ${page} of '${path}' in ${label} is damaged: its digest does not match`, {
        hint: 'the chain cannot be restored past this backup; restore an earlier one, and take a new full backup',
      });
    }
    yield { type: 'page', path, page, digest, data };
  }
  const missing = Math.max(firstRequired, previous + 1);
  if (missing < pages) throw refuse(`page ${missing}, which the parent does not have as it is now, is missing`);
  const fileDigest = await fields.bytes(FILE_DIGEST_BYTES, `the digest of '${path}'`);
  map.update(fileDigest);
  const stored = await fields.bytes(PAGE_DIGEST_BYTES, `the block map digest of '${path}'`);
  if (!map.digest().subarray(0, PAGE_DIGEST_BYTES).equals(stored)) throw refuse('its digest does not match');
  yield { type: 'delta-end', path, fileDigest };
}

/**
 * The first page a delta must list whatever its content: the parent's pages before it are whole
 * in both versions and may be left out when unchanged; from it on, the parent lacks the page or has
 * it at another length. With no parent file, every page is required.
 */
export function firstRequiredPage(size: number, parentSize: number | null): number {
  if (parentSize === null) return 0;
  if (parentSize === size) return pageCountOf(size);
  return Math.floor(Math.min(parentSize, size) / PAGE_SIZE);
}

async function* readWhole(fields: FieldReader, meta: MemberMeta, label: string): AsyncGenerator<IncrementalEvent> {
  const { path } = meta;
  const size = await fields.u64(`the size of '${path}'`);
  yield { type: 'whole', ...meta, size };
  const sha256 = createHash('sha256');
  for await (const data of fields.reader.pieces(size, `the content of '${path}'`)) {
    sha256.update(data);
    yield { type: 'data', path, data };
  }
  const fileDigest = await fields.bytes(FILE_DIGEST_BYTES, `the digest of '${path}'`);
  if (!sha256.digest().equals(fileDigest)) {
    throw new IntegrityError(`'${path}' in ${label} is damaged: its SHA-256 does not match`, {
      hint: 'the chain cannot be restored past this backup; restore an earlier one, and take a new full backup',
    });
  }
  yield { type: 'whole-end', path, fileDigest };
}
