import { Command } from 'commander';
import type { WalLaunchers } from '@rookery/wal';
import { rootProgram, runProgram } from './cli.program';
import { walArchiverCommand, walGetCommand, walPrefetcherCommand, walPushCommand } from './commands/wal.commands';

/**
 * The WAL commands alone: PostgreSQL runs one process per WAL file (archive_command,
 * restore_command), so bin/rookery.js starts these without the rest of the CLI and engine
 * (PostgreSQL driver, backup and restore services, progress bars): less to load per file.
 */
export function buildWalProgram(launchers: WalLaunchers = {}): Command {
  const program = rootProgram();
  for (const command of [walPushCommand(launchers), walGetCommand(launchers)]) program.addCommand(command.exitOverride());
  program.addCommand(walArchiverCommand().exitOverride(), { hidden: true });
  program.addCommand(walPrefetcherCommand().exitOverride(), { hidden: true });
  return program;
}

/** `launchers`: how the archiver and the prefetcher are started (bin/rookery.js gives both). */
export function walMain(argv: string[], launchers: WalLaunchers = {}): Promise<number> {
  return runProgram(buildWalProgram(launchers), argv);
}
