import { Command } from 'commander';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { ConfigError, TIER_NAMES, TierName, UnknownTierError, isTierName } from '@rookery/core';

// Options and configuration of a command line, without the engine: shared by the full CLI and
// the WAL commands' lighter entry (wal.main.ts).

export interface GlobalOptions {
  config?: string;
  repo?: string[];
  pgUrl?: string;
  tier?: string;
  json?: boolean;
  progress?: boolean;
  logLevel?: string;
  progressInterval?: number;
}

export function parseTier(value: string | undefined): TierName | undefined {
  if (value === undefined) return undefined;
  if (!isTierName(value)) throw new UnknownTierError(value, TIER_NAMES);
  return value;
}

/**
 * Loads the configuration from --config/--repo/--pg-url and the environment. `events: false` for
 * the WAL commands, which never publish: PostgreSQL's account runs them with the configuration of
 * whoever set up the server, and must not need that account's Kafka password or event key.
 */
export function configFor(command: Command, options: { events?: boolean } = {}): RookeryConfig {
  const globals = command.optsWithGlobals<GlobalOptions>();
  return loadConfig({
    configFile: globals.config,
    repositories: globals.repo,
    pgUrl: globals.pgUrl,
    tier: parseTier(globals.tier),
    events: options.events,
  });
}

/** A `--now`-style option: the ISO-8601 time it names, or undefined when it is absent. */
export function parseTime(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const time = new Date(value);
  if (Number.isNaN(time.getTime())) throw new ConfigError(`${flag} '${value}' is not an ISO-8601 time`, [flag]);
  return time;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
