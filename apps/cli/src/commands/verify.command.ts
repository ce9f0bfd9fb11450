import { Command } from 'commander';
import { IntegrityError } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { progressBars } from '../cli.output';

export function verifyCommand(): Command {
  return new Command('verify')
    .description("re-read a backup's artifacts from the store and check checksums and archives")
    .requiredOption('--tier <tier>', 'tier of the backup')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--json', 'print the result as JSON')
    .action(async (options: GlobalOptions & { backup: string }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const progress = progressBars(!options.json);
      const result = await withEngine(command, (engine) =>
        engine.verify(tier, options.backup, { onProgress: progress.listener }).finally(progress.stop),
      );
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const artifact of result.artifacts) {
          process.stdout.write(
            artifact.ok
              ? `ok      ${artifact.name} (${artifact.entries} archive entries)\n`
              : `FAILED  ${artifact.name}: ${artifact.error?.message}\n`,
          );
        }
      }
      if (!result.ok) {
        const failed = result.artifacts.find((artifact) => !artifact.ok);
        throw new IntegrityError(`backup '${result.backup}' failed verification: ${failed?.error?.message}`);
      }
    });
}
