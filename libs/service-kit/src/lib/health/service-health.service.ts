import { Injectable } from '@nestjs/common';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { BackupCatalog } from '@rookery/catalog';
import { isRookeryError } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';

const CHECK_TIMEOUT_MS = 5_000;

/**
 * What /health reports: the repository's primary store answers and accepts a write (the same probe
 * a backup makes before it starts), and the catalog database answers a query. Each check is
 * bounded, so a hung store turns the service unhealthy instead of hanging the probe.
 */
@Injectable()
export class ServiceHealthService {
  constructor(
    private readonly indicators: HealthIndicatorService,
    private readonly engine: RookeryEngine,
    private readonly catalog: BackupCatalog,
  ) {}

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
