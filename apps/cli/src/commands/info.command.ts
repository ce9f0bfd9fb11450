import { Command } from 'commander';
import { BackupManifest, BackupNotFoundError, ConfigError, LegalHold, TIER_NAMES, TierName } from '@rookery/core';
import { ObjectLockStatus, ReplicationStatus, RookeryEngine } from '@rookery/engine';
import { WalStatus } from '@rookery/wal';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { log } from '../cli.log';
import { backupJson, backupRows, chainOf, tablespaceRows, tablespacesOf, walStatusLines } from '../cli.output';
import { assertRepositoryExists } from '../cli.repository';
import { serviceClientOf } from '../service/service-client';
import { serviceInfo } from '../service/service-commands';
import { backupDetail, detailJson, detailText } from './info-backup';
import { replicationLines } from './replicate.command';

export function infoCommand(): Command {
  return new Command('info')
    .description('list the backups in the repository (newest last) and where WAL archiving stands; with --backup, the detail of one backup')
    .option('--tier <tier>', 'only this tier')
    .option('--backup <id>', "one backup in detail: artifacts, chain, WAL range, copies, legal hold ('latest' with --tier)")
    .option('--json', 'machine-readable output: {"backups":[…],"wal":{"<tier>":{…}},"replication":{"<tier>":{…}},"objectLock":[…]}')
    .action(async (options: GlobalOptions & { backup?: string }, command: Command) => {
      const tier = parseTier(options.tier);
      const service = await serviceClientOf(command);
      if (service) return serviceInfo(service, tier, options);
      if (options.backup) return showBackup(command, options.backup, tier, options.json === true);
      const { listing, wal, holds, replication, objectLock } = await withEngine(command, async (engine) => {
        const found = await engine.list(tier);
        if (found.backups.length === 0 && found.damaged.length === 0) await assertRepositoryExists(engine.store);
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
        const listed = backups.map((backup) => ({ ...backupJson(backup), chain: chainOf(backup, backups) }));
        process.stdout.write(`${JSON.stringify({ backups: listed, damaged, wal, holds, replication, objectLock }, null, 2)}\n`);
        return;
      }
      process.stdout.write(backups.length ? `${backupRows(backups)}\n` : `no backups${tier ? ` of tier ${tier}` : ''}\n`);
      const withTablespaces = backups.filter((backup) => tablespacesOf(backup).length > 0);
      if (withTablespaces.length) process.stdout.write(`\ntablespaces\n${tablespaceRows(withTablespaces, true).replace(/^/gm, '  ')}\n`);
      for (const status of Object.values(wal)) process.stdout.write(`\n${walStatusLines(status)}\n`);
      for (const status of Object.values(replication)) if (status.regions.length) process.stdout.write(`\n${replicationLines(status)}\n`);
      for (const lock of objectLock) {
        process.stdout.write(`\nobject lock ${lock.region} (${lock.store}): ${lock.supported ? 'yes' : 'NOT AVAILABLE'}, ${lock.detail}\n`);
      }
      if (holds.length)
        process.stdout.write(
          `\nlegal holds (never expired):\n${holds.map((hold) => `  ${hold.tier} ${hold.backupId}: ${hold.reason} (by ${hold.heldBy}, ${hold.heldAt})`).join('\n')}\n`,
        );
      for (const entry of damaged) log.warn(entry.problem);
    });
}

/** `info --backup ID`: one backup in detail. */
async function showBackup(command: Command, id: string, tier: TierName | undefined, json: boolean): Promise<void> {
  const detail = await withEngine(command, async (engine) => backupDetail(engine, await findBackup(engine, id, tier)));
  process.stdout.write(json ? `${JSON.stringify(detailJson(detail), null, 2)}\n` : detailText(detail));
}

/** The backup `id` names: in --tier, else in the tier its id names ('latest' needs --tier). */
async function findBackup(engine: RookeryEngine, id: string, tier: TierName | undefined): Promise<BackupManifest> {
  const named = tier ?? TIER_NAMES.find((name) => new RegExp(`^\\d{8}T\\d{6}Z-${name}(-[a-z0-9]+)?$`).test(id));
  if (!named) throw new ConfigError(`--backup '${id}' names no tier: give --tier`, ['--backup', '--tier']);
  try {
    return await engine.find(named, id);
  } catch (error) {
    // A backup not found in a repository that is not there: say that instead.
    if (error instanceof BackupNotFoundError) await assertRepositoryExists(engine.store);
    throw error;
  }
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

/**
 * WAL status of the tier asked for, or of every tier that archives WAL or has a server
 * configured; physical tiers only: a logical tier's backups are dumps that need no WAL, so it has
 * no archive to report and no WAL-based RPO exposure.
 */
async function walStatuses(engine: RookeryEngine, tier: TierName | undefined): Promise<Record<string, WalStatus>> {
  const result: Record<string, WalStatus> = {};
  for (const name of tier ? [tier] : TIER_NAMES) {
    if (engine.config.tiers[name].policy.method !== 'physical') continue;
    const status = await engine.walStatus(name);
    if (tier || status.archivedFiles > 0 || status.server) result[name] = status;
  }
  return result;
}
