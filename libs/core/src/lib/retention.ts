import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn } from './lsn';
import { compareBackupIds, compareBackupsByAge } from './backup-id';
import { BackupManifest } from './manifest';
import { TierName, TierPolicy } from './tier';
import { TimelineHistoryEntry, WalFileName, walSegmentFileName, walSegmentNumberOf } from './wal';

/**
 * Retention (`rookery expire`): what a tier's policy no longer keeps, as a pure plan with a reason
 * for every decision. The engine lists the repository, hands the listing in, and deletes what the
 * plan says. Rules, in the order they protect data:
 *
 *  - a backup under legal hold is kept, whatever its age;
 *  - the newest full backup is kept, however old (an expired tier must still restore);
 *  - a retained incremental keeps its parent, and so on up its chain to the full; so does an
 *    incremental whose manifest cannot be trusted (never expired itself: an unsigned one is made
 *    good again by `rookery repository sign`, and must still find its parents then);
 *  - a backup with an object under S3 Object Lock is kept until the lock's date (the store refuses
 *    the delete anyway; trying would leave a backup half gone);
 *  - otherwise a backup expires once `now` is past its retention date: the later of the manifest's
 *    retentionUntil (the promise made when it was written, and what Object Lock enforces) and
 *    finishedAt + the policy's current days (snapshotRetentionDays for snapshots), so lengthening
 *    a policy keeps older backups longer and shortening it never cuts a promise short;
 *  - WAL: a retained physical backup needs every segment from the one holding its start LSN
 *    onwards (its consistency WAL, then its point-in-time window up to the newest archived WAL).
 *    Recovery never reads a segment numbered below the start segment of the backup it starts
 *    from, on any timeline, so segments, partials and backup history files numbered below the
 *    oldest retained physical backup's start segment go, and nothing at or above it does;
 *  - timeline .history files go only when no retained backup or WAL lies on their timeline or on
 *    a timeline descending from it, and a newer timeline exists (the newest one's history is what
 *    recovery_target_timeline = latest reads);
 *  - with no retained physical backup that records its start LSN, every WAL file is kept.
 */
export interface LegalHold {
  backupId: string;
  tier: TierName;
  reason: string;
  /** Who placed it: 'alice@host (cli)'. */
  heldBy: string;
  heldAt: string;
}

/** One archived WAL object as the repository lists it (several objects may share a name: partials). */
export interface RetentionWalObject {
  key: string;
  file: WalFileName;
  storedBytes: number;
  archivedAt: Date;
}

/** A folder under backups/ with no manifest (a crashed or interrupted run, or a crashed expire). */
export interface OrphanFolder {
  folder: string;
  /** The newest modification time of its objects: a folder still being written is young. */
  newestAt: Date;
  objects: number;
  storedBytes: number;
}

export interface RetentionInputs {
  tier: TierName;
  policy: Pick<TierPolicy, 'retentionDays' | 'snapshotRetentionDays' | 'localCopyDays'>;
  /** Intact manifests of the tier (damaged ones are never expired: they are reported elsewhere). */
  backups: readonly BackupManifest[];
  wal: readonly RetentionWalObject[];
  /** Parsed .history files by the timeline they describe. */
  histories: ReadonlyMap<number, readonly TimelineHistoryEntry[]>;
  holds: readonly LegalHold[];
  /**
   * Damaged or unsigned manifests (never expired) that still name a parent: their chains are kept
   * as a retained incremental's are.
   */
  untrustedChildren?: readonly { id: string; parent: string; problem: string }[];
  /** S3 Object Lock retain-until dates: per backup (its latest object) and per WAL key. */
  objectLocks?: { backups?: ReadonlyMap<string, Date>; wal?: ReadonlyMap<string, Date> };
  orphans?: readonly OrphanFolder[];
  /** Whether a local store (copies kept localCopyDays) is configured. */
  localStore?: boolean;
  now: Date;
  segmentSize?: number;
}

export interface ExpiredBackup {
  id: string;
  type: BackupManifest['type'];
  method: BackupManifest['method'];
  startedAt: string;
  finishedAt: string;
  retainUntil: string;
  storedBytes: number;
  reason: string;
}

export interface KeptBackup {
  id: string;
  type: BackupManifest['type'];
  retainUntil: string;
  reasons: string[];
}

export interface ExpiredWal {
  key: string;
  name: string;
  storedBytes: number;
  reason: string;
}

