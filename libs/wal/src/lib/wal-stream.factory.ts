import { RookeryConfig } from '@rookery/config';
import { ConfigError, TierName } from '@rookery/core';
import { PostgresToolkit, listsStandby, synchronousStandbyNamesFor } from '@rookery/postgres';
import { WalStreamDependencies, WalStreamSupervisor } from './wal-stream.supervisor';
import { WalPushResult, WalTransfer } from './wal.transfer';

/** pg_receivewal and the SQL that watches it, from the process's one PostgresToolkit. */
export type WalStreamTools = Pick<PostgresToolkit, 'receivewal' | 'receivewalClient'>;

/** What the WAL stream takes from whoever runs it (the engine: RookeryEngine.walStreamSource()). */
export interface WalStreamSource {
  config: Pick<RookeryConfig, 'walStream' | 'tiers'>;
  /** The runner's own toolkit: the stream builds no second runner or PostgreSQL installation. */
  tools: WalStreamTools;
  /** Pushes each file: the engine's WalService, same repository, codec and encryption as wal-push. */
  wal: Pick<WalTransfer, 'push'>;
  /** The account the server's files belong to (pg_receivewal's spool is handed to it). */
  osUser(): Promise<{ uid: number; gid: number } | null>;
}

/**
 * Builds the WAL stream supervisor of `config.walStream`: pg_receivewal from the source's
 * PostgreSQL toolkit, pushes through the source's WAL transfer. The only place that turns the
 * walStream config into parts.
 */
export async function createWalStreamSupervisor(
  source: WalStreamSource,
  options: Pick<WalStreamDependencies, 'log' | 'sweepIntervalMs'> & {
    /** Called after each file is durable in the store (events, metrics). */
    onPushed?: (tier: TierName, result: WalPushResult) => void;
  } = {},
): Promise<WalStreamSupervisor> {
  const { onPushed, ...supervisorOptions } = options;
  const { config } = source;
  const settings = config.walStream;
  const pgUrl = config.tiers[settings.tier].pgUrl;
  if (!pgUrl) {
    throw new ConfigError(`the wal stream needs the primary of tier '${settings.tier}': tiers.${settings.tier}.pgUrl is not set`, [
      `tiers.${settings.tier}.pgUrl`,
    ]);
  }
  const { receivewal: driver, receivewalClient: client } = source.tools;
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
      const result = await source.wal.push(tier, path);
      onPushed?.(tier, result);
      return result;
    },
    standbyNames: { for: synchronousStandbyNamesFor, lists: listsStandby },
    osUser: await source.osUser(),
  });
}
