import { resolve } from 'node:path';
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
  /**
   * How a server restored by this service runs rookery for its restore_command (rookeryCommand):
   * with it, a physical restore writes recovery settings and takes a recovery target; without, it
   * restores to the backup's end only.
   */
  selfCommand?: readonly string[];
}

export type ResolvedServiceKitOptions = Required<Omit<ServiceKitOptions, 'config' | 'selfCommand'>> &
  Pick<ServiceKitOptions, 'selfCommand'> & { config: RookeryConfig };

/**
 * The command a restored server runs rookery with: this node and the CLI of this checkout
 * (dist/apps/<service>/src/main.js → bin/rookery.js, from `mainDirectory`), with the same
 * configuration (the config file, or the repository URLs: store URLs carry no secrets).
 */
export function rookeryCommand(config: RookeryConfig, mainDirectory: string): string[] {
  const argv = [process.execPath, resolve(mainDirectory, '..', '..', '..', '..', 'bin', 'rookery.js')];
  if (config.source !== 'built-in defaults') argv.push('--config', resolve(config.source));
  else for (const url of config.repositories) argv.push('--repo', url);
  return argv;
}

/** The tier the app serves (its SERVICE_TIER provider), null for services of no one tier. */
export function serviceTierOf(moduleRef: ModuleRef): TierName | null {
  try {
    return moduleRef.get<TierName>(SERVICE_TIER, { strict: false });
  } catch {
    return null;
  }
}
