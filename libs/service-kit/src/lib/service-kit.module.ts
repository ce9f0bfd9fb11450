import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_INTERCEPTOR } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import { BackupCatalog } from '@rookery/catalog';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { AuthModule } from './auth/auth.module';
import { BackupJobService } from './backups/backup-jobs.service';
import { AuditInterceptor } from './events/audit.interceptor';
import { ServiceEventsService } from './events/service-events.service';
import { RookeryErrorFilter } from './errors/rookery-error.filter';
import { HealthController } from './health/health.controller';
import { ServiceHealthService } from './health/service-health.service';
import { MetricsController } from './metrics/metrics.controller';
import { BackupMetricsService } from './metrics/backup-metrics.service';
import { ObjectiveMetricsService } from './metrics/objective-metrics.service';
import { serviceLoggerOptions } from './service-logger.options';
import { RetentionJobService } from './retention/retention-jobs.service';
import { ReplicationController } from './replication/replication.controller';
import { ReplicationJobService } from './replication/replication-jobs.service';
import { RestoreJobService } from './restores/restore-jobs.service';
import { ServiceResourcesService } from './service-resources.service';
import { ROOKERY_CONFIG, ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS, ServiceKitOptions } from './service-kit.constants';

/**
 * What every tier service shares, registered once (global): the frozen config, the engine (closed on
 * shutdown), the catalog, GET /health, GET /metrics, pino logging with secrets redacted, the
 * RookeryError → HTTP filter, and the job services (BackupJobService, RestoreJobService) apps call
 * from controllers (tierControllers), cron and other transports.
 */
@Module({})
export class ServiceKitModule {
  static forRoot(options: ServiceKitOptions): DynamicModule {
    const resolved: ResolvedServiceKitOptions = {
      serviceName: options.serviceName,
      config: options.config ?? loadConfig(),
      logLevel: options.logLevel ?? 'info',
      startWaitMs: options.startWaitMs ?? 5_000,
      shutdownWaitMs: options.shutdownWaitMs ?? 30_000,
      selfCommand: options.selfCommand,
    };
    return {
      module: ServiceKitModule,
      global: true,
      imports: [
        LoggerModule.forRoot(serviceLoggerOptions(resolved)),
        TerminusModule.forRoot({ logger: false }),
        AuthModule.forRoot(resolved.config),
      ],
      controllers: [HealthController, MetricsController, ReplicationController],
      providers: [
        { provide: SERVICE_KIT_OPTIONS, useValue: resolved },
        { provide: ROOKERY_CONFIG, useValue: resolved.config },
        {
          provide: RookeryEngine,
          useFactory: (config: RookeryConfig) =>
            createEngine(config, { actor: `${resolved.serviceName} service`, selfCommand: resolved.selfCommand }),
          inject: [ROOKERY_CONFIG],
        },
        {
          provide: BackupCatalog,
          useFactory: (config: RookeryConfig) => BackupCatalog.open(config.catalog.url),
          inject: [ROOKERY_CONFIG],
        },
        { provide: APP_FILTER, useClass: RookeryErrorFilter },
        AuditInterceptor,
        { provide: APP_INTERCEPTOR, useExisting: AuditInterceptor },
        BackupMetricsService,
        ObjectiveMetricsService,
        BackupJobService,
        ServiceEventsService,
        ServiceHealthService,
        ServiceResourcesService,
        ReplicationJobService,
        RetentionJobService,
        RestoreJobService,
      ],
      exports: [
        AuditInterceptor,
        SERVICE_KIT_OPTIONS,
        ROOKERY_CONFIG,
        RookeryEngine,
        BackupCatalog,
        BackupMetricsService,
        BackupJobService,
        ServiceEventsService,
        ReplicationJobService,
        RetentionJobService,
        RestoreJobService,
      ],
    };
  }
}