/** A run of kept WAL files of one timeline (by name), with why they are kept. */
export interface KeptWalRange {
  timeline: number;
  first: string;
  last: string;
  files: number;
  reason: string;
}

export interface RetentionPlan {
  tier: TierName;
  now: string;
  /** Expired backups, in the order they are deleted: newest first, so a child goes before its parent. */
  expire: { backups: ExpiredBackup[]; wal: ExpiredWal[]; orphans: (OrphanFolder & { reason: string })[] };
  keep: { backups: KeptBackup[]; wal: KeptWalRange[]; orphans: (OrphanFolder & { reason: string })[] };
  /** The WAL cut: segments numbered below it on every timeline are expired. Null: all WAL kept. */
  walCut: { segment: string; backupId: string } | null;
  localCopies: { configured: boolean; note: string };
  bytesFreed: number;
}

const DAY_MS = 86_400_000;
/** A folder without a manifest is garbage once nothing was written to it for this long. */
export const ORPHAN_MIN_AGE_MS = DAY_MS;

/** The date a backup is kept until under its manifest and the current policy (the later one). */
export function retainUntil(backup: BackupManifest, policy: RetentionInputs['policy']): Date {
  const days = backup.type === 'snapshot' ? (policy.snapshotRetentionDays ?? policy.retentionDays) : policy.retentionDays;
  const byPolicy = Date.parse(backup.finishedAt) + days * DAY_MS;
  const recorded = Date.parse(backup.retentionUntil);
  return new Date(Math.max(byPolicy, Number.isNaN(recorded) ? byPolicy : recorded));
}

export function planRetention(inputs: RetentionInputs): RetentionPlan {
  const backups = decideBackups(inputs);
  const retained = inputs.backups.filter((backup) => backups.kept.has(backup.id));
  const wal = decideWal(inputs, retained);
  const orphans = decideOrphans(inputs);
  const expiredBackups = inputs.backups
    .filter((backup) => backups.expired.has(backup.id))
    .sort((a, b) => compareBackupsByAge(b, a))
    .map((backup) => ({
      id: backup.id,
      type: backup.type,
      method: backup.method,
      startedAt: backup.startedAt,
      finishedAt: backup.finishedAt,
      retainUntil: retainUntil(backup, inputs.policy).toISOString(),
      storedBytes: backup.storedBytes,
      reason: backups.expired.get(backup.id) as string,
    }));
  const keptBackups = inputs.backups
    .filter((backup) => backups.kept.has(backup.id))
    .map((backup) => ({
      id: backup.id,
      type: backup.type,
      retainUntil: retainUntil(backup, inputs.policy).toISOString(),
      reasons: backups.kept.get(backup.id) as string[],
    }));
  const bytesFreed =
    expiredBackups.reduce((sum, backup) => sum + backup.storedBytes, 0) +
    wal.expired.reduce((sum, file) => sum + file.storedBytes, 0) +
    orphans.expire.reduce((sum, folder) => sum + folder.storedBytes, 0);
  return {
    tier: inputs.tier,
    now: inputs.now.toISOString(),
    expire: { backups: expiredBackups, wal: wal.expired, orphans: orphans.expire },
    keep: { backups: keptBackups, wal: wal.kept, orphans: orphans.keep },
    walCut: wal.cut,
    localCopies: inputs.localStore
      ? { configured: true, note: `local copies older than ${inputs.policy.localCopyDays} d are expired by the local store` }
      : {
          configured: false,
          note: `no local store is configured: nothing to expire after localCopyDays (${inputs.policy.localCopyDays} d)`,
        },
    bytesFreed,
  };
}

interface BackupDecisions {
  kept: Map<string, string[]>;
  expired: Map<string, string>;
}

