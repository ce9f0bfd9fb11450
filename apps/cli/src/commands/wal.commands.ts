import { Command } from 'commander';
import { RookeryError } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';

/**
 * wal-get exits 1 only when the file is not in the archive: that is how PostgreSQL's recovery
 * learns the archive has ended. Any other failure (store unreachable, damaged object, wrong key)
 * exits with this status, which PostgreSQL treats as fatal (> 125): recovery stops instead of
 * promoting at a point short of the target with WAL still in the archive.
 */
export const WAL_GET_ABORT_RECOVERY = 128;

export class WalGetFailedError extends Error {
  constructor(readonly original: unknown) {
    super(original instanceof Error ? original.message : String(original));
  }
}

export function walPushCommand(): Command {
  return new Command('wal-push')
    .description("archive one WAL file (archive_command = 'rookery wal-push %p --tier T')")
    .argument('<path>', 'the WAL file to archive (%p)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const result = await withEngine(command, (engine) => engine.wal.archiveCommand(tier, path));
      if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    });
}

export function walGetCommand(): Command {
  return new Command('wal-get')
    .description("fetch one WAL file for recovery (restore_command = 'rookery wal-get %f %p --tier T')")
    .argument('<name>', 'the WAL file name (%f)')
    .argument('<destination>', 'where to put it (%p)')
    .requiredOption('--tier <tier>', 'tier the server belongs to')
    .action(async (name: string, destination: string, options: GlobalOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      try {
        await withEngine(command, (engine) => engine.walGet(tier, name, destination));
      } catch (error) {
        if (error instanceof RookeryError && error.code === 'WAL_NOT_FOUND') throw error;
        throw new WalGetFailedError(error);
      }
    });
}
