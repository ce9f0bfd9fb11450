import { Command, CommanderError } from 'commander';
import { ROOKERY_VERSION } from '@rookery/engine';
import { collect } from './cli.context';
import { EXIT, errorLine, exitCodeFor } from './cli.output';
import { backupCommand } from './commands/backup.command';
import { checkCommand } from './commands/check.command';
import { demoCommand } from './commands/demo.command';
import { drillCommand } from './commands/drill.command';
import { infoCommand } from './commands/info.command';
import { restoreCommand } from './commands/restore.command';
import { verifyCommand } from './commands/verify.command';
import { WAL_GET_ABORT_RECOVERY, WalGetFailedError, walArchiverCommand, walGetCommand, walPushCommand } from './commands/wal.commands';

/** The `rookery` command line (DESIGN §10): the contract scripts and runbooks rely on. */
export function buildProgram(): Command {
  const program = new Command('rookery')
    .description('backup and recovery for PostgreSQL fleets')
    .version(ROOKERY_VERSION)
    .option('--config <file>', 'config file (else $ROOKERY_CONFIG, else ./rookery.yaml, else built-in defaults)')
    .option('--repo <url>', 'repository store URL, repeatable, first is primary (overrides the config file)', collect)
    .option('--pg-url <url>', "the tier's database URL (overrides the config file; prefer PGPASSWORD or a passfile for the password)")
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  for (const command of [backupCommand(), infoCommand(), restoreCommand(), verifyCommand(), walPushCommand(), walGetCommand(), checkCommand(), demoCommand(), drillCommand()]) {
    program.addCommand(command.exitOverride());
  }
  program.addCommand(walArchiverCommand().exitOverride(), { hidden: true });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander already printed its message (usage errors, --help, --version).
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof WalGetFailedError) {
      process.stderr.write(`${errorLine(error.original)}\n`);
      return WAL_GET_ABORT_RECOVERY;
    }
    process.stderr.write(`${errorLine(error)}\n`);
    return exitCodeFor(error);
  }
}
