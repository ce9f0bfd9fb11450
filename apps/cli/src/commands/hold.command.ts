import { Command } from 'commander';
import { ConfigError, LegalHold, TierName } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { serviceClientOf } from '../service/service-client';
import { serviceHold } from '../service/service-commands';

interface HoldOptions extends GlobalOptions {
  backup?: string;
  reason?: string;
  release?: boolean;
  list?: boolean;
}

export function holdCommand(): Command {
  return new Command('hold')
    .description('place (or --release) a legal hold on a backup: expire never deletes a held backup, its chain or its WAL')
    .requiredOption('--tier <tier>', "the backup's tier")
    .option('--backup <id>', 'backup id (to place or release a hold)')
    .option('--reason <text>', 'why (case number, request): recorded with who and when')
    .option('--release', 'release the hold instead')
    .option('--list', "list the tier's legal holds instead")
    .option('--json', 'print the hold (or the list) as JSON')
    .action(async (options: HoldOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      checkHoldOptions(options);
      const service = await serviceClientOf(command);
      const result = service
        ? await serviceHold(service, tier, options)
        : await withEngine<LegalHold | LegalHold[]>(command, (engine) => {
            if (options.list) return engine.holds(tier);
            const backup = options.backup as string;
            return options.release ? engine.releaseHold(tier, backup) : engine.hold(tier, backup, options.reason ?? 'no reason given');
          });
      process.stdout.write(Array.isArray(result) ? holdList(result, tier, options.json) : holdChange(result, tier, options));
    });
}

/** One of place (--backup), release (--backup --release) or list (--list), each with its own options. */
export function checkHoldOptions(options: HoldOptions): void {
  if (options.list) {
    const extra = [options.backup && '--backup', options.reason && '--reason', options.release && '--release'].filter(Boolean) as string[];
    if (extra.length) throw new ConfigError(`--list goes alone: not with ${extra.join(', ')}`, extra);
    return;
  }
  if (!options.backup) throw new ConfigError('--backup ID is required to place or release a hold (or give --list)', ['--backup']);
  if (options.release && options.reason) throw new ConfigError('--reason goes with placing a hold, not with --release', ['--reason']);
}

function holdChange(hold: LegalHold, tier: TierName, options: HoldOptions): string {
  const verb = options.release ? 'released' : 'placed';
  return options.json
    ? `${JSON.stringify({ ...hold, status: verb }, null, 2)}\n`
    : `legal hold ${verb} on ${tier} backup ${hold.backupId}: ${hold.reason} (by ${hold.heldBy}, ${hold.heldAt})\n`;
}

function holdList(holds: LegalHold[], tier: TierName, json: boolean | undefined): string {
  if (json) return `${JSON.stringify({ holds }, null, 2)}\n`;
  if (!holds.length) return `no legal holds on tier ${tier}\n`;
  return `${holds.map((hold) => `${hold.tier} ${hold.backupId}: ${hold.reason} (by ${hold.heldBy}, ${hold.heldAt})`).join('\n')}\n`;
}
