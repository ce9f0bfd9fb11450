import { DEFAULT_WAL_SEGMENT_SIZE, formatLsn, parseLsn } from './lsn';
import { BackupManifest, isManifestIntact } from './manifest';
import { RecoveryTarget, describeRecoveryTarget, epochMicrosOf, formatRecoveryTime } from './recovery-target';
import { RestoreTargetError } from './rookery.errors';
import { TierName } from './tier';
import { TimelineHistoryEntry, WalFileName, walSegmentFileName, walSegmentNumberOf, walSegmentStartLsn } from './wal';

/**
 * The recoverable window of a tier and the choice of base backup for a recovery target. Pure:
 * the engine lists the manifests and the WAL archive, fetches the timeline history files, and
 * hands them in.
 *
 * Rules (conservative: a target we accept must be reachable):
 *  - usable backups are intact physical backups with the system identifier of the newest one
 *    (an older cluster's backups cannot replay this cluster's WAL), lying on the history of the
 *    newest archived timeline before it switched away (recovery_target_timeline = latest);
 *  - from a backup, recovery can reach the end of the WAL archived contiguously from the segment
 *    holding its stop LSN along that history; the window's time end is the archive time of the
 *    newest segment of that run;
 *  - time targets need finishedAt ≤ T (the stop record's time is not in the manifest; finishedAt
 *    is at or after it), LSN targets stopLsn ≤ target, xid targets nextXid ≤ target, restore
 *    points a located LSN ≥ stopLsn (the engine finds it in the archived WAL).
 */

/** One archived WAL file as the repository lists it. */
export interface ArchivedWalFile {
  file: WalFileName;
  sha256: string;
  archivedAt: Date;
}

/** One timeline on the way to the newest one, with the LSN range it owns. */
export interface TimelineSpan {
  timeline: number;
  /** The first LSN on this timeline (the parent's switch point; 0 for the first). */
  beginLsn: bigint;
  /** The first LSN no longer on this timeline; null for the newest. */
  endLsn: bigint | null;
}

export interface RecoveryInputs {
  backups: readonly BackupManifest[];
  wal: readonly ArchivedWalFile[];
  /** Parsed .history files by the timeline they are named after. */
  histories: ReadonlyMap<number, readonly TimelineHistoryEntry[]>;
  segmentSize?: number;
  /** The tier these come from: named in the hints of planRecovery's errors. */
  tier?: TierName;
}

/** How far recovery can go from one backup. */
export interface BackupReach {
  backup: BackupManifest;
  stopLsn: bigint;
  /** The end of the contiguous archived WAL from the backup's stop segment (stopLsn when none). */
  endLsn: bigint;
  /** Archive time of the newest segment of that run; the backup's finishedAt when none. */
  endTime: Date;
  /** The first segment missing after the run, when WAL beyond it exists in the archive. */
  gapAt: string | null;
}

export interface RecoveryWindow {
  newestTimeline: number;
  path: TimelineSpan[];
  /** Usable backups, oldest first, with their reach. */
  reaches: BackupReach[];
  /** Backups left out and why ("…: different system identifier"). */
  excluded: { id: string; reason: string }[];
  tier?: TierName;
}

export interface RecoveryPlan {
  backup: BackupManifest;
  reach: BackupReach;
  window: RecoveryWindow;
}

/** The newest timeline of the archive: what recovery_target_timeline = latest follows. */
export function newestArchivedTimeline(wal: readonly ArchivedWalFile[], backups: readonly BackupManifest[]): number {
  let newest = 1;
  for (const entry of wal) newest = Math.max(newest, entry.file.timeline);
  for (const backup of backups) newest = Math.max(newest, backup.timeline ?? 1);
  return newest;
}

/** The timelines from the first to `newest`, each with the LSN range it owns (from its history file). */
export function timelinePath(newest: number, histories: ReadonlyMap<number, readonly TimelineHistoryEntry[]>): TimelineSpan[] {
  const ancestors = newest > 1 ? (histories.get(newest) ?? []) : [];
  const path: TimelineSpan[] = [];
  let begin = 0n;
  for (const entry of ancestors) {
    path.push({ timeline: entry.timeline, beginLsn: begin, endLsn: entry.switchLsn });
    begin = entry.switchLsn;
  }
  path.push({ timeline: newest, beginLsn: begin, endLsn: null });
  return path;
}

