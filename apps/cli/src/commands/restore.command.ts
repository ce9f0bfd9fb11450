import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { formatBytes, progressBars } from '../cli.output';

interface RestoreOptions extends GlobalOptions {
  backup: string;
  to?: string;
  start?: boolean;
  port?: number;
  targetUrl?: string;
}

export function restoreCommand(): Command {
  return new Command('restore')
    .description('restore a backup into a new, empty data directory')
    .requiredOption('--tier <tier>', 'tier to restore')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--to <dir>', 'data directory to create (physical tiers); must be absent or empty')
    .option('--start', 'start the restored server and wait until it accepts connections')
    .option('--port <n>', 'port for --start', parsePort)
    .option('--json', 'print the result as JSON')
    .action(async (options: RestoreOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      if (!options.to) throw new ConfigError('--to DIR is required to restore a physical backup', ['--to']);
      const progress = progressBars(!options.json);
      const result = await withEngine(command, (engine) =>
        engine
          .restore({ tier, backup: options.backup, to: options.to as string, start: options.start, port: options.port, onProgress: progress.listener })
          .finally(progress.stop),
      );
      if (options.json) {
        process.stdout.write(
          `${JSON.stringify({ backup: result.manifest.id, tier, dataDirectory: result.dataDirectory, bytes: result.bytes, startedOnPort: result.startedOnPort ?? null }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `restored backup ${result.manifest.id} (${formatBytes(result.bytes)}) into ${result.dataDirectory}` +
          (result.startedOnPort ? `; server accepting connections on port ${result.startedOnPort}` : '') +
          '\n',
      );
    });
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('must be a port number 1-65535');
  return port;
}
