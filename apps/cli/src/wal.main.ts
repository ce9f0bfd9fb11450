import { Command } from 'commander';
import { rootProgram, runProgram } from './cli.program';
import { walArchiverCommand, walGetCommand, walPrefetcherCommand, walPushCommand } from './commands/wal.commands';

/**
 * The WAL commands alone: PostgreSQL runs one process per WAL file (archive_command,
 * restore_command), so bin/rookery.js starts these without the rest of the CLI and engine
 * (PostgreSQL driver, backup and restore services, progress bars): less to load per file.
 */
export function buildWalProgram(): Command {
  const program = rootProgram();
  for (const command of [walPushCommand(), walGetCommand()]) program.addCommand(command.exitOverride());
  program.addCommand(walArchiverCommand().exitOverride(), { hidden: true });
  program.addCommand(walPrefetcherCommand().exitOverride(), { hidden: true });
  return program;
}

export function walMain(argv: string[]): Promise<number> {
  return runProgram(buildWalProgram(), argv);
}
