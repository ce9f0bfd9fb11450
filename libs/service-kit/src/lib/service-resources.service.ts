import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { BackupCatalog } from '@rookery/catalog';
import { RookeryEngine } from '@rookery/engine';

/** Closes what the service opened, after running backups have been stopped (BeforeApplicationShutdown). */
@Injectable()
export class ServiceResourcesService implements OnApplicationShutdown {
  private readonly logger = new Logger(ServiceResourcesService.name);

  constructor(
    private readonly engine: RookeryEngine,
    private readonly catalog: BackupCatalog,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.catalog.close().catch((error: unknown) => this.logger.warn(`closing the catalog failed: ${String(error)}`));
    await this.engine.close().catch((error: unknown) => this.logger.warn(`closing the engine failed: ${String(error)}`));
  }
}
