import { processEnvironment } from '@rookery/config';
import { ConfigError, TierName } from '@rookery/core';
import { createPostgresToolkit, listsStandby, synchronousStandbyNamesFor } from '@rookery/postgres';
import { RookeryEngine } from './rookery.engine';
import { WalStreamDependencies, WalStreamSupervisor } from './wal-stream.supervisor';
import { WalPushResult } from './wal.service';

/**
 * Builds the WAL stream supervisor of `config.walStream` on an engine: pg_receivewal from the
 * configured PostgreSQL programs, pushes through the engine's WalService (same repository, codec
 * and encryption as wal-push). The only place that turns the walStream config into parts.
 */
export async function createWalStreamSupervisor(
  engine: RookeryEngine,
  options: Pick<WalStreamDependencies, 'log' | 'sweepIntervalMs'> & {
    /** Called after each file is durable in the store (events, metrics). */
    onPushed?: (tier: TierName, result: WalPushResult) => void;
  } = {},
): Promise<WalStreamSupervisor> {
  const { onPushed, ...supervisorOptions } = options;
  const { config } = engine;
  const settings = config.walStream;
  const pgUrl = config.tiers[settings.tier].pgUrl;
  if (!pgUrl) {
    throw new ConfigError(`the wal stream needs the primary of tier '${settings.tier}': tiers.${settings.tier}.pgUrl is not set`, [
      `tiers.${settings.tier}.pgUrl`,
    ]);
  }
  const { receivewal: driver, receivewalClient: client } = await createPostgresToolkit({
    binDir: config.postgres.binDir,
    env: processEnvironment(),
  });
  return new WalStreamSupervisor({
    ...supervisorOptions,
    settings,
    pgUrl: pgUrl.reveal(),
    receiver: {
      createSlot: (request) => driver.createSlot(request),
      start: (request) => driver.start(request),
      state: (url, request) => client.state(url, request),
      setSynchronousStandbyNames: (url, value) => client.setSynchronousStandbyNames(url, value),
    },
    push: async (tier, path) => {
      const result = await engine.wal.push(tier, path);
      onPushed?.(tier, result);
      return result;
    },
    standbyNames: { for: synchronousStandbyNamesFor, lists: listsStandby },
    osUser: await engine.postgresAccount(),
  });
}
