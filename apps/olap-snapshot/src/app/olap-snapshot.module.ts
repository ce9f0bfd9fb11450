import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { RookeryConfig } from '@rookery/config';
import type { TierName } from '@rookery/core';
import { BackupScheduleHandler, SERVICE_TIER, ServiceKitModule, tierControllers } from '@rookery/service-kit';

/** The tier this service backs up. */
export const OLAP_TIER: TierName = 'olap';

export interface OlapSnapshotModuleOptions {
  /** Default: loadConfig(). */
  config?: RookeryConfig;
  logLevel?: string;
  startWaitMs?: number;
}

/**
 * The olap-snapshot service: logical backups of the OLAP tier (audit-log rows left out,
 * materialized views refreshed by the restore), full on the policy's fullSchedule and the long-kept
 * snapshot (snapshotRetentionDays) on its incrementalSchedule, plus on-demand runs over REST.
 */
@Module({})
export class OlapSnapshotModule {
  static forRoot(options: OlapSnapshotModuleOptions = {}): DynamicModule {
    return {
      module: OlapSnapshotModule,
      imports: [ServiceKitModule.forRoot({ serviceName: 'olap-snapshot', ...options }), ScheduleModule.forRoot()],
      controllers: tierControllers(OLAP_TIER),
      providers: [{ provide: SERVICE_TIER, useValue: OLAP_TIER }, BackupScheduleHandler],
    };
  }
}
