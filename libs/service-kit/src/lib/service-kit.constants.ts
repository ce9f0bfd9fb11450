import type { ModuleRef } from '@nestjs/core';
import type { RookeryConfig } from '@rookery/config';
import type { TierName } from '@rookery/core';

/** Injection token of the frozen RookeryConfig (an interface, so it needs a token). */
export const ROOKERY_CONFIG = Symbol('ROOKERY_CONFIG');
/** Injection token of the tier an app serves (BackupScheduleHandler); the app provides it. */
export const SERVICE_TIER = Symbol('SERVICE_TIER');
/** Injection token of the ServiceKitOptions the module was built with. */
export const SERVICE_KIT_OPTIONS = Symbol('SERVICE_KIT_OPTIONS');

export interface ServiceKitOptions {
  /** The service's name: the engine's actor (lock holder, audit), the OpenAPI title, log lines. */
  serviceName: string;
  /** The validated configuration; default: loadConfig() (ROOKERY_CONFIG file, ./rookery.yaml, defaults). */
  config?: RookeryConfig;
  /** pino level; 'silent' in tests. Default 'info'. */
  logLevel?: string;
  /**
   * How long POST /backups waits for a backup to take the repository lock and start streaming
   * before it answers 202 anyway. A refusal (lock held elsewhere) within this window is a 409.
   */
  startWaitMs?: number;
  /**
   * How long a stopping service waits for its running backups to end once aborted. A backup still
   * running after it is recorded failed (it ignored the abort: a bug), so that no record stays
   * 'running' and the process can exit. Default 30 s.
   */
  shutdownWaitMs?: number;
}

export type ResolvedServiceKitOptions = Required<Omit<ServiceKitOptions, 'config'>> & { config: RookeryConfig };

/** The tier the app serves (its SERVICE_TIER provider), null for services of no one tier. */
export function serviceTierOf(moduleRef: ModuleRef): TierName | null {
  try {
    return moduleRef.get<TierName>(SERVICE_TIER, { strict: false });
  } catch {
    return null;
  }
}
