import { TierName } from '@rookery/core';
import { CloudEvent, createEvent } from './cloud-event';

/** What an expire run did, as the engine reports it (RookeryEngine.expire). */
export interface ExpireFacts {
  tier: TierName;
  dryRun: boolean;
  plan: { expire: { backups: { id: string; reason: string }[]; wal: unknown[] }; bytesFreed: number };
  deleted: { backups: string[]; walFiles: number; bytes: number };
}

/**
 * retention.expired: the backups an expire deleted, each with the reason (the auditor's evidence
 * that nothing went before its retention date), the WAL files and bytes freed. A dry run reports
 * what would go (dryRun true; compliance ignores it).
 */
export function retentionExpiredEvent(result: ExpireFacts, source: string, at = new Date()): CloudEvent<'dev.rookery.retention.expired'> {
  const deleted = new Set(result.deleted.backups);
  const backups = result.plan.expire.backups.filter((backup) => result.dryRun || deleted.has(backup.id));
  return createEvent(
    'dev.rookery.retention.expired',
    result.tier,
    {
      tier: result.tier,
      backups: backups.map((backup) => ({ backupId: backup.id, reason: backup.reason })),
      walFiles: result.dryRun ? result.plan.expire.wal.length : result.deleted.walFiles,
      bytesFreed: result.dryRun ? result.plan.bytesFreed : result.deleted.bytes,
      dryRun: result.dryRun,
      at: at.toISOString(),
    },
    { source, time: at },
  );
}