/**
 * The timeline whose file PostgreSQL reads for a segment: the newest timeline on the path whose
 * first segment is at or before it (the segment holding a switch point is read from the child).
 */
export function timelineForSegment(path: readonly TimelineSpan[], segmentNumber: bigint, segmentSize = DEFAULT_WAL_SEGMENT_SIZE): number {
  for (let index = path.length - 1; index > 0; index--) {
    if (segmentNumber >= walSegmentNumberOf(path[index].beginLsn, segmentSize)) return path[index].timeline;
  }
  return path[0].timeline;
}

/** Works out which backups are usable and how far each reaches. */
export function recoveryWindow(inputs: RecoveryInputs): RecoveryWindow {
  const segmentSize = inputs.segmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const newestTimeline = newestArchivedTimeline(inputs.wal, inputs.backups);
  const path = timelinePath(newestTimeline, inputs.histories);
  const excluded: RecoveryWindow['excluded'] = [];
  const physical = [...inputs.backups]
    .filter((backup) => backup.method === 'physical')
    .sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
  const system = physical.at(-1)?.postgres.systemIdentifier;
  const segments = indexSegments(inputs.wal);
  const lastSegment = lastSegmentOnPath(inputs.wal, path, segmentSize);

  const reaches: BackupReach[] = [];
  for (const backup of physical) {
    const reason = exclusionReason(backup, system, path);
    if (reason) {
      excluded.push({ id: backup.id, reason });
      continue;
    }
    reaches.push(reachFrom(backup, path, segments, lastSegment, segmentSize));
  }
  return { newestTimeline, path, reaches, excluded, ...(inputs.tier ? { tier: inputs.tier } : {}) };
}

function exclusionReason(backup: BackupManifest, system: string | undefined, path: readonly TimelineSpan[]): string | null {
  if (!isManifestIntact(backup)) return 'its manifest is damaged';
  if (backup.timeline === null || backup.stopLsn === null || backup.startLsn === null) return 'it records no timeline or LSNs';
  if (backup.postgres.systemIdentifier !== system) {
    return `it is of another cluster (system identifier ${backup.postgres.systemIdentifier}, newest backups have ${system})`;
  }
  const span = path.find((candidate) => candidate.timeline === backup.timeline);
  const stop = parseLsn(backup.stopLsn);
  if (!span || (span.endLsn !== null && stop >= span.endLsn)) {
    return `it is on timeline ${backup.timeline}, which the newest timeline ${path.at(-1)?.timeline} did not branch from after this backup`;
  }
  return null;
}

function reachFrom(
  backup: BackupManifest,
  path: readonly TimelineSpan[],
  segments: ReadonlyMap<string, ArchivedWalFile>,
  lastSegment: bigint | null,
  segmentSize: number,
): BackupReach {
  const stopLsn = parseLsn(backup.stopLsn as string);
  let endLsn = stopLsn;
  let endTime = new Date(backup.finishedAt);
  let gapAt: string | null = null;
  for (let segment = walSegmentNumberOf(stopLsn, segmentSize); ; segment++) {
    const name = walSegmentFileName(timelineForSegment(path, segment, segmentSize), segment, segmentSize);
    const archived = segments.get(name);
    if (!archived) {
      if (lastSegment !== null && segment <= lastSegment) gapAt = name;
      break;
    }
    endLsn = walSegmentStartLsn(segment + 1n, segmentSize);
    if (archived.archivedAt > endTime) endTime = archived.archivedAt;
  }
  return { backup, stopLsn, endLsn, endTime, gapAt };
}

/** Complete segments by name (a .partial holds an unknown amount of WAL: it does not extend a window). */
function indexSegments(wal: readonly ArchivedWalFile[]): Map<string, ArchivedWalFile> {
  const index = new Map<string, ArchivedWalFile>();
  for (const entry of wal) if (entry.file.kind === 'segment') index.set(entry.file.name, entry);
  return index;
}

