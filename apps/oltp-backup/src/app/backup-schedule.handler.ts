import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import type { RookeryConfig } from '@rookery/config';
import { BackupJobService, ROOKERY_CONFIG } from '@rookery/service-kit';
import { OLTP_TIER } from './oltp.tier';

export const FULL_BACKUP_JOB = 'oltp-full-backup';

/**
 * On start: rebuild the catalog from the repository, then register the tier policy's full-backup
 * schedule. The cron handler only calls the same BackupJobService.start as POST /backups.
 */
@Injectable()
export class BackupScheduleHandler implements OnApplicationBootstrap {
  private readonly logger = new Logger(BackupScheduleHandler.name);

  constructor(
    private readonly backups: BackupJobService,
    private readonly scheduler: SchedulerRegistry,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // An unreachable repository must not keep the service down: /health reports it meanwhile.
    await this.backups.reindex(OLTP_TIER).catch((error: unknown) => this.logger.error(`catalog reindex failed: ${String(error)}`));
    const schedule = this.config.tiers[OLTP_TIER].policy.fullSchedule;
    const job = CronJob.from({ cronTime: schedule, onTick: () => this.handle(), timeZone: 'UTC' });
    this.scheduler.addCronJob(FULL_BACKUP_JOB, job);
    job.start();
    this.logger.log(`full backups of tier '${OLTP_TIER}' scheduled at '${schedule}' (UTC)`);
  }

  handle(): Promise<void> {
    return this.backups.start(OLTP_TIER, { requestedBy: 'schedule' }).then(() => undefined, (error: unknown) => this.logger.warn(`scheduled backup not started: ${String(error)}`));
  }
}
