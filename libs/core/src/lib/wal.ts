import { DEFAULT_WAL_SEGMENT_SIZE } from './lsn';

/**
 * Names of the files PostgreSQL archives (pg_wal): pure parsing and segment arithmetic.
 *
 *   000000010000000A000000FF            a WAL segment: timeline, log id, segment (8 hex digits each)
 *   000000010000000A000000FF.partial    the last, incomplete segment of a timeline (promotion, pg_receivewal)
 *   00000002.history                    the history file a promotion writes for its new timeline
 *   000000010000000A000000FF.00000028.backup   the backup history file pg_backup_stop archives
 */
export type WalFileKind = 'segment' | 'partial' | 'history' | 'backup';

export interface WalFileName {
  /** The file name PostgreSQL uses (what %f is in archive_command / restore_command). */
  name: string;
  kind: WalFileKind;
  timeline: number;
  /** Segment number on its timeline (log id × segments per log id + segment); null for history files. */
  segmentNumber: bigint | null;
}

const SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;
const PARTIAL = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.partial$/;
const BACKUP = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})\.[0-9A-F]{8}\.backup$/;
const HISTORY = /^([0-9A-F]{8})\.history$/;

function segmentsPerLogId(segmentSize: number): bigint {
  return 0x100000000n / BigInt(segmentSize);
}

/** Parses a WAL file name, or returns null when it is not one PostgreSQL archives. */
export function parseWalFileName(name: string, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): WalFileName | null {
  const history = HISTORY.exec(name);
  if (history) {
    const timeline = parseInt(history[1], 16);
    return timeline > 0 ? { name, kind: 'history', timeline, segmentNumber: null } : null;
  }
  for (const [pattern, kind] of [
    [SEGMENT, 'segment'],
    [PARTIAL, 'partial'],
    [BACKUP, 'backup'],
  ] as const) {
    const match = pattern.exec(name);
    if (!match) continue;
    const timeline = parseInt(match[1], 16);
    const logId = BigInt(`0x${match[2]}`);
    const segment = BigInt(`0x${match[3]}`);
    if (timeline === 0 || segment >= segmentsPerLogId(segmentSize)) return null;
    return { name, kind, timeline, segmentNumber: logId * segmentsPerLogId(segmentSize) + segment };
  }
  return null;
}

/** The segment file name for a segment number on a timeline. */
export function walSegmentFileName(timeline: number, segmentNumber: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): string {
  const perLogId = segmentsPerLogId(segmentSize);
  return [BigInt(timeline), segmentNumber / perLogId, segmentNumber % perLogId]
    .map((part) => part.toString(16).toUpperCase().padStart(8, '0'))
    .join('');
}

/** The first LSN a segment holds. */
export function walSegmentStartLsn(segmentNumber: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  return segmentNumber * BigInt(segmentSize);
}

/** The segment number holding `lsn`. */
export function walSegmentNumberOf(lsn: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): bigint {
  return lsn / BigInt(segmentSize);
}

/** 8-hex-digit timeline, as in file names and the repository's wal/<timeline>/ folders. */
export function formatTimeline(timeline: number): string {
  return timeline.toString(16).toUpperCase().padStart(8, '0');
}

/** The history file name of a timeline: 00000002.history. */
export function walHistoryFileName(timeline: number): string {
  return `${formatTimeline(timeline)}.history`;
}

/** One line of a timeline history file: the parent timeline and where the child switched off it. */
export interface TimelineHistoryEntry {
  timeline: number;
  /** The first LSN that is no longer on `timeline` (the switch point). */
  switchLsn: bigint;
  reason: string;
}

/**
 * Parses a .history file ("1\t0/3000158\tno recovery target specified"): the ancestors of the
 * timeline it is named after, oldest first. Comment and blank lines are skipped.
 */
export function parseTimelineHistory(text: string): TimelineHistoryEntry[] {
  const entries: TimelineHistoryEntry[] = [];
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const [timeline, lsn, ...reason] = trimmed.split(/\s+/);
    const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn ?? '');
    if (!/^\d+$/.test(timeline ?? '') || !match) throw new RangeError(`malformed timeline history line '${trimmed}'`);
    entries.push({
      timeline: Number(timeline),
      switchLsn: (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`),
      reason: reason.join(' '),
    });
  }
  return entries;
}
