import { Command } from 'commander';
import { TIER_NAMES, TierName } from '@rookery/core';
import { RookeryEngine, WalStatus } from '@rookery/engine';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { backupJson, backupRows, walStatusLines } from '../cli.output';

export function infoCommand(): Command {
  return new Command('info')
    .description('list the backups in the repository (newest last) and where WAL archiving stands')
    .option('--tier <tier>', 'only this tier')
    .option('--json', 'machine-readable output: {"backups":[…],"wal":{"<tier>":{…}}}')
    .action(async (options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier);
      const { listing, wal } = await withEngine(command, async (engine) => ({
        listing: await engine.list(tier),
        wal: await walStatuses(engine, tier),
      }));
      const { backups, damaged } = listing;
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ backups: backups.map(backupJson), damaged, wal }, null, 2)}\n`);
        return;
      }
      process.stdout.write(backups.length ? `${backupRows(backups)}\n` : `no backups${tier ? ` of tier ${tier}` : ''}\n`);
      for (const status of Object.values(wal)) process.stdout.write(`\n${walStatusLines(status)}\n`);
      for (const entry of damaged) process.stderr.write(`rookery: warning: ${entry.problem}\n`);
    });
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
