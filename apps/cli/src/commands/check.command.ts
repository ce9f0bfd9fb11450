import { Command, InvalidArgumentError } from 'commander';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { formatDuration } from '../cli.output';

interface CheckOptions extends GlobalOptions {
  timeout: number;
}

/** `rookery check --tier T` (like `pgbackrest check`): the server archives into this repository. */
export function checkCommand(): Command {
  return new Command('check')
    .description("check that the tier's server archives WAL into the repository (forces a WAL switch)")
    .requiredOption('--tier <tier>', 'tier to check (its pgUrl, or --pg-url)')
    .option('--timeout <seconds>', 'how long to wait for the switched segment', parseSeconds, 60)
    .option('--json', 'print the result as JSON')
    .action(async (options: CheckOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const result = await withEngine(command, (engine) => engine.wal.archiver.check(tier, { timeoutMs: options.timeout * 1000 }));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
        return;
      }
      process.stdout.write(
        `archiving ok for tier ${tier}: segment ${result.segment} reached the repository in ${formatDuration(Math.round(result.seconds * 1000))}\n`,
      );
    });
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError('must be a positive number of seconds');
  return seconds;
}
