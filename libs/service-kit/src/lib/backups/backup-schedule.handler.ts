import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import type { RookeryConfig } from '@rookery/config';
import type { BackupType, TierName } from '@rookery/core';
import { DEFAULT_EXPIRE_SCHEDULE, RetentionJobService, expireJobName } from '../retention/retention-jobs.service';
import { ROOKERY_CONFIG, SERVICE_TIER } from '../service-kit.constants';
import { BackupJobService } from './backup-jobs.service';
import { scheduledBackupType } from '@rookery/engine';

/** The SchedulerRegistry name of a tier's cron job for a backup type: 'content-incremental-backup'. */
export function backupJobName(tier: TierName, type: BackupType): string {
  return `${tier}-${type}-backup`;
}

/** The SchedulerRegistry name of a tier's full-backup cron job: 'oltp-full-backup'. */
export function fullBackupJobName(tier: TierName): string {
  return backupJobName(tier, 'full');
}

/**
 * On start: rebuild the catalog of the service's tier (SERVICE_TIER) from the repository, then
 * register the tier policy's schedules: fullSchedule for full backups and, where the tier has a
 * scheduled second type (content incrementals, OLAP snapshots), incrementalSchedule for it;
 * 'continuous' (WAL) registers nothing. The cron handler only calls the same BackupJobService.start
 * as POST /backups. A daily expire of the tier (<tier>-expire, DEFAULT_EXPIRE_SCHEDULE) runs the
 * same engine expire as `rookery expire`. Needs ScheduleModule.forRoot() in the app.
 */
@Injectable()
export class BackupScheduleHandler implements OnApplicationBootstrap {
  private readonly logger = new Logger(BackupScheduleHandler.name);

  constructor(
    private readonly backups: BackupJobService,
    private readonly scheduler: SchedulerRegistry,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
    @Inject(SERVICE_TIER) private readonly tier: TierName,
    private readonly retention: RetentionJobService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    // An unreachable repository must not keep the service down: /health reports it meanwhile.
    await this.backups.reindex(this.tier).catch((error: unknown) => this.logger.error(`catalog reindex failed: ${String(error)}`));
    const policy = this.config.tiers[this.tier].policy;
    this.schedule('full', policy.fullSchedule);
    const second = scheduledBackupType(policy);
    if (second) this.schedule(second, policy.incrementalSchedule);
    this.scheduleExpire(DEFAULT_EXPIRE_SCHEDULE);
  }

  /** A daily expire tick; a refusal (a backup holds the tier lock) waits for the next day, logged. */
  expire(): Promise<void> {
    return this.retention.expire(this.tier).then(
      () => undefined,
      (error: unknown) => this.logger.warn(`scheduled expire of tier '${this.tier}' not done: ${String(error)}`),
    );
  }

  /** A cron tick: the same start as POST /backups; a refusal (a run in progress) is only logged. */
  handle(type: BackupType = 'full'): Promise<void> {
    return this.backups.start(this.tier, { requestedBy: 'schedule', type }).then(
      () => undefined,
      (error: unknown) => this.logger.warn(`scheduled ${type} backup not started: ${String(error)}`),
    );
  }

  private schedule(type: BackupType, cronTime: string): void {
    const job = CronJob.from({ cronTime, onTick: () => this.handle(type), timeZone: 'UTC' });
    this.scheduler.addCronJob(backupJobName(this.tier, type), job);
    job.start();
    this.logger.log(`${type} backups of tier '${this.tier}' scheduled at '${cronTime}' (UTC)`);
  }

  private scheduleExpire(cronTime: string): void {
    const job = CronJob.from({ cronTime, onTick: () => this.expire(), timeZone: 'UTC' });
    this.scheduler.addCronJob(expireJobName(this.tier), job);
    job.start();
    this.logger.log(`expire of tier '${this.tier}' scheduled at '${cronTime}' (UTC)`);
  }
}
