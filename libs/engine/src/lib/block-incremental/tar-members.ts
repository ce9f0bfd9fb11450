import { IntegrityError } from '@rookery/core';
import { TAR_BLOCK, parseTarHeader, tarMemberPath } from '@rookery/pipeline';
import { ExactReader } from './exact-reader';

export type MemberType = 'file' | 'directory' | 'symlink';

/** One member of a base backup's tar, as PostgreSQL's tar writer (src/port/tar.c) makes them. */
export interface TarMember {
  /** Relative to the archive's root, without './' or a trailing '/'. */
  path: string;
  type: MemberType;
  /** Bytes of content (0 for a directory or a symbolic link). */
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** A symbolic link's target ('' otherwise). */
  linkTarget: string;
}

const TYPES: Record<string, MemberType> = { '0': 'file', '5': 'directory', '2': 'symlink' };

/**
 * The members of a tar stream in archive order. After each member is yielded, its content (`size`
 * bytes) is next in `reader`: the consumer reads it, or any of it that it leaves is skipped when
 * it asks for the next member. Ends at the end-of-archive block or at the end of the stream at a
 * member boundary. Extended headers (pax, GNU long names) are refused: PostgreSQL never writes them.
 */
export async function* readTarMembers(reader: ExactReader): AsyncGenerator<TarMember> {
  while (!(await reader.atEnd())) {
    const at = reader.offset;
    const header = parseTarHeader(await reader.read(TAR_BLOCK, 'a tar header'), reader.label, at);
    if (!header) return;
    const type = TYPES[header.type];
    if (!type) {
      throw new IntegrityError(
        `tar member '${header.name}' of ${reader.label} has type '${header.type}', which a PostgreSQL base backup never holds`,
      );
    }
    const size = type === 'file' ? header.size : 0;
    const end = reader.offset + size + tarPaddingOf(size);
    const path = tarMemberPath(header.name, reader.label);
    // The archive's root ('./', which GNU tar writes and PostgreSQL does not) is no member to keep.
    if (path !== '' || type !== 'directory')
      yield { path, type, size, mode: header.mode & 0o7777, mtime: header.mtime, linkTarget: header.linkName };
    await skipTo(reader, end, `the content of tar member '${header.name}'`);
  }
}

async function skipTo(reader: ExactReader, end: number, what: string): Promise<void> {
  for await (const piece of reader.pieces(end - reader.offset, what)) void piece;
}

export function tarPaddingOf(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

const ZEROS = Buffer.alloc(2 * TAR_BLOCK);

/** The zeros after `size` bytes of content up to the next tar block. */
export function tarPadding(size: number): Buffer {
  return ZEROS.subarray(0, tarPaddingOf(size));
}

/** The end-of-archive marker: two zero blocks. */
export function tarEnd(): Buffer {
  return ZEROS;
}

/**
 * A ustar header for `member`, as PostgreSQL writes them: directories with a trailing '/',
 * owner 0 (restores extract with --no-same-owner), sizes from 8 GiB in base-256.
 */
export function encodeTarHeader(member: TarMember): Buffer {
  const block = Buffer.alloc(TAR_BLOCK);
  const name = member.type === 'directory' ? `${member.path}/` : member.path;
  const [prefix, base] = splitName(name);
  block.write(base, 0, 100, 'utf8');
  writeOctal(block, 100, 8, member.mode);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  const size = member.type === 'file' ? member.size : 0;
  if (size < 0o77777777777) writeOctal(block, 124, 12, size);
  else writeBase256(block, 124, 12, size);
  writeOctal(block, 136, 12, member.mtime);
  block[156] = member.type === 'file' ? 0x30 : member.type === 'directory' ? 0x35 : 0x32;
  if (Buffer.byteLength(member.linkTarget) > 100) {
    throw new IntegrityError(`symbolic link '${member.path}' points at a target longer than a tar header holds (100 bytes)`);
  }
  block.write(member.linkTarget, 157, 100, 'utf8');
  block.write('ustar\x0000', 257, 8, 'latin1');
  block.write(prefix, 345, 155, 'utf8');
  // The checksum is computed with its own field as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeOctal(block, 148, 7, sum);
  return block;
}

/** A ustar name: up to 100 bytes, with a prefix of up to 155 bytes split at a '/'. */
function splitName(name: string): [string, string] {
  if (Buffer.byteLength(name) <= 100) return ['', name];
  for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) {
    const prefix = name.slice(0, slash);
    const base = name.slice(slash + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(base) <= 100 && base !== '') return [prefix, base];
  }
  throw new IntegrityError(`path '${name}' is too long for a ustar header`);
}

function writeOctal(block: Buffer, start: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, start, length, 'latin1');
}

function writeBase256(block: Buffer, start: number, length: number, value: number): void {
  let rest = value;
  for (let index = start + length - 1; index > start; index--) {
    block[index] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  block[start] = 0x80;
}