function decideBackups(inputs: RetentionInputs): BackupDecisions {
  const kept = new Map<string, string[]>();
  const expired = new Map<string, string>();
  const keep = (id: string, reason: string) => {
    expired.delete(id);
    const reasons = kept.get(id) ?? [];
    if (!reasons.includes(reason)) reasons.push(reason);
    kept.set(id, reasons);
  };
  const holds = new Map(inputs.holds.filter((hold) => hold.tier === inputs.tier).map((hold) => [hold.backupId, hold]));
  const newestFull = [...inputs.backups]
    .filter((backup) => backup.type === 'full')
    .sort((a, b) => a.finishedAt.localeCompare(b.finishedAt) || compareBackupIds(a.id, b.id))
    .at(-1);

  for (const backup of inputs.backups) {
    const until = retainUntil(backup, inputs.policy);
    const hold = holds.get(backup.id);
    const lockedUntil = inputs.objectLocks?.backups?.get(backup.id);
    if (hold) keep(backup.id, `under legal hold since ${hold.heldAt} by ${hold.heldBy}: ${hold.reason}`);
    if (backup.id === newestFull?.id) keep(backup.id, 'the newest full backup is never expired');
    if (lockedUntil && lockedUntil > inputs.now) keep(backup.id, `its objects are under S3 Object Lock until ${lockedUntil.toISOString()}`);
    if (inputs.now.getTime() <= until.getTime())
      keep(backup.id, `within ${retentionDaysOf(backup, inputs.policy)} d retention (until ${until.toISOString()})`);
    if (!kept.has(backup.id))
      expired.set(backup.id, `older than ${retentionDaysOf(backup, inputs.policy)} d retention (retention until ${until.toISOString()})`);
  }
  const byId = new Map(inputs.backups.map((backup) => [backup.id, backup]));
  for (const untrusted of inputs.untrustedChildren ?? []) {
    if (!byId.has(untrusted.parent)) continue;
    keep(
      untrusted.parent,
      `parent of incremental ${untrusted.id}, whose manifest cannot be trusted (${untrusted.problem}); fix or remove it first`,
    );
  }
  keepChainParents(inputs.backups, kept, keep);
  return { kept, expired };
}

function retentionDaysOf(backup: BackupManifest, policy: RetentionInputs['policy']): number {
  return backup.type === 'snapshot' ? (policy.snapshotRetentionDays ?? policy.retentionDays) : policy.retentionDays;
}

/** A retained incremental needs its parent, and that one its own: walk each chain up from the newest. */
function keepChainParents(
  backups: readonly BackupManifest[],
  kept: ReadonlyMap<string, string[]>,
  keep: (id: string, reason: string) => void,
): void {
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  const newestFirst = [...backups].sort((a, b) => compareBackupsByAge(b, a));
  for (const backup of newestFirst) {
    if (!kept.has(backup.id) || !backup.parent) continue;
    // Parents start before their children, so a parent kept here is visited later in this loop.
    let child = backup;
    let parent = byId.get(backup.parent);
    while (parent) {
      keep(parent.id, `parent of retained ${child.type} ${child.id} (incremental chain)`);
      child = parent;
      parent = parent.parent ? byId.get(parent.parent) : undefined;
    }
  }
}

interface WalDecisions {
  expired: ExpiredWal[];
  kept: KeptWalRange[];
  cut: RetentionPlan['walCut'];
}

