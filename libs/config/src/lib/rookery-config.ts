import {
  CompressionSpec,
  DEFAULT_POLICIES,
  Secret,
  TIER_NAMES,
  TierName,
  TierPolicy,
  UnknownTierError,
  isTierName,
} from '@rookery/core';

/** The validated, frozen configuration every command and service receives. */
export interface RookeryConfig {
  /** Where the config came from, for messages: a file path or 'built-in defaults'. */
  source: string;
  /** Store URLs; the first is the primary. Empty when none was configured. */
  repositories: readonly string[];
  compression: CompressionSpec & { workers: number; chunkSize: number };
  /** Client-side encryption key material (file content or env value), parsed by the pipeline. */
  encryptionKey: Secret<Buffer> | null;
  postgres: { binDir?: string };
  catalog: { url: string };
  service: { host: string; port: number };
  tiers: Readonly<Record<TierName, TierConfig>>;
}

export interface TierConfig {
  policy: TierPolicy;
  /** The tier's database; a password in it is a secret and is passed to libpq via env only. */
  pgUrl: Secret<string> | null;
  checkpoint: 'fast' | 'spread';
}

export const DEFAULT_COMPRESSION: RookeryConfig['compression'] = Object.freeze({
  codec: 'zstd',
  level: 1,
  workers: 0,
  chunkSize: 4 * 1024 * 1024,
});

export function tierConfig(config: RookeryConfig, tier: string): TierConfig {
  if (!isTierName(tier)) throw new UnknownTierError(tier, TIER_NAMES);
  return config.tiers[tier];
}

export function defaultTierConfigs(): Record<TierName, TierConfig> {
  return Object.fromEntries(
    TIER_NAMES.map((tier) => [
      tier,
      { policy: { ...DEFAULT_POLICIES[tier] }, pgUrl: null, checkpoint: 'fast' as const },
    ]),
  ) as Record<TierName, TierConfig>;
}
