import { Command } from 'commander';
import { LegalHold, TIER_NAMES, TierName } from '@rookery/core';
import { ObjectLockStatus, ReplicationStatus, RookeryEngine, WalStatus } from '@rookery/engine';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { backupJson, backupRows, walStatusLines } from '../cli.output';
import { replicationLines } from './replicate.command';

export function infoCommand(): Command {
  return new Command('info')
    .description('list the backups in the repository (newest last) and where WAL archiving stands')
    .option('--tier <tier>', 'only this tier')
    .option('--json', 'machine-readable output: {"backups":[…],"wal":{"<tier>":{…}},"replication":{"<tier>":{…}},"objectLock":[…]}')
    .action(async (options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier);
      const { listing, wal, holds, replication, objectLock } = await withEngine(command, async (engine) => {
        const found = await engine.list(tier);
        const tiers = tier ? [tier] : TIER_NAMES.filter((name) => found.backups.some((backup) => backup.tier === name));
        return {
          listing: found,
          wal: await walStatuses(engine, tier),
          holds: await legalHolds(engine, tier),
          ...(await replicationStatuses(engine, tiers)),
        };
      });
      const { backups, damaged } = listing;
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ backups: backups.map(backupJson), damaged, wal, holds, replication, objectLock }, null, 2)}\n`);
        return;
      }
      process.stdout.write(backups.length ? `${backupRows(backups)}\n` : `no backups${tier ? ` of tier ${tier}` : ''}\n`);
      for (const status of Object.values(wal)) process.stdout.write(`\n${walStatusLines(status)}\n`);
      for (const status of Object.values(replication)) if (status.regions.length) process.stdout.write(`\n${replicationLines(status)}\n`);
      for (const lock of objectLock) {
        process.stdout.write(`\nobject lock ${lock.region} (${lock.store}): ${lock.supported ? 'yes' : 'NOT AVAILABLE'}, ${lock.detail}\n`);
      }
      if (holds.length) process.stdout.write(`\nlegal holds (never expired):\n${holds.map((hold) => `  ${hold.tier} ${hold.backupId}: ${hold.reason} (by ${hold.heldBy}, ${hold.heldAt})`).join('\n')}\n`);
      for (const entry of damaged) process.stderr.write(`rookery: warning: ${entry.problem}\n`);
    });
}

/** Legal holds in the repository, of the tier asked for or of every tier. */
async function legalHolds(engine: RookeryEngine, tier: TierName | undefined): Promise<LegalHold[]> {
  const holds: LegalHold[] = [];
  for (const name of tier ? [tier] : TIER_NAMES) holds.push(...(await engine.holds(name)));
  return holds;
}

/**
 * Copy status per backup and WAL lag per region of each tier, and whether each store can lock
 * objects (a store that cannot is reported, never assumed immutable).
 */
async function replicationStatuses(
  engine: RookeryEngine,
  tiers: readonly TierName[],
): Promise<{ replication: Record<string, ReplicationStatus>; objectLock: ObjectLockStatus[] }> {
  const replication: Record<string, ReplicationStatus> = {};
  const objectLock = new Map<string, ObjectLockStatus>();
  for (const name of tiers) {
    replication[name] = await engine.replicationStatus(name);
    for (const lock of await engine.objectLockStatus(name)) if (!objectLock.has(lock.store)) objectLock.set(lock.store, lock);
  }
  return { replication, objectLock: [...objectLock.values()] };
}

/** WAL status of the tier asked for, or of every tier that archives WAL or has a server configured. */
async function walStatuses(engine: RookeryEngine, tier: TierName | undefined): Promise<Record<string, WalStatus>> {
  const result: Record<string, WalStatus> = {};
  for (const name of tier ? [tier] : TIER_NAMES) {
    const status = await engine.walStatus(name);
    if (tier || status.archivedFiles > 0 || status.server) result[name] = status;
  }
  return result;
}