function decideWal(inputs: RetentionInputs, retained: readonly BackupManifest[]): WalDecisions {
  const segmentSize = inputs.segmentSize ?? DEFAULT_WAL_SEGMENT_SIZE;
  const physical = retained.filter((backup) => backup.method === 'physical');
  const withoutStart = physical.find((backup) => !backup.startLsn || backup.timeline === null);
  const oldest = physical
    .filter((backup) => backup.startLsn)
    .map((backup) => ({ backup, segment: walSegmentNumberOf(parseLsn(backup.startLsn as string), segmentSize) }))
    .sort((a, b) => (a.segment < b.segment ? -1 : a.segment > b.segment ? 1 : 0))[0];
  if (!oldest || withoutStart) {
    const reason = withoutStart
      ? `retained physical backup ${withoutStart.id} records no start LSN: every WAL file is kept`
      : 'no retained physical backup: every WAL file is kept';
    return { expired: [], kept: keptRanges(inputs.wal, () => reason), cut: null };
  }
  const cutName = walSegmentFileName(oldest.backup.timeline ?? 1, oldest.segment, segmentSize);
  const locks = inputs.objectLocks?.wal;
  const expired: ExpiredWal[] = [];
  const keptObjects: { object: RetentionWalObject; reason: string }[] = [];
  const survivingTimelines = new Set<number>(retained.map((backup) => backup.timeline ?? 1));
  const histories: RetentionWalObject[] = [];

  for (const object of inputs.wal) {
    if (object.file.kind === 'history') {
      histories.push(object);
      continue;
    }
    const segment = object.file.segmentNumber as bigint;
    const lockedUntil = locks?.get(object.key);
    if (segment >= oldest.segment) {
      survivingTimelines.add(object.file.timeline);
      keptObjects.push({
        object,
        reason: `from the start segment ${cutName} of the oldest retained physical backup ${oldest.backup.id} on: its point-in-time window`,
      });
    } else if (lockedUntil && lockedUntil > inputs.now) {
      survivingTimelines.add(object.file.timeline);
      keptObjects.push({ object, reason: `under S3 Object Lock until ${lockedUntil.toISOString()}` });
    } else {
      expired.push({
        key: object.key,
        name: object.file.name,
        storedBytes: object.storedBytes,
        reason: `before ${cutName}, the start segment of the oldest retained physical backup ${oldest.backup.id}`,
      });
    }
  }

  const needed = timelinesWithAncestors(survivingTimelines, inputs.histories);
  const newestTimeline = Math.max(0, ...inputs.wal.map((object) => object.file.timeline), ...survivingTimelines);
  for (const object of histories) {
    const timeline = object.file.timeline;
    const lockedUntil = locks?.get(object.key);
    if (needed.has(timeline) || timeline >= newestTimeline) {
      keptObjects.push({ object, reason: `timeline ${timeline} is still followed by retained backups or WAL` });
    } else if (lockedUntil && lockedUntil > inputs.now) {
      keptObjects.push({ object, reason: `under S3 Object Lock until ${lockedUntil.toISOString()}` });
    } else {
      expired.push({
        key: object.key,
        name: object.file.name,
        storedBytes: object.storedBytes,
        reason: `no retained backup or WAL is on timeline ${timeline} or descends from it`,
      });
    }
  }
  // Oldest first: a crash part-way leaves the archive a contiguous suffix, never a hole.
  expired.sort((a, b) => a.name.localeCompare(b.name) || a.key.localeCompare(b.key));
  const reasons = new Map(keptObjects.map((entry) => [entry.object.key, entry.reason]));
  return {
    expired,
    kept: keptRanges(
      keptObjects.map((entry) => entry.object),
      (object) => reasons.get(object.key) as string,
    ),
    cut: { segment: cutName, backupId: oldest.backup.id },
  };
}

/**
 * Timelines still followed plus every ancestor named in their history files. A followed timeline
 * whose history is unknown keeps every lower timeline (we cannot tell which are its ancestors).
 */
function timelinesWithAncestors(timelines: ReadonlySet<number>, histories: RetentionInputs['histories']): Set<number> {
  const needed = new Set(timelines);
  for (const timeline of timelines) {
    if (timeline === 1) continue;
    const history = histories.get(timeline);
    if (!history) {
      for (let lower = 1; lower < timeline; lower++) needed.add(lower);
      continue;
    }
    for (const entry of history) needed.add(entry.timeline);
  }
  return needed;
}

/** Kept WAL as runs of consecutive files with the same timeline and reason (10,000 lines are no help). */
function keptRanges(objects: readonly RetentionWalObject[], reasonOf: (object: RetentionWalObject) => string): KeptWalRange[] {
  const sorted = [...objects].sort((a, b) => a.file.timeline - b.file.timeline || a.file.name.localeCompare(b.file.name));
  const ranges: KeptWalRange[] = [];
  for (const object of sorted) {
    const reason = reasonOf(object);
    const last = ranges.at(-1);
    if (last && last.timeline === object.file.timeline && last.reason === reason) {
      last.files++;
      last.last = object.file.name;
      continue;
    }
    ranges.push({ timeline: object.file.timeline, first: object.file.name, last: object.file.name, files: 1, reason });
  }
  return ranges;
}

function decideOrphans(inputs: RetentionInputs): { expire: RetentionPlan['expire']['orphans']; keep: RetentionPlan['keep']['orphans'] } {
  const expire: RetentionPlan['expire']['orphans'] = [];
  const keep: RetentionPlan['keep']['orphans'] = [];
  for (const folder of inputs.orphans ?? []) {
    const age = inputs.now.getTime() - folder.newestAt.getTime();
    if (age > ORPHAN_MIN_AGE_MS) {
      expire.push({
        ...folder,
        reason: `no manifest and nothing written for more than a day (last at ${folder.newestAt.toISOString()}): left by a crashed run`,
      });
    } else {
      keep.push({ ...folder, reason: `no manifest, but written to at ${folder.newestAt.toISOString()}: possibly a backup in progress` });
    }
  }
  return { expire, keep };
}
