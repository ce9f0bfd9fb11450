import { Command } from 'commander';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { backupJson, backupRows } from '../cli.output';

export function infoCommand(): Command {
  return new Command('info')
    .description('list the backups in the repository (newest last)')
    .option('--tier <tier>', 'only this tier')
    .option('--json', 'machine-readable output: {"backups":[…]}')
    .action(async (options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier);
      const { backups, damaged } = await withEngine(command, (engine) => engine.list(tier));
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ backups: backups.map(backupJson), damaged }, null, 2)}\n`);
        return;
      }
      process.stdout.write(backups.length ? `${backupRows(backups)}\n` : `no backups${tier ? ` of tier ${tier}` : ''}\n`);
      for (const entry of damaged) process.stderr.write(`rookery: warning: ${entry.problem}\n`);
    });
}
