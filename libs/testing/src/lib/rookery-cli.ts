import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The workspace root (from the sources or from dist/), and the `rookery` command as operators run it: bin/rookery.js over dist/. */
export const WORKSPACE_ROOT = workspaceRoot(__dirname);
export const ROOKERY_BIN = join(WORKSPACE_ROOT, 'bin', 'rookery.js');

export interface RookeryRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface RookeryRunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

/** Throws unless the CLI is built: its int-specs spawn the compiled command. */
export function assertCliBuilt(): void {
  if (!existsSync(join(WORKSPACE_ROOT, 'dist', 'apps', 'cli', 'src', 'main.js')))
    throw new Error('the CLI is not built: run npm run build');
}

/** Runs `rookery …args` to its end, its output piped (not a terminal). */
export function runRookery(args: readonly string[], options: RookeryRunOptions = {}): RookeryRun {
  const result = spawnSync(process.execPath, [ROOKERY_BIN, ...args], {
    cwd: options.cwd ?? WORKSPACE_ROOT,
    env: options.env ?? process.env,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 180_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs `rookery …args` with stdout and stderr into one file, as a cron job's `>> log 2>&1` does:
 * the output is in the order the command wrote it.
 */
export function runRookeryLogged(
  args: readonly string[],
  logFile: string,
  options: RookeryRunOptions = {},
): { status: number | null; output: string } {
  const log = openSync(logFile, 'w');
  try {
    const result = spawnSync(process.execPath, [ROOKERY_BIN, ...args], {
      cwd: options.cwd ?? WORKSPACE_ROOT,
      env: options.env ?? process.env,
      stdio: ['ignore', log, log],
      timeout: options.timeoutMs ?? 180_000,
    });
    return { status: result.status, output: readFileSync(logFile, 'utf8') };
  } finally {
    closeSync(log);
  }
}

/**
 * Runs `rookery …args` with a stdout whose reader went away before the command printed anything
 * (`rookery info | head -0`): the pipe is closed as soon as the process starts.
 */
export function runRookeryWithClosedStdout(
  args: readonly string[],
  options: RookeryRunOptions = {},
): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [ROOKERY_BIN, ...args], {
    cwd: options.cwd ?? WORKSPACE_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: options.timeoutMs ?? 180_000,
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (status) => done({ status, stderr }));
  });
}

function workspaceRoot(from: string): string {
  for (let directory = from; dirname(directory) !== directory; directory = dirname(directory)) {
    if (existsSync(join(directory, 'bin', 'rookery.js'))) return directory;
  }
  throw new Error(`no bin/rookery.js above ${from}`);
}
