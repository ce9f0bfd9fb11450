import { DynamicModule, Inject, Injectable, Module, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { LoggerModule, PinoLogger } from 'nestjs-pino';
import { EventLedger } from '@rookery/catalog';
import { ComplianceLedgerService } from '@rookery/compliance';
import { RookeryConfig, loadConfig, tierPolicies } from '@rookery/config';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { EventBus, Subscription, connectEventBus } from '@rookery/events';
import {
  AuthModule,
  BackupMetricsService,
  MetricsController,
  ObjectiveMetricsService,
  ROOKERY_CONFIG,
  RookeryErrorFilter,
} from '@rookery/service-kit';
import { ComplianceController } from './compliance.controller';
import { ComplianceGrpcController } from './compliance.grpc.controller';

export interface ComplianceReportingModuleOptions {
  config?: RookeryConfig;
  logLevel?: string;
  /** The bus to consume (tests, or an embedded setup sharing one in-process bus); default from config. */
  bus?: EventBus;
}

export const EVENT_BUS = Symbol('EVENT_BUS');

/** Subscribes the ledger to every topic once the app is up; closes the subscription, the bus, the ledger and the engine on shutdown. */
@Injectable()
export class LedgerConsumer implements OnApplicationBootstrap, OnApplicationShutdown {
  private subscription: Subscription | null = null;

  constructor(
    private readonly compliance: ComplianceLedgerService,
    @Inject(EVENT_BUS) private readonly bus: EventBus,
    private readonly ledger: EventLedger,
    @Inject(RookeryEngine) private readonly engine: RookeryEngine | null,
    private readonly logger: PinoLogger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    this.subscription = await this.compliance.subscribe(this.bus);
    this.logger.info({ bus: this.bus.kind }, 'consuming every rookery topic into the ledger');
  }

  async onApplicationShutdown(): Promise<void> {
    await this.subscription?.close();
    await this.bus.close();
    await this.ledger.close();
    await this.engine?.close();
  }
}

/**
 * The compliance-reporting service (DESIGN §9): consumes every topic into the ledger in the
 * catalog database and serves each tier's compliance as JSON, an HTML dashboard and reports.
 */
@Module({})
export class ComplianceReportingModule {
  static forRoot(options: ComplianceReportingModuleOptions = {}): DynamicModule {
    const config = options.config ?? loadConfig();
    return {
      module: ComplianceReportingModule,
      imports: [
        AuthModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            name: 'compliance-reporting',
            level: options.logLevel ?? 'info',
            autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
          },
        }),
      ],
      controllers: [ComplianceController, ComplianceGrpcController, MetricsController],
      providers: [
        { provide: ROOKERY_CONFIG, useValue: config },
        { provide: EventLedger, useFactory: () => EventLedger.open(config.catalog.url) },
        {
          provide: EVENT_BUS,
          useFactory: (logger: PinoLogger) =>
            options.bus ??
            connectEventBus(
              { ...config.events, clientId: `${config.events.clientId}-compliance`, consumer: 'compliance-reporting' },
              (level, message, extra) => logger[level](extra, message),
            ),
          inject: [PinoLogger],
        },
        {
          provide: ComplianceLedgerService,
          useFactory: (ledger: EventLedger) => new ComplianceLedgerService(ledger, tierPolicies(config)),
          inject: [EventLedger],
        },
        // GET /metrics: the objectives read from the repository (the engine, when one is configured) and the ledger.
        {
          provide: RookeryEngine,
          useFactory: () => (config.repositories.length > 0 ? createEngine(config, { actor: 'compliance-reporting service' }) : null),
        },
        BackupMetricsService,
        ObjectiveMetricsService,
        LedgerConsumer,
        { provide: APP_FILTER, useClass: RookeryErrorFilter },
      ],
    };
  }
}
