import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { PinoLogger } from 'nestjs-pino';
import { EventLedger } from '@rookery/catalog';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { EventBus, connectEventBus } from '@rookery/events';
import { ROOKERY_CONFIG, ServiceKitModule } from '@rookery/service-kit';
import { BackupValidator, RestoreDrill, ValidationRequestWindow, ValidationTools, createValidationTools } from '@rookery/validation';
import { DrillService } from './drill.service';
import { DrillsGrpcController } from './drills.grpc.controller';
import { ValidatorController } from './validator.controller';
import { VALIDATOR_BUS, ValidatorService } from './validator.service';

export interface ValidatorModuleOptions {
  config?: RookeryConfig;
  logLevel?: string;
  /** The bus backup.completed is consumed from (tests, embedded setups); default from config. */
  bus?: EventBus;
  /**
   * argv running rookery for a drill's restore_command (`<self…> wal-get %f %p --tier T`): with it
   * physical drills replay the archived WAL to its end; without it they recover to the backup's end.
   */
  selfCommand?: readonly string[];
  /** Where base backups are extracted for pg_verifybackup and drills restore; default the OS temp dir. */
  workDirectory?: string;
}

/** The engine validations and drills run on: the service's own, with the self command drills need. */
export const VALIDATOR_ENGINE = Symbol('VALIDATOR_ENGINE');
const VALIDATION_TOOLS = Symbol('VALIDATION_TOOLS');

@Injectable()
class ValidatorEngineCloser implements OnApplicationShutdown {
  constructor(@Inject(VALIDATOR_ENGINE) private readonly engine: RookeryEngine) {}

  async onApplicationShutdown(): Promise<void> {
    await this.engine.close();
  }
}

/**
 * The validator service (DESIGN §8): validates every backup as its backup.completed arrives and
 * runs restore drills on each tier's drillSchedule and on request; results go out as events
 * through the service-kit outbox. ServiceKitModule brings the config, catalog (outbox), /health,
 * /metrics, logging and the error filter.
 */
@Module({})
export class ValidatorModule {
  static forRoot(options: ValidatorModuleOptions = {}): DynamicModule {
    const config = options.config ?? loadConfig();
    return {
      module: ValidatorModule,
      imports: [ServiceKitModule.forRoot({ serviceName: 'validator', config, logLevel: options.logLevel }), ScheduleModule.forRoot()],
      controllers: [ValidatorController, DrillsGrpcController],
      providers: [
        {
          provide: VALIDATOR_ENGINE,
          useFactory: (resolved: RookeryConfig) => createEngine(resolved, { actor: 'validator service', selfCommand: options.selfCommand }),
          inject: [ROOKERY_CONFIG],
        },
        ValidatorEngineCloser,
        {
          provide: VALIDATION_TOOLS,
          useFactory: (engine: RookeryEngine) => createValidationTools(engine.toolkit, { workDirectory: options.workDirectory }),
          inject: [VALIDATOR_ENGINE],
        },
        {
          provide: BackupValidator,
          useFactory: (engine: RookeryEngine, tools: ValidationTools) => new BackupValidator(engine, tools),
          inject: [VALIDATOR_ENGINE, VALIDATION_TOOLS],
        },
        {
          provide: RestoreDrill,
          useFactory: (engine: RookeryEngine, tools: ValidationTools) => new RestoreDrill(engine, tools),
          inject: [VALIDATOR_ENGINE, VALIDATION_TOOLS],
        },
        { provide: EventLedger, useFactory: (resolved: RookeryConfig) => EventLedger.open(resolved.catalog.url), inject: [ROOKERY_CONFIG] },
        {
          provide: VALIDATOR_BUS,
          useFactory: (resolved: RookeryConfig, logger: PinoLogger) =>
            options.bus ??
            connectEventBus(
              { ...resolved.events, clientId: `${resolved.events.clientId}-validator`, consumer: 'validator' },
              (level, message, extra) => logger[level](extra, message),
            ),
          inject: [ROOKERY_CONFIG, PinoLogger],
        },
        {
          provide: ValidationRequestWindow,
          useFactory: (resolved: RookeryConfig) => new ValidationRequestWindow(resolved.validator.requestWindowSeconds * 1000),
          inject: [ROOKERY_CONFIG],
        },
        ValidatorService,
        DrillService,
      ],
    };
  }
}
