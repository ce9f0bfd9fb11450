import { TierName } from '@rookery/core';
import { CloudEvent, createEvent } from './cloud-event';

/** What a replication run reports, as the events family needs it (the engine's ReplicationRun fits). */
export interface ReplicationRunFacts {
  tier: TierName;
  primary: string;
  finishedAt: string;
  regions: {
    region: string;
    store: string;
    backups: { backupId: string; outcome: 'copied' | 'current' | 'failed'; bytes: number; error?: ReplicationFailure }[];
    wal: { copied: { name: string; bytes: number }[]; failed: { key: string; error: ReplicationFailure }[] } | null;
    error?: ReplicationFailure;
  }[];
}

interface ReplicationFailure {
  code: string;
  message: string;
  retryable: boolean;
}

type ReplicationEvent = CloudEvent<'dev.rookery.replication.copied'> | CloudEvent<'dev.rookery.replication.failed'>;

/**
 * One event per backup copied or failed, and one per region's WAL batch (copied files, failed
 * files): DESIGN §7's `rookery.replication`. A region that could not be reached at all is one
 * failed event for the region, plus one per backup whose copy it left missing. Backups already
 * current in a region produce nothing.
 */
export function replicationEvents(run: ReplicationRunFacts, source: string): ReplicationEvent[] {
  const events: ReplicationEvent[] = [];
  const at = run.finishedAt;
  const base = { tier: run.tier, from: run.primary, at };
  for (const region of run.regions) {
    const to = `${region.region} ${region.store}`;
    for (const backup of region.backups) {
      if (backup.outcome === 'copied') {
        events.push(
          createEvent(
            'dev.rookery.replication.copied',
            run.tier,
            { ...base, to, object: `backup ${backup.backupId}`, bytes: backup.bytes },
            { source },
          ),
        );
      } else if (backup.outcome === 'failed') {
        events.push(
          createEvent(
            'dev.rookery.replication.failed',
            run.tier,
            { ...base, to, object: `backup ${backup.backupId}`, error: failureOf(backup.error) },
            { source },
          ),
        );
      }
    }
    const copied = region.wal?.copied ?? [];
    if (copied.length > 0) {
      const object = `wal ${copied[0].name}..${copied.at(-1)?.name} (${copied.length} files)`;
      const bytes = copied.reduce((sum, file) => sum + file.bytes, 0);
      events.push(createEvent('dev.rookery.replication.copied', run.tier, { ...base, to, object, bytes }, { source }));
    }
    const failed = region.wal?.failed ?? [];
    if (failed.length > 0) {
      events.push(
        createEvent(
          'dev.rookery.replication.failed',
          run.tier,
          { ...base, to, object: `wal ${failed.length} files`, error: failureOf(failed[0].error) },
          { source },
        ),
      );
    }
    if (region.error) {
      events.push(
        createEvent(
          'dev.rookery.replication.failed',
          run.tier,
          { ...base, to, object: `region ${region.region}`, error: failureOf(region.error) },
          { source },
        ),
      );
    }
  }
  return events;
}

function failureOf(error: ReplicationFailure | undefined): ReplicationFailure {
  return { code: error?.code ?? 'REPLICATION_FAILED', message: error?.message ?? 'copy failed', retryable: error?.retryable ?? true };
}