function lastSegmentOnPath(wal: readonly ArchivedWalFile[], path: readonly TimelineSpan[], segmentSize: number): bigint | null {
  let last: bigint | null = null;
  for (const entry of wal) {
    if (entry.file.kind !== 'segment' || entry.file.segmentNumber === null) continue;
    if (timelineForSegment(path, entry.file.segmentNumber, segmentSize) !== entry.file.timeline) continue;
    if (last === null || entry.file.segmentNumber > last) last = entry.file.segmentNumber;
  }
  return last;
}

/**
 * The newest usable backup that can reach `target`, or RestoreTargetError with the window. For a
 * restore point, `restorePointLsn` is where the engine found it in the archive (null: not found).
 */
export function planRecovery(
  window: RecoveryWindow,
  target: RecoveryTarget,
  restorePoint?: { lsn: bigint | null; backupId?: string },
): RecoveryPlan {
  const candidates = [...window.reaches].reverse();
  const plan = (reach: BackupReach | undefined): RecoveryPlan | null => (reach ? { backup: reach.backup, reach, window } : null);
  if (candidates.length === 0) {
    const why = window.excluded.map((entry) => `${entry.id}: ${entry.reason}`).join('; ');
    throw new RestoreTargetError(`no usable physical backup to recover to ${describeRecoveryTarget(target)}${why ? ` (${why})` : ''}`, {
      hint: `take a base backup with: rookery backup --tier ${window.tier ?? 'TIER'}`,
    });
  }
  let chosen: RecoveryPlan | null = null;
  switch (target.kind) {
    case 'latest':
      chosen = plan(candidates[0]);
      break;
    case 'time':
      chosen = plan(
        candidates.find(
          (reach) =>
            epochMicrosOf(reach.backup.finishedAt) <= target.time.epochMicros && target.time.epochMicros <= epochMicrosOf(reach.endTime),
        ),
      );
      break;
    case 'lsn':
      chosen = plan(candidates.find((reach) => reach.stopLsn <= target.lsn && target.lsn <= reach.endLsn));
      break;
    case 'xid':
      chosen = plan(candidates.find((reach) => xidFollowsBackup(target.xid, reach.backup)));
      if (!chosen) {
        throw new RestoreTargetError(
          `no backup is known to have ended before transaction ${target.xid} was assigned; ${describeWindow(window)}`,
          {
            hint: 'backups record the next transaction id at their end (manifest nextXid); older backups lack it: use --target-time or --target-lsn',
          },
        );
      }
      break;
    case 'name':
      if (restorePoint?.lsn != null) {
        const lsn = restorePoint.lsn;
        chosen = plan(
          candidates.find((reach) =>
            restorePoint.backupId ? reach.backup.id === restorePoint.backupId : reach.stopLsn <= lsn && lsn <= reach.endLsn,
          ),
        );
      }
      if (!chosen) {
        throw new RestoreTargetError(
          `restore point '${target.name}' was not found in the WAL archived after any usable backup; ${describeWindow(window)}`,
          { hint: 'restore points are created with pg_create_restore_point(); the WAL holding it must be archived (pg_switch_wal())' },
        );
      }
      break;
  }
  if (!chosen) {
    throw new RestoreTargetError(
      `recovery target ${describeRecoveryTarget(target)} is outside the recoverable window; ${describeWindow(window)}`,
      {
        hint: `pick a target inside the window, or list backups with: rookery info --tier ${window.tier ?? 'TIER'}`,
      },
    );
  }
  return chosen;
}

/**
 * True when every transaction up to `xid` could commit only after the backup ended. A 32-bit xid
 * (what PostgreSQL prints and recovery_target_xid takes) is read in the epoch of the backup's
 * nextXid; wraparound within the retained window is not expected.
 */
export function xidFollowsBackup(xid: bigint, backup: BackupManifest): boolean {
  if (!backup.nextXid) return false;
  const next = BigInt(backup.nextXid);
  const full = xid > 0xffffffffn ? xid : ((next >> 32n) << 32n) | xid;
  return full >= next;
}

