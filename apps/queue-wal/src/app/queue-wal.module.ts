import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import type { RookeryConfig } from '@rookery/config';
import type { TierName } from '@rookery/core';
import { BackupScheduleHandler, SERVICE_TIER, ServiceKitModule, tierControllers } from '@rookery/service-kit';
import { StatusController } from './status.controller';
import { WalStreamService } from './wal-stream.service';

/** The tier this service streams and backs up. */
export const QUEUE_TIER: TierName = 'queue';

export interface QueueWalModuleOptions {
  /** Default: loadConfig(). */
  config?: RookeryConfig;
  logLevel?: string;
  startWaitMs?: number;
  /** How a server restored through this service runs rookery (rookeryCommand); default: none. */
  selfCommand?: readonly string[];
  /** How often the spool is swept without a file-system event (tests shorten it). */
  sweepIntervalMs?: number;
  /** How often the stream's state is published for the compliance ledger (tests shorten it). */
  reportIntervalMs?: number;
}

/**
 * The queue-wal service: a synchronous pg_receivewal kept running and its WAL moved into the
 * repository (RPO 0), plus scheduled and on-demand physical base backups of the queue tier.
 */
@Module({})
export class QueueWalModule {
  static forRoot(options: QueueWalModuleOptions = {}): DynamicModule {
    const { sweepIntervalMs, reportIntervalMs, ...kit } = options;
    return {
      module: QueueWalModule,
      imports: [ServiceKitModule.forRoot({ serviceName: 'queue-wal', ...kit }), ScheduleModule.forRoot()],
      controllers: [...tierControllers(QUEUE_TIER), StatusController],
      providers: [
        { provide: SERVICE_TIER, useValue: QUEUE_TIER },
        { provide: WalStreamService.OPTIONS, useValue: { sweepIntervalMs, reportIntervalMs } },
        BackupScheduleHandler,
        WalStreamService,
      ],
    };
  }
}
