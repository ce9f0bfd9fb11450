import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn } from './lsn';
import { BackupManifest } from './manifest';
import { ArchivedWalFile, TimelineSpan, timelineForSegment, timelinePath } from './recovery-window';
import { TimelineHistoryEntry, walSegmentFileName, walSegmentNumberOf } from './wal';

/**
 * WAL continuity of an archive (`rookery verify --wal`): for each backup, every segment from the
 * one holding its start LSN to the newest archived segment on the newest timeline that descends
 * from it, following timeline switches as recovery does. Missing segments are gaps; a gap at or
 * after the backup's stop segment breaks its point-in-time window (nothing past it is reachable);
 * one between start and stop is covered by the WAL inside the base backup. Pure.
 */
export interface WalGap {
  /** First and last missing segment names (the same when one is missing). */
  first: string;
  last: string;
  count: number;
  /** True when the gap cuts short the backup's point-in-time recovery window. */
  breaksWindow: boolean;
}

export interface BackupWalContinuity {
  backup: string;
  /** The timelines followed, oldest first. */
  timelines: number[];
  firstSegment: string;
  /** The newest archived segment on that history; null when none is archived from the backup on. */
  lastSegment: string | null;
  segments: number;
  gaps: WalGap[];
}

export interface WalConflict {
  name: string;
  /** Distinct content digests archived under the name. */
  sha256: string[];
}

export interface WalContinuityReport {
  ok: boolean;
  backups: BackupWalContinuity[];
  conflicts: WalConflict[];
}

export function walContinuity(
  backups: readonly BackupManifest[],
  wal: readonly ArchivedWalFile[],
  histories: ReadonlyMap<number, readonly TimelineHistoryEntry[]>,
  segmentSize = DEFAULT_WAL_SEGMENT_SIZE,
): WalContinuityReport {
  const segments = new Set(wal.filter((entry) => entry.file.kind === 'segment').map((entry) => entry.file.name));
  const timelines = [...new Set([...histories.keys(), ...wal.map((entry) => entry.file.timeline), 1])].sort((a, b) => b - a);
  const results: BackupWalContinuity[] = [];
  for (const backup of backups) {
    if (backup.method !== 'physical' || backup.timeline === null || !backup.startLsn || !backup.stopLsn) continue;
    const startLsn = parseLsn(backup.startLsn);
    const stopSegment = walSegmentNumberOf(parseLsn(backup.stopLsn), segmentSize);
    const path = newestPathThrough(timelines, histories, backup.timeline, parseLsn(backup.stopLsn));
    const firstSegment = walSegmentNumberOf(startLsn, segmentSize);
    const last = lastArchivedOnPath(wal, path, firstSegment, segmentSize);
    const gaps: WalGap[] = [];
    let open: WalGap | null = null;
    for (let segment = firstSegment; last !== null && segment <= last; segment++) {
      const name = walSegmentFileName(timelineForSegment(path, segment, segmentSize), segment, segmentSize);
      if (segments.has(name)) {
        open = null;
        continue;
      }
      if (open) {
        open.last = name;
        open.count++;
        open.breaksWindow ||= segment >= stopSegment;
      } else {
        open = { first: name, last: name, count: 1, breaksWindow: segment >= stopSegment };
        gaps.push(open);
      }
    }
    results.push({
      backup: backup.id,
      timelines: path.map((span) => span.timeline),
      firstSegment: walSegmentFileName(timelineForSegment(path, firstSegment, segmentSize), firstSegment, segmentSize),
      lastSegment: last === null ? null : walSegmentFileName(timelineForSegment(path, last, segmentSize), last, segmentSize),
      segments: last === null ? 0 : Number(last - firstSegment + 1n),
      gaps,
    });
  }
  const conflicts = duplicateConflicts(wal);
  const ok = conflicts.length === 0 && results.every((result) => result.gaps.every((gap) => !gap.breaksWindow));
  return { ok, backups: results, conflicts };
}

/** The history of the newest timeline that branched from `timeline` after `lsn` (or `timeline` itself). */
function newestPathThrough(
  timelines: readonly number[],
  histories: ReadonlyMap<number, readonly TimelineHistoryEntry[]>,
  timeline: number,
  lsn: bigint,
): TimelineSpan[] {
  for (const candidate of timelines) {
    if (candidate < timeline) break;
    const path = timelinePath(candidate, histories);
    const span = path.find((entry) => entry.timeline === timeline);
    if (span && (span.endLsn === null || lsn < span.endLsn)) return path;
  }
  return timelinePath(timeline, histories).filter((span) => span.timeline <= timeline);
}

function lastArchivedOnPath(
  wal: readonly ArchivedWalFile[],
  path: readonly TimelineSpan[],
  from: bigint,
  segmentSize: number,
): bigint | null {
  let last: bigint | null = null;
  for (const entry of wal) {
    const segment = entry.file.segmentNumber;
    if (entry.file.kind !== 'segment' || segment === null || segment < from) continue;
    if (timelineForSegment(path, segment, segmentSize) !== entry.file.timeline) continue;
    if (last === null || segment > last) last = segment;
  }
  return last;
}

/** Names archived with more than one content (.partial files legitimately have several). */
function duplicateConflicts(wal: readonly ArchivedWalFile[]): WalConflict[] {
  const byName = new Map<string, Set<string>>();
  for (const entry of wal) {
    if (entry.file.kind === 'partial') continue;
    const digests = byName.get(entry.file.name) ?? new Set<string>();
    digests.add(entry.sha256);
    byName.set(entry.file.name, digests);
  }
  return [...byName.entries()].filter(([, digests]) => digests.size > 1).map(([name, digests]) => ({ name, sha256: [...digests].sort() }));
}