/** "recoverable window: 0/3000100 (2026-…) to 0/9000000 (2026-…) on timeline 2". */
export function describeWindow(window: RecoveryWindow): string {
  if (window.reaches.length === 0) return 'there is no usable backup';
  const ranges = windowRanges(window);
  const parts = ranges.map(
    (range) =>
      `LSN ${formatLsn(range.fromLsn)} to ${formatLsn(range.toLsn)}, time ${formatRecoveryTime(epochMicrosOf(range.fromTime))} to ${formatRecoveryTime(epochMicrosOf(range.toTime))}`,
  );
  return `recoverable window (newest timeline ${window.newestTimeline}): ${parts.join('; then ')}`;
}

export interface WindowRange {
  fromLsn: bigint;
  toLsn: bigint;
  fromTime: Date;
  toTime: Date;
  backups: string[];
}

/** The window as disjoint ranges (several only when a gap in the archive splits it). */
export function windowRanges(window: RecoveryWindow): WindowRange[] {
  const ranges: WindowRange[] = [];
  for (const reach of window.reaches) {
    const last = ranges.at(-1);
    if (last && reach.stopLsn <= last.toLsn) {
      if (reach.endLsn > last.toLsn) {
        last.toLsn = reach.endLsn;
        last.toTime = reach.endTime;
      }
      last.backups.push(reach.backup.id);
      continue;
    }
    ranges.push({
      fromLsn: reach.stopLsn,
      toLsn: reach.endLsn,
      fromTime: new Date(reach.backup.finishedAt),
      toTime: reach.endTime,
      backups: [reach.backup.id],
    });
  }
  return ranges;
}

/**
 * WAL of one timeline to read from `fromLsn` to `toLsn`. `archived` is the file to fetch and
 * `localName` the name a reader of this timeline expects: the segment holding a switch point is
 * archived under the child timeline, and its first part is the parent's WAL.
 */
export interface WalReadPiece {
  timeline: number;
  fromLsn: bigint;
  toLsn: bigint;
  segments: { archived: string; localName: string }[];
}

/**
 * The archived WAL a restore point search reads, newest backup first: from each backup's stop LSN
 * to the end of its reach, or to the next newer backup's stop (beyond it, the newer one is chosen).
 * Each range is split by timeline, since a WAL reader follows one timeline at a time.
 */
export function restorePointSearchRanges(
  window: RecoveryWindow,
  segmentSize = DEFAULT_WAL_SEGMENT_SIZE,
): { backupId: string; pieces: WalReadPiece[] }[] {
  const ranges: ReturnType<typeof restorePointSearchRanges> = [];
  const reaches = window.reaches;
  for (let index = reaches.length - 1; index >= 0; index--) {
    const reach = reaches[index];
    const newer = reaches[index + 1];
    const toLsn = newer && newer.stopLsn < reach.endLsn ? newer.stopLsn : reach.endLsn;
    if (toLsn <= reach.stopLsn) continue;
    ranges.push({ backupId: reach.backup.id, pieces: splitByTimeline(window.path, reach.stopLsn, toLsn, segmentSize) });
  }
  return ranges;
}

function splitByTimeline(path: readonly TimelineSpan[], fromLsn: bigint, toLsn: bigint, segmentSize: number): WalReadPiece[] {
  const pieces: WalReadPiece[] = [];
  for (const span of path) {
    const from = fromLsn > span.beginLsn ? fromLsn : span.beginLsn;
    const to = span.endLsn !== null && span.endLsn < toLsn ? span.endLsn : toLsn;
    if (from >= to) continue;
    const segments: WalReadPiece['segments'] = [];
    const last = walSegmentNumberOf(to - 1n, segmentSize);
    for (let segment = walSegmentNumberOf(from, segmentSize); segment <= last; segment++) {
      segments.push({
        archived: walSegmentFileName(timelineForSegment(path, segment, segmentSize), segment, segmentSize),
        localName: walSegmentFileName(span.timeline, segment, segmentSize),
      });
    }
    pieces.push({ timeline: span.timeline, fromLsn: from, toLsn: to, segments });
  }
  return pieces;
}
