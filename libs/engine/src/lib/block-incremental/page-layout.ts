import { createHash, hash } from 'node:crypto';

/** PostgreSQL's block size (BLCKSZ) as built everywhere rookery runs: the unit pages are compared in. */
export const PAGE_SIZE = 8192;
/** Bytes kept of a page's SHA-256. */
export const PAGE_DIGEST_BYTES = 16;
/** Bytes of a file digest (a full SHA-256). */
export const FILE_DIGEST_BYTES = 32;

/**
 * Relation files, the only files compared page by page: a relfilenode, optionally a fork suffix
 * (_fsm, _vm, _init) and a segment number (.1, .2 …), in a database directory (base/<oid>/),
 * global/, or a tablespace's version directory — reached through pg_tblspc/<oid>/ in the data
 * directory's archive, or at the top of a tablespace's own archive (PG_15_<catversion>/<oid>/).
 * Everything else (pg_control, pg_filenode.map, PG_VERSION, WAL, SLRU segments, config files) is
 * small or rewritten whole and is compared as a whole file.
 */
const RELATION_FILE = /^(?:base\/\d+|global|(?:pg_tblspc\/\d+\/)?PG_[^/]+\/\d+)\/\d+(?:_(?:fsm|vm|init))?(?:\.\d+)?$/;

export function isPagedPath(path: string): boolean {
  return RELATION_FILE.test(path);
}

/** Pages of a file of `size` bytes; the last one is short when the size is not a multiple of PAGE_SIZE. */
export function pageCountOf(size: number): number {
  return Math.ceil(size / PAGE_SIZE);
}

/** Bytes of page `page` in a file of `size` bytes. */
export function pageLengthOf(size: number, page: number): number {
  return Math.min(PAGE_SIZE, size - page * PAGE_SIZE);
}

/**
 * A page's digest: SHA-256 truncated to 128 bits. Cryptographic on purpose: a database user
 * chooses the bytes of the rows it writes, and with a non-cryptographic hash (xxHash) could craft
 * a changed page that collides with its old version, which the incremental would then leave out.
 * One call per page (node's one-shot crypto.hash, with the CPU's SHA extensions where present).
 */
export function pageDigest(page: Buffer): Buffer {
  return hash('sha256', page, 'buffer').subarray(0, PAGE_DIGEST_BYTES);
}

/**
 * A paged file's digest: the SHA-256 of its page digests in order. It identifies the content as
 * firmly as the page digests do, and costs no second pass over the bytes (the client's cost on
 * PostgreSQL 15, where the server sends every page, stays one digest per page); a delta restore
 * computes the same from the files it finds.
 */
export function fileDigestOfPages(pageDigests: Buffer): Buffer {
  return createHash('sha256').update(pageDigests).digest();
}
