import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { RookeryConfig } from '@rookery/config';
import { BackupScheduleHandler, SERVICE_TIER, ServiceKitModule, tierControllers } from '@rookery/service-kit';
import { OLTP_TIER } from './oltp.tier';
import { StatusController } from './status.controller';
import { WAL_WATCH_INTERVAL_MS, WalArchiveWatcher } from './wal-archive.watcher';

export interface OltpBackupModuleOptions {
  /** Default: loadConfig(). */
  config?: RookeryConfig;
  logLevel?: string;
  startWaitMs?: number;
  /** How a server restored through this service runs rookery (rookeryCommand); default: none. */
  selfCommand?: readonly string[];
  /** How often the WAL archive is scanned for wal.archived events (default 30 s). */
  walWatchIntervalMs?: number;
}

/** The oltp-backup service: scheduled and on-demand physical base backups of the OLTP tier. */
@Module({})
export class OltpBackupModule {
  static forRoot(options: OltpBackupModuleOptions = {}): DynamicModule {
    return {
      module: OltpBackupModule,
      imports: [
        ServiceKitModule.forRoot({
          serviceName: 'oltp-backup',
          config: options.config,
          logLevel: options.logLevel,
          startWaitMs: options.startWaitMs,
          selfCommand: options.selfCommand,
        }),
        ScheduleModule.forRoot(),
      ],
      controllers: [...tierControllers(OLTP_TIER), StatusController],
      providers: [
        { provide: SERVICE_TIER, useValue: OLTP_TIER },
        { provide: WAL_WATCH_INTERVAL_MS, useValue: options.walWatchIntervalMs ?? 30_000 },
        BackupScheduleHandler,
        WalArchiveWatcher,
      ],
    };
  }
}
