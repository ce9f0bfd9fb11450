import { Command } from 'commander';
import { ConfigError } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';

export function holdCommand(): Command {
  return new Command('hold')
    .description('place (or --release) a legal hold on a backup: expire never deletes a held backup, its chain or its WAL')
    .requiredOption('--tier <tier>', "the backup's tier")
    .requiredOption('--backup <id>', 'backup id')
    .option('--reason <text>', 'why (case number, request): recorded with who and when')
    .option('--release', 'release the hold instead')
    .option('--json', 'print the hold as JSON')
    .action(async (options: GlobalOptions & { backup: string; reason?: string; release?: boolean }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      if (options.release && options.reason) throw new ConfigError('--reason goes with placing a hold, not with --release', ['--reason']);
      const hold = await withEngine(command, (engine) =>
        options.release ? engine.releaseHold(tier, options.backup) : engine.hold(tier, options.backup, options.reason ?? 'no reason given'),
      );
      const verb = options.release ? 'released' : 'placed';
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ ...hold, status: verb }, null, 2)}\n`
          : `legal hold ${verb} on ${tier} backup ${hold.backupId}: ${hold.reason} (by ${hold.heldBy}, ${hold.heldAt})\n`,
      );
    });
}
