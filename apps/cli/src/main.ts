import { Command } from 'commander';
import { rootProgram, runProgram } from './cli.program';
import { authCommand } from './commands/auth.command';
import { backupCommand } from './commands/backup.command';
import { catalogCommand } from './commands/catalog.command';
import { checkCommand } from './commands/check.command';
import { demoCommand } from './commands/demo.command';
import { drCommand } from './commands/dr.command';
import { drillCommand } from './commands/drill.command';
import { expireCommand } from './commands/expire.command';
import { holdCommand } from './commands/hold.command';
import { infoCommand } from './commands/info.command';
import { replicateCommand, transitionCommand } from './commands/replicate.command';
import { reportCommand } from './commands/report.command';
import { repositoryCommand } from './commands/repository.command';
import { restoreCommand } from './commands/restore.command';
import { verifyCommand } from './commands/verify.command';
import { walArchiverCommand, walGetCommand, walPushCommand } from './commands/wal.commands';
import { rookeryVersion } from './cli.version';

/** The `rookery` command line (DESIGN §10): the contract scripts and runbooks rely on. */
export function buildProgram(): Command {
  const program = rootProgram(rookeryVersion());
  for (const command of [
    backupCommand(),
    infoCommand(),
    restoreCommand(),
    verifyCommand(),
    walPushCommand(),
    walGetCommand(),
    checkCommand(),
    demoCommand(),
    drillCommand(),
    reportCommand(),
    replicateCommand(),
    transitionCommand(),
  ]) {
    program.addCommand(command.exitOverride());
  }
  // Retention: expire, legal holds, and the catalog rebuilt from the repository.
  for (const command of [expireCommand(), holdCommand(), catalogCommand(), drCommand(), repositoryCommand(), authCommand()])
    program.addCommand(command.exitOverride());
  program.addCommand(walArchiverCommand().exitOverride(), { hidden: true });
  return program;
}

export function main(argv: string[]): Promise<number> {
  return runProgram(buildProgram(), argv);
}
