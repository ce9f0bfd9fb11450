import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import type { RookeryConfig } from '@rookery/config';
import type { TierName } from '@rookery/core';
import { ROOKERY_CONFIG, SERVICE_TIER } from '../service-kit.constants';
import { BackupJobService } from './backup-jobs.service';

/** The SchedulerRegistry name of a tier's full-backup cron job: 'oltp-full-backup'. */
export function fullBackupJobName(tier: TierName): string {
  return `${tier}-full-backup`;
}

/**
 * On start: rebuild the catalog of the service's tier (SERVICE_TIER) from the repository, then
 * register the tier policy's full-backup schedule. The cron handler only calls the same
 * BackupJobService.start as POST /backups. Needs ScheduleModule.forRoot() in the app.
 */
@Injectable()
export class BackupScheduleHandler implements OnApplicationBootstrap {
  private readonly logger = new Logger(BackupScheduleHandler.name);

  constructor(
    private readonly backups: BackupJobService,
    private readonly scheduler: SchedulerRegistry,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
    @Inject(SERVICE_TIER) private readonly tier: TierName,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // An unreachable repository must not keep the service down: /health reports it meanwhile.
    await this.backups.reindex(this.tier).catch((error: unknown) => this.logger.error(`catalog reindex failed: ${String(error)}`));
    const schedule = this.config.tiers[this.tier].policy.fullSchedule;
    const job = CronJob.from({ cronTime: schedule, onTick: () => this.handle(), timeZone: 'UTC' });
    this.scheduler.addCronJob(fullBackupJobName(this.tier), job);
    job.start();
    this.logger.log(`full backups of tier '${this.tier}' scheduled at '${schedule}' (UTC)`);
  }

  handle(): Promise<void> {
    return this.backups.start(this.tier, { requestedBy: 'schedule' }).then(
      () => undefined,
      (error: unknown) => this.logger.warn(`scheduled backup not started: ${String(error)}`),
    );
  }
}
