import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { RookeryConfig } from '@rookery/config';
import type { TierName } from '@rookery/core';
import { BackupScheduleHandler, SERVICE_TIER, ServiceKitModule, tierControllers } from '@rookery/service-kit';

/** The tier this service backs up. */
export const CONTENT_TIER: TierName = 'content';

export interface ContentBackupModuleOptions {
  /** Default: loadConfig(). */
  config?: RookeryConfig;
  logLevel?: string;
  startWaitMs?: number;
}

/**
 * The content-backup service: logical backups of the content tier (a metadata dump and a
 * content_objects dump per backup), full on the policy's fullSchedule and incremental on its
 * incrementalSchedule, plus on-demand runs of either type over REST.
 */
@Module({})
export class ContentBackupModule {
  static forRoot(options: ContentBackupModuleOptions = {}): DynamicModule {
    return {
      module: ContentBackupModule,
      imports: [ServiceKitModule.forRoot({ serviceName: 'content-backup', ...options }), ScheduleModule.forRoot()],
      controllers: tierControllers(CONTENT_TIER),
      providers: [{ provide: SERVICE_TIER, useValue: CONTENT_TIER }, BackupScheduleHandler],
    };
  }
}
