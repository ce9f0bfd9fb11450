// Is a file handed to wal-push really the WAL file its name says? Pure, and without any import:
// the foreground of asynchronous archiving (wal-archiver.foreground.ts, loaded by bin/rookery.js
// before any library) checks with it as the background archiver and the full CLI do.

/**
 * XLOG_PAGE_MAGIC (src/include/access/xlog_internal.h) by PostgreSQL major: the first two bytes of
 * every WAL page, little-endian. A major's WAL is readable only by that major.
 */
export const WAL_PAGE_MAGIC_BY_MAJOR: Readonly<Record<number, number>> = {
  10: 0xd097,
  11: 0xd098,
  12: 0xd101,
  13: 0xd106,
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
};

const KNOWN_MAGICS = new Set(Object.values(WAL_PAGE_MAGIC_BY_MAJOR));

/** XLP_LONG_HEADER: the first page of a segment carries the long header. */
const XLP_LONG_HEADER = 0x0002;

/**
 * XLogLongPageHeaderData: xlp_magic (uint16, 0), xlp_info (uint16, 2), xlp_tli (uint32, 4),
 * xlp_pageaddr (uint64, 8), xlp_rem_len (uint32, 16), padding to 24, xlp_sysid (uint64, 24),
 * xlp_seg_size (uint32, 32), xlp_xlog_blcksz (uint32, 36). Little-endian on the platforms
 * PostgreSQL runs on here.
 */
export const WAL_LONG_HEADER_BYTES = 40;

/** The first page's long header of a WAL segment. */
export interface WalLongPageHeader {
  magic: number;
  /** The segment's first LSN, as the page says. */
  pageAddress: bigint;
  /** pg_control's system identifier, as a decimal string (what pg_control_system() shows). */
  systemIdentifier: string;
  segmentSize: number;
  blockSize: number;
}

/** What the repository knows of the server that archives into a tier (the first push records it). */
export interface WalArchiveIdentity {
  systemIdentifier: string;
  segmentSize: number;
}

/** The verdict on one file: the reason to refuse it, else the header (null for files without one). */
export type WalFileCheck = { problem: string } | { problem: null; header: WalLongPageHeader | null };

const SEGMENT_NAME = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$/;
const MIN_SEGMENT_SIZE = 1024 * 1024;
const MAX_SEGMENT_SIZE = 1024 * 1024 * 1024;

/**
 * Checks a WAL file from its name, its size and its first bytes (at least WAL_LONG_HEADER_BYTES
 * when the file has them). Timeline history and backup history files are text: not checked. A
 * segment must start with a long page header of a known PostgreSQL major whose page address is the
 * start of the segment its name gives, and be exactly the segment size it declares; a .partial is
 * exempt from the size (pg_receivewal and a promotion leave shorter or padded ones), and one that
 * holds no WAL yet (all zeros where the header goes) passes. With `expected`, the header's system
 * identifier and segment size must be the repository's.
 */
export function checkWalFile(name: string, size: number, head: Buffer, expected?: WalArchiveIdentity | null): WalFileCheck {
  const segment = SEGMENT_NAME.exec(name);
  if (!segment) return { problem: null, header: null };
  const partial = segment[4] !== undefined;
  const first = head.subarray(0, Math.min(size, WAL_LONG_HEADER_BYTES));
  if (partial && first.every((byte) => byte === 0)) return { problem: null, header: null };
  if (first.length < WAL_LONG_HEADER_BYTES) {
    return { problem: `WAL file '${name}' is ${size} bytes, too short for a WAL page header` };
  }
  const header = readLongPageHeader(first);
  const problem =
    headerProblem(name, header, segment) ?? sizeProblem(name, size, header, partial) ?? identityProblem(name, header, expected);
  return problem ? { problem } : { problem: null, header };
}

function readLongPageHeader(bytes: Buffer): WalLongPageHeader & { info: number } {
  return {
    magic: bytes.readUInt16LE(0),
    info: bytes.readUInt16LE(2),
    pageAddress: bytes.readBigUInt64LE(8),
    systemIdentifier: bytes.readBigUInt64LE(24).toString(),
    segmentSize: bytes.readUInt32LE(32),
    blockSize: bytes.readUInt32LE(36),
  };
}

function headerProblem(name: string, header: WalLongPageHeader & { info: number }, segment: RegExpExecArray): string | null {
  if (!KNOWN_MAGICS.has(header.magic)) {
    return `WAL file '${name}' does not start with a WAL page header (magic 0x${header.magic.toString(16).padStart(4, '0')} is no PostgreSQL version's)`;
  }
  const { segmentSize } = header;
  if (
    (header.info & XLP_LONG_HEADER) === 0 ||
    !isPowerOfTwo(segmentSize) ||
    segmentSize < MIN_SEGMENT_SIZE ||
    segmentSize > MAX_SEGMENT_SIZE
  ) {
    return `WAL file '${name}' does not start with a segment's long page header`;
  }
  const start = (BigInt(`0x${segment[2]}`) << 32n) + BigInt(`0x${segment[3]}`) * BigInt(segmentSize);
  if (header.pageAddress !== start) {
    return `WAL file '${name}' holds the WAL segment starting at ${formatLsn(header.pageAddress)}, not the one its name gives (${formatLsn(start)})`;
  }
  return null;
}

function sizeProblem(name: string, size: number, header: WalLongPageHeader, partial: boolean): string | null {
  if (partial || size === header.segmentSize) return null;
  return `WAL file '${name}' is ${size} bytes, not a whole segment of ${header.segmentSize} bytes`;
}

function identityProblem(name: string, header: WalLongPageHeader, expected: WalArchiveIdentity | null | undefined): string | null {
  if (!expected) return null;
  if (header.systemIdentifier !== expected.systemIdentifier) {
    return `WAL file '${name}' comes from database system ${header.systemIdentifier}, but this repository archives system ${expected.systemIdentifier}`;
  }
  if (header.segmentSize !== expected.segmentSize) {
    return `WAL file '${name}' has segments of ${header.segmentSize} bytes, but this repository archives segments of ${expected.segmentSize} bytes`;
  }
  return null;
}

function isPowerOfTwo(value: number): boolean {
  return value > 0 && (value & (value - 1)) === 0;
}

function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}
