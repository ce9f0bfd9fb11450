import { Inject, Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { BackupCatalog } from '@rookery/catalog';
import { isRookeryError } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS, serviceTierOf } from '../service-kit.constants';

const CHECK_TIMEOUT_MS = 5_000;

/**
 * What /health reports: which service this is and the tier it serves (so a client checks it is
 * talking to the service it means before it asks for anything), the repository's primary store
 * answers and accepts a write (the same probe a backup makes before it starts), and the catalog
 * database answers a query. Each check is bounded, so a hung store turns the service unhealthy
 * instead of hanging the probe.
 */
@Injectable()
export class ServiceHealthService {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly engine: RookeryEngine,
    private readonly catalog: BackupCatalog,
    private readonly moduleRef: ModuleRef,
    @Inject(SERVICE_KIT_OPTIONS) private readonly options: ResolvedServiceKitOptions,
  ) {}

  /** Always up: the service's name and tier (null for the fleet-wide validator and compliance services). */
  service(): HealthIndicatorResult<'service'> {
    return this.indicators.check('service').up({ name: this.options.serviceName, tier: serviceTierOf(this.moduleRef) });
  }

  repository(): Promise<HealthIndicatorResult<'repository'>> {
    const store = this.engine.store;
    return this.probe('repository', () => store.check(), { store: store.description });
  }

  catalogDatabase(): Promise<HealthIndicatorResult<'catalog'>> {
    return this.probe('catalog', () => this.catalog.check(), {});
  }

  private async probe<Key extends string>(
    key: Key,
    check: () => Promise<void>,
    details: Record<string, string>,
  ): Promise<HealthIndicatorResult<Key>> {
    const session = this.indicators.check(key);
    try {
      await withTimeout(check(), CHECK_TIMEOUT_MS, `${key} check timed out after ${CHECK_TIMEOUT_MS} ms`);
      return session.up(details);
    } catch (error) {
      return session.down({ ...details, ...reason(error) });
    }
  }
}

function reason(error: unknown): { message: string; code?: string; hint?: string } {
  if (isRookeryError(error)) return { code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) };
  // Driver errors (pg, sqlite) carry no credentials in their message; keep only the message.
  return { message: error instanceof Error ? error.message : String(error) };
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
