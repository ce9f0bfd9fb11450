import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ArchivedWalFile,
  BackupManifest,
  RecoveryPlan,
  RecoveryTarget,
  RecoveryWindow,
  RestoreTargetError,
  TierName,
  TimelineHistoryEntry,
  WalContinuityReport,
  formatLsn,
  parseLsn,
  parseTimelineHistory,
  planRecovery,
  recoveryWindow,
  restorePointSearchRanges,
  walContinuity,
} from '@rookery/core';
import { EngineContext } from './engine.context';
import { WalService } from '@rookery/wal';

/**
 * Reads what a point-in-time recovery is planned from, straight from the repository (the store is
 * the truth): the backup manifests, the listing of the WAL archive and the timeline history files.
 * The decisions are pure functions of @rookery/core; this service only gathers their inputs and,
 * for restore points, reads archived WAL to find them.
 */
export class RecoveryPlanService {
  constructor(
    private readonly context: EngineContext,
    private readonly wal: WalService,
  ) {}

  async window(tier: TierName): Promise<{
    window: RecoveryWindow;
    backups: BackupManifest[];
    wal: ArchivedWalFile[];
    histories: Map<number, TimelineHistoryEntry[]>;
  }> {
    const { backups } = await this.context.repository.list(tier);
    const objects = await this.wal.archive.list(tier);
    const wal: ArchivedWalFile[] = objects.map((object) => ({ file: object.file, sha256: object.sha256, archivedAt: object.archivedAt }));
    const histories = await this.histories(tier, wal);
    return { window: recoveryWindow({ backups, wal, histories, tier }), backups, wal, histories };
  }

  /**
   * The backup to restore for `target` (and, with `backupId`, a check that this backup can reach
   * it). Throws RestoreTargetError with the window before anything is written.
   */
  async plan(tier: TierName, target: RecoveryTarget, backupId = 'latest'): Promise<RecoveryPlan> {
    const { window } = await this.window(tier);
    const restricted = backupId === 'latest' ? window : restrictTo(window, backupId, tier);
    if (target.kind !== 'name') return planRecovery(restricted, target);
    const found = await this.findRestorePoint(tier, restricted, target.name);
    return planRecovery(restricted, target, found ?? { lsn: null });
  }

  async continuity(tier: TierName): Promise<WalContinuityReport> {
    const { backups, wal, histories } = await this.window(tier);
    return walContinuity(backups, wal, histories);
  }

  /**
   * Where restore point `name` is, scanning the archived WAL after the newest backup first, then
   * the stretch between each older backup and the next: PostgreSQL stops at the first restore
   * point of that name it replays after the backup, so the first one found after a backup's stop
   * decides. Segments are fetched (verified) into a temporary directory and read with pg_waldump.
   */
  private async findRestorePoint(tier: TierName, window: RecoveryWindow, name: string): Promise<{ lsn: bigint; backupId: string } | null> {
    const directory = await mkdtemp(join(tmpdir(), 'rookery-restore-point-'));
    try {
      const fetched = new Set<string>();
      for (const range of restorePointSearchRanges(window)) {
        for (const piece of range.pieces) {
          for (const segment of piece.segments) {
            if (fetched.has(segment.localName)) continue;
            await this.wal.get(tier, segment.archived, join(directory, segment.localName));
            fetched.add(segment.localName);
          }
          const points = await this.context.postgres.restorePoints(directory, {
            timeline: piece.timeline,
            startLsn: formatLsn(piece.fromLsn),
            endLsn: formatLsn(piece.toLsn),
          });
          const match = points.find((point) => point.name === name);
          if (match) return { lsn: parseLsn(match.lsn), backupId: range.backupId };
        }
      }
      return null;
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  }

  /** Every archived timeline history file, parsed, by the timeline it describes. */
  async histories(tier: TierName, wal: readonly ArchivedWalFile[]): Promise<Map<number, TimelineHistoryEntry[]>> {
    const histories = new Map<number, TimelineHistoryEntry[]>();
    const files = wal.filter((entry) => entry.file.kind === 'history');
    if (files.length === 0) return histories;
    const directory = await mkdtemp(join(tmpdir(), 'rookery-history-'));
    try {
      for (const entry of files) {
        const path = join(directory, entry.file.name);
        await this.wal.get(tier, entry.file.name, path);
        histories.set(entry.file.timeline, parseTimelineHistory(await readFile(path, 'utf8')));
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
    return histories;
  }
}

function restrictTo(window: RecoveryWindow, backupId: string, tier: TierName): RecoveryWindow {
  const reach = window.reaches.find((candidate) => candidate.backup.id === backupId);
  if (!reach) {
    const excluded = window.excluded.find((entry) => entry.id === backupId);
    throw new RestoreTargetError(
      excluded
        ? `backup '${backupId}' cannot be used for recovery: ${excluded.reason}`
        : `backup '${backupId}' of tier '${tier}' not found`,
      { hint: `list backups with: rookery info --tier ${tier}` },
    );
  }
  return { ...window, reaches: [reach] };
}
