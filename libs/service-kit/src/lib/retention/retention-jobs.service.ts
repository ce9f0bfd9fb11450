import { Injectable, Logger } from '@nestjs/common';
import type { TierName } from '@rookery/core';
import { ExpireResult, RookeryEngine } from '@rookery/engine';
import { retentionExpiredEvent } from '@rookery/events';
import { BackupJobService } from '../backups/backup-jobs.service';
import { ServiceEventsService } from '../events/service-events.service';

/** Daily at 05:30 UTC, after the default policies' full backups (01:00–04:00 UTC). */
export const DEFAULT_EXPIRE_SCHEDULE = '30 5 * * *';

/** The SchedulerRegistry name of a tier's daily expire: 'oltp-expire'. */
export function expireJobName(tier: TierName): string {
  return `${tier}-expire`;
}

/**
 * Expire as a service runs it: the same engine expire as `rookery expire` (under the tier lock, so
 * never while a backup of the tier runs), then the retention.expired event through the outbox and
 * the catalog brought in line with the repository (expired backups' records removed).
 */
@Injectable()
export class RetentionJobService {
  private readonly logger = new Logger(RetentionJobService.name);

  constructor(
    private readonly engine: RookeryEngine,
    private readonly backups: BackupJobService,
    private readonly events: ServiceEventsService,
  ) {}

  async expire(tier: TierName, options: { dryRun?: boolean; now?: Date } = {}): Promise<ExpireResult> {
    const result = await this.engine.expire({ tier, dryRun: options.dryRun, now: options.now });
    const { deleted } = result;
    this.logger.log(
      `${result.dryRun ? 'dry-run ' : ''}expire of tier '${tier}': ${result.plan.expire.backups.length} backups, ${result.plan.expire.wal.length} WAL files planned; ` +
        `deleted ${deleted.backups.length} backups, ${deleted.walFiles} WAL files, ${deleted.orphanFolders} orphan folders (${deleted.bytes} bytes)`,
    );
    for (const skipped of result.skipped) this.logger.warn(`backup '${skipped.id}' not expired: ${skipped.reason}`);
    if (!result.dryRun && deleted.objects > 0) {
      await this.events.publish(retentionExpiredEvent(result, this.events.source));
      await this.backups.reindex(tier);
    }
    return result;
  }
}
