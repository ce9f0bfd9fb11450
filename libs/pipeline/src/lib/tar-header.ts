import { IntegrityError } from '@rookery/core';

/** The tar block size: headers and the padding of member data. */
export const TAR_BLOCK = 512;

/** A member's header, as PostgreSQL's tar writer (src/port/tar.c) produces it. */
export interface TarHeader {
  /** The member's path as stored (ustar prefix joined), not yet checked. */
  name: string;
  /** '0' regular file, '5' directory, '2' symbolic link; anything else is refused by the extractor. */
  type: string;
  size: number;
  mode: number;
  mtime: number;
  linkName: string;
}

/**
 * Parses one 512-byte tar header, or returns null for a zero block (the end-of-archive marker).
 * The checksum is checked (a damaged header names the archive); sizes and times may be octal or,
 * as PostgreSQL writes values over 8 GiB, base-256.
 */
export function parseTarHeader(block: Buffer, label: string, offset: number): TarHeader | null {
  if (isZeroBlock(block)) return null;
  const stored = tarNumber(block, 148, 8, label, offset);
  let unsigned = 0;
  let signed = 0;
  for (let index = 0; index < TAR_BLOCK; index++) {
    const byte = index >= 148 && index < 156 ? 0x20 : block[index];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Historic writers summed signed chars; GNU tar accepts both, so do we.
  if (stored !== unsigned && stored !== signed) {
    throw new IntegrityError(`tar header at offset ${offset} of ${label} has a bad checksum: the archive is damaged`);
  }
  const name = cString(block, 0, 100);
  // POSIX ustar ("ustar\0") has a prefix field; GNU's old format ("ustar  ") uses those bytes otherwise.
  const prefix = block.toString('latin1', 257, 263) === 'ustar\0' ? cString(block, 345, 155) : '';
  return {
    name: prefix ? `${prefix}/${name}` : name,
    type: block[156] === 0 ? '0' : String.fromCharCode(block[156]),
    size: tarNumber(block, 124, 12, label, offset),
    mode: tarNumber(block, 100, 8, label, offset),
    mtime: tarNumber(block, 136, 12, label, offset),
    linkName: cString(block, 157, 100),
  };
}

export function isZeroBlock(block: Buffer): boolean {
  for (let index = 0; index < TAR_BLOCK; index++) if (block[index] !== 0) return false;
  return true;
}

/**
 * The path a member is written to, relative to the extraction directory ('' for the directory
 * itself): './' and trailing '/' dropped. Absolute paths and '..' are refused: a base backup never
 * holds them, and they would write outside the directory.
 */
export function tarMemberPath(name: string, label: string): string {
  if (name.startsWith('/')) throw new IntegrityError(`tar member '${name}' of ${label} has an absolute path; refusing to extract it`);
  const segments = name.split('/').filter((segment) => segment !== '' && segment !== '.');
  if (segments.includes('..'))
    throw new IntegrityError(`tar member '${name}' of ${label} leads out of the directory; refusing to extract it`);
  return segments.join('/');
}

function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start);
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}

function tarNumber(block: Buffer, start: number, length: number, label: string, offset: number): number {
  if (block[start] & 0x80) {
    // base-256: the first byte's high bit set, the rest big-endian (PostgreSQL: sizes over 8 GiB).
    if (block[start] === 0xff) throw new IntegrityError(`tar header at offset ${offset} of ${label} has a negative number`);
    let value = block[start] & 0x7f;
    for (let index = start + 1; index < start + length; index++) value = value * 256 + block[index];
    if (!Number.isSafeInteger(value)) throw new IntegrityError(`tar header at offset ${offset} of ${label} has a number out of range`);
    return value;
  }
  const text = block
    .toString('latin1', start, start + length)
    .replace(/\0.*$/s, '')
    .trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text))
    throw new IntegrityError(`tar header at offset ${offset} of ${label} has a malformed number '${text}': the archive is damaged`);
  return parseInt(text, 8);
}
