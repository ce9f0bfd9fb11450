import { resolve } from 'node:path';

// The WAL commands' arguments as bin/rookery.js reads them before any library is loaded: node
// built-ins only. The full CLI (commander, apps/cli) declares the same options; wal.arguments.spec
// holds the two, and the shell fast paths, to the same answers over generated argument lists.

/** The commands bin/rookery.js starts without the rest of the CLI (apps/cli wal.main.ts). */
export const WAL_COMMANDS: ReadonlySet<string> = new Set(['wal-push', 'wal-get', 'wal-archiver', 'wal-prefetcher']);

/** The CLI's global options that take a value (rootProgram in apps/cli cli.program.ts). */
export const GLOBAL_OPTIONS_WITH_VALUE: ReadonlySet<string> = new Set([
  '--config',
  '--repo',
  '--pg-url',
  '--log-level',
  '--progress-interval',
  '--service',
  '--token-file',
  '--service-ca',
  // Refused by the CLI (a token in argv), but it takes a value all the same.
  '--token',
]);

/** The command name: the first argument that is neither a global option nor its value. */
export function commandOf(args: readonly string[]): string | undefined {
  for (let index = 0; index < args.length; index++) {
    if (GLOBAL_OPTIONS_WITH_VALUE.has(args[index])) index++;
    else if (!args[index].startsWith('-')) return args[index];
  }
  return undefined;
}

/** A wal-push invocation the fast path understands; anything else goes to the full CLI. */
export interface WalPushInvocation {
  path: string;
  tier: string;
  configFile?: string;
  repositories: string[];
  json: boolean;
}

const TIER_NAME = /^[a-z][a-z0-9-]*$/;

/**
 * `wal-push PATH --tier T [--config F] [--repo URL]… [--json]` in any order, or null for anything
 * else (other options, --help, a missing value): the full CLI then parses and reports it.
 */
export function parseWalPushArgs(args: readonly string[]): WalPushInvocation | null {
  const positional: string[] = [];
  const invocation: Omit<WalPushInvocation, 'path'> = { tier: '', repositories: [], json: false };
  let complete = true;
  for (let index = 0; index < args.length; index++) {
    const [flag, inline] = splitOption(args[index]);
    const value = () => {
      const given = inline ?? args[++index];
      if (!given) complete = false;
      return given ?? '';
    };
    if (flag === '--tier') invocation.tier = value();
    else if (flag === '--config') invocation.configFile = value();
    else if (flag === '--repo') invocation.repositories.push(value());
    else if (flag === '--json' && inline === undefined) invocation.json = true;
    else if (flag.startsWith('-')) return null;
    else positional.push(flag);
  }
  const [command, path, ...rest] = positional;
  if (!complete || command !== 'wal-push' || !path || rest.length || !TIER_NAME.test(invocation.tier)) return null;
  return { ...invocation, path };
}

function splitOption(arg: string): [string, string | undefined] {
  const equals = arg.startsWith('--') ? arg.indexOf('=') : -1;
  return equals > 0 ? [arg.slice(0, equals), arg.slice(equals + 1)] : [arg, undefined];
}

/** The global options to hand the background archiver: what PostgreSQL gave us, nothing more. */
export function globalArgsOf(invocation: Pick<WalPushInvocation, 'configFile' | 'repositories'>): string[] {
  const args: string[] = [];
  if (invocation.configFile) args.push('--config', resolve(invocation.configFile));
  for (const url of invocation.repositories) args.push('--repo', url);
  return args;
}
