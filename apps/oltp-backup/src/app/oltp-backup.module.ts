import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { RookeryConfig } from '@rookery/config';
import { BackupScheduleHandler, SERVICE_TIER, ServiceKitModule, createBackupsController } from '@rookery/service-kit';
import { OLTP_TIER } from './oltp.tier';
import { StatusController } from './status.controller';

export interface OltpBackupModuleOptions {
  /** Default: loadConfig(). */
  config?: RookeryConfig;
  logLevel?: string;
  startWaitMs?: number;
}

/** The oltp-backup service: scheduled and on-demand physical base backups of the OLTP tier. */
@Module({})
export class OltpBackupModule {
  static forRoot(options: OltpBackupModuleOptions = {}): DynamicModule {
    return {
      module: OltpBackupModule,
      imports: [ServiceKitModule.forRoot({ serviceName: 'oltp-backup', ...options }), ScheduleModule.forRoot()],
      controllers: [createBackupsController(OLTP_TIER), StatusController],
      providers: [{ provide: SERVICE_TIER, useValue: OLTP_TIER }, BackupScheduleHandler],
    };
  }
}
