import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { collect } from './cli.config';
import { EXIT, errorLine, exitCodeFor } from './cli.errors';
import { DEFAULT_PROGRESS_INTERVAL_SECONDS, LOG_LEVELS, LogLevel, configureLog } from './cli.log';
import { outcomeOf } from './cli.outcome';
import { assertServiceCommand, refuseTokenArgument } from './service/service-target';
import { WAL_GET_ABORT_RECOVERY, WalGetFailedError } from './commands/wal.commands';

/** The `rookery` program with its global options, before its commands are added. */
export function rootProgram(version?: string): Command {
  const program = new Command('rookery').description('backup and recovery for PostgreSQL fleets');
  if (version) program.version(version);
  return (
    program
      .option('--config <file>', 'config file (else $ROOKERY_CONFIG, else ./rookery.yaml, else built-in defaults)')
      .option('--repo <url>', 'repository store URL, repeatable, first is primary (overrides the config file)', collect)
      .option('--pg-url <url>', "the tier's database URL (overrides the config file; prefer PGPASSWORD or a passfile for the password)")
      .addOption(
        new Option(
          '--log-level <level>',
          'what is printed on stderr besides errors: warnings (warn), progress lines (info), settings read (debug)',
        )
          .choices(LOG_LEVELS)
          .default('info')
          .env('ROOKERY_LOG_LEVEL'),
      )
      .addOption(
        new Option(
          '--progress-interval <seconds>',
          'seconds between progress lines of a step when stderr is not a terminal (0: every update)',
        )
          .argParser(parseSeconds)
          .default(DEFAULT_PROGRESS_INTERVAL_SECONDS),
      )
      .addOption(
        new Option(
          '--service <url>',
          'run backup, restore, info, hold and expire --dry-run through this rookery tier service (http:// or https://) instead of on the repository',
        ).env('ROOKERY_SERVICE'),
      )
      .option(
        '--token-file <file>',
        "file holding the service's bearer token (mode 0600; else $ROOKERY_TOKEN); never give it on the command line",
      )
      .addOption(new Option('--service-ca <file>', 'PEM CA certificate(s) to trust for an https:// service').env('ROOKERY_SERVICE_CA'))
      // Only to refuse it with a reason: a token in argv is visible to every user of the host (ps).
      .addOption(new Option('--token <token>').hideHelp())
      .hook('preAction', (program, action) => {
        const options = action.optsWithGlobals<{ logLevel?: LogLevel; progressInterval?: number }>();
        configureLog({ level: options.logLevel, progressIntervalSeconds: options.progressInterval });
        refuseTokenArgument(program);
        assertServiceCommand(program, action);
      })
      .exitOverride()
      .configureOutput({ writeErr: (text) => process.stderr.write(text) })
  );
}

/**
 * Runs the program; resolves with the exit status, the only one the process ends with: 0 only
 * when the command did everything it was asked. A failure (thrown) or an incomplete run (see
 * reporting) prints one line on stderr.
 */
export async function runProgram(program: Command, argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    const incomplete = outcomeOf(program);
    if (!incomplete) return EXIT.ok;
    process.stderr.write(`rookery: ${incomplete.summary}\n`);
    return EXIT.failure;
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

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0 || value.trim() === '')
    throw new InvalidArgumentError('must be a number of seconds, 0 or more');
  return seconds;
}
