/**
 * PostgreSQL log sequence numbers ('16/B374D848') as bigints, and WAL segment names.
 * Pure functions; the segment size defaults to PostgreSQL's 16 MiB.
 */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): bigint {
  const match = LSN_PATTERN.exec(text.trim());
  if (!match) throw new RangeError(`invalid LSN '${text}' (expected e.g. 0/3000028)`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: bigint): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

export function isValidLsn(text: string): boolean {
  return LSN_PATTERN.test(text.trim());
}

/** The name of the WAL segment file that holds `lsn` on `timeline` (e.g. 000000010000000000000003). */
export function walSegmentName(timeline: number, lsn: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const segmentsPerXLogId = 0x100000000n / BigInt(segmentSize);
  const segmentNumber = lsn / BigInt(segmentSize);
  const logId = segmentNumber / segmentsPerXLogId;
  const segment = segmentNumber % segmentsPerXLogId;
  return [BigInt(timeline), logId, segment].map((part) => part.toString(16).toUpperCase().padStart(8, '0')).join('');
}
