/**
 * What the CLI says on stderr besides its one error line, by level (`--log-level`): warnings,
 * progress lines (info) and what it read its settings from (debug). Errors are always printed.
 */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

/** Progress lines on a non-terminal stderr: every 10 s per step (pgBackRest's log does the same). */
export const DEFAULT_PROGRESS_INTERVAL_SECONDS = 10;

let threshold: LogLevel = DEFAULT_LOG_LEVEL;
let progressInterval = DEFAULT_PROGRESS_INTERVAL_SECONDS;

/** Set once per run, from --log-level and --progress-interval, before the command's action. */
export function configureLog(options: { level?: LogLevel; progressIntervalSeconds?: number }): void {
  threshold = options.level ?? DEFAULT_LOG_LEVEL;
  progressInterval = options.progressIntervalSeconds ?? DEFAULT_PROGRESS_INTERVAL_SECONDS;
}

/** Seconds between two progress lines of one step in a log. */
export function progressIntervalSeconds(): number {
  return progressInterval;
}

/** Whether messages of `level` are printed in this run. */
export function logs(level: LogLevel): boolean {
  return LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf(threshold);
}

function write(level: LogLevel, line: string): void {
  if (logs(level)) process.stderr.write(`${line}\n`);
}

export const log = {
  warn: (message: string) => write('warn', `rookery: warning: ${message}`),
  info: (message: string) => write('info', `rookery: ${message}`),
  debug: (message: string) => write('debug', `rookery: debug: ${message}`),
};
