import { IntegrityError } from '@rookery/core';
import { ExactReader } from './exact-reader';
import { PAGE_SIZE } from './page-layout';

/**
 * PostgreSQL 17+'s incremental files (`BASE_BACKUP ... INCREMENTAL`): in place of a relation file
 * `<dir>/<name>` the server sends `<dir>/INCREMENTAL.<name>` holding only the blocks the WAL
 * summaries say changed since the parent backup (src/backend/backup/basebackup_incremental.c,
 * read back by src/bin/pg_combinebackup/reconstruct.c):
 *
 *   u32 magic 0xd3ae1f0d, u32 block count n, u32 truncation block length,
 *   u32 block number × n (relative to the segment, increasing),
 *   zeros up to a multiple of BLCKSZ (only when n > 0: the blocks stay aligned),
 *   the n blocks, BLCKSZ bytes each, in the order of their numbers.
 *
 * Integers are in the server's byte order; every platform rookery runs on is little-endian.
 */
export const INCREMENTAL_MAGIC = 0xd3ae1f0d;
export const INCREMENTAL_PREFIX = 'INCREMENTAL.';
/** Blocks in a 1 GiB relation segment: the server never sends more, nor a longer truncation length. */
export const RELSEG_SIZE = 131_072;

export interface ServerIncrementalHeader {
  /** Block numbers sent, increasing; their pages follow the header in this order. */
  blocks: Uint32Array;
  /**
   * Blocks below it that were not sent are the parent's (or zeros where the parent's file is
   * shorter); from it on, only sent blocks exist (gaps are zeros).
   */
  truncationBlockLength: number;
  /** Bytes before the first page (12 + 4 n, rounded up to BLCKSZ when n > 0). */
  headerLength: number;
}

/** The relation file an `INCREMENTAL.<name>` member stands for, or null for any other path. */
export function serverIncrementalTarget(path: string): string | null {
  const slash = path.lastIndexOf('/');
  const name = path.slice(slash + 1);
  if (!name.startsWith(INCREMENTAL_PREFIX) || name.length === INCREMENTAL_PREFIX.length) return null;
  return `${path.slice(0, slash + 1)}${name.slice(INCREMENTAL_PREFIX.length)}`;
}

/** GetIncrementalHeaderSize: the header's bytes for `count` blocks. */
export function serverIncrementalHeaderLength(count: number): number {
  const raw = 12 + 4 * count;
  return count > 0 && raw % PAGE_SIZE !== 0 ? raw + PAGE_SIZE - (raw % PAGE_SIZE) : raw;
}

/**
 * The reconstructed file's length in blocks, as pg_combinebackup computes it
 * (find_reconstructed_block_length): the truncation block length, or past the highest block sent.
 */
export function reconstructedBlockLength(header: Pick<ServerIncrementalHeader, 'blocks' | 'truncationBlockLength'>): number {
  const last = header.blocks.length > 0 ? (header.blocks[header.blocks.length - 1] as number) : -1;
  return Math.max(header.truncationBlockLength, last + 1);
}

/**
 * Reads and checks an incremental file's header from `reader` (the member's first bytes), leaving
 * the pages next. `memberSize` is the tar member's size: it must be exactly the header and n
 * pages, or the member is not what the server writes.
 */
export async function readServerIncrementalHeader(reader: ExactReader, memberSize: number, what: string): Promise<ServerIncrementalHeader> {
  const refuse = (detail: string) =>
    new IntegrityError(`${what} is not a valid PostgreSQL incremental file: ${detail}`, {
      hint: 'the server sent a damaged base backup; take the incremental again, or a full backup',
    });
  if (memberSize < 12) throw refuse(`${memberSize} bytes, fewer than its 12-byte header`);
  const fixed = await reader.read(12, `the header of ${what}`);
  const magic = fixed.readUInt32LE(0);
  const count = fixed.readUInt32LE(4);
  const truncationBlockLength = fixed.readUInt32LE(8);
  if (magic !== INCREMENTAL_MAGIC) throw refuse(`magic number 0x${magic.toString(16)}, expected 0x${INCREMENTAL_MAGIC.toString(16)}`);
  if (count > RELSEG_SIZE) throw refuse(`block count ${count} exceeds a segment's ${RELSEG_SIZE} blocks`);
  if (truncationBlockLength > RELSEG_SIZE)
    throw refuse(`truncation block length ${truncationBlockLength} exceeds a segment's ${RELSEG_SIZE} blocks`);
  const headerLength = serverIncrementalHeaderLength(count);
  const expected = headerLength + count * PAGE_SIZE;
  if (memberSize !== expected) throw refuse(`${memberSize} bytes where ${count} blocks make ${expected}`);
  const blocks = new Uint32Array(count);
  if (count > 0) {
    const numbers = await reader.read(4 * count, `the block numbers of ${what}`);
    for (let index = 0; index < count; index++) {
      const block = numbers.readUInt32LE(4 * index);
      // The server sorts them (GetFileBackupMethod): the pages can then be taken in one pass.
      if (index > 0 && block <= (blocks[index - 1] as number)) throw refuse(`block ${block} after block ${blocks[index - 1]}`);
      if (block >= RELSEG_SIZE) throw refuse(`block ${block} beyond a segment's ${RELSEG_SIZE} blocks`);
      blocks[index] = block;
    }
    for await (const padding of reader.pieces(headerLength - 12 - 4 * count, `the header padding of ${what}`)) void padding;
  }
  return { blocks, truncationBlockLength, headerLength };
}

/** An incremental file's bytes, as the server writes them (tests, and a reference for the format). */
export function encodeServerIncremental(truncationBlockLength: number, blocks: readonly number[], pages: Buffer): Buffer {
  const header = Buffer.alloc(serverIncrementalHeaderLength(blocks.length));
  header.writeUInt32LE(INCREMENTAL_MAGIC, 0);
  header.writeUInt32LE(blocks.length, 4);
  header.writeUInt32LE(truncationBlockLength, 8);
  blocks.forEach((block, index) => header.writeUInt32LE(block, 12 + 4 * index));
  return Buffer.concat([header, pages]);
}
