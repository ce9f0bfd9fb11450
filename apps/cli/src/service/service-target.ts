import { readFile, stat } from 'node:fs/promises';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { Command } from 'commander';
import { SERVICE_TOKEN_ENV, serviceTokenFromEnv } from '@rookery/config';
import { ConfigError } from '@rookery/core';
import { log } from '../cli.log';

/** The global options that point a command at a rookery service instead of the repository. */
export interface ServiceOptions {
  service?: string;
  tokenFile?: string;
  serviceCa?: string;
}

/** A service the CLI calls: its base URL and the bearer token, when one was given. */
export interface ServiceTarget {
  url: URL;
  token?: string;
}

/** Environment variable that carries the token when there is no --token-file. */
export const TOKEN_ENV = SERVICE_TOKEN_ENV;

/** The commands that have a service equivalent (REST routes); every other one refuses --service. */
export const SERVICE_COMMANDS: readonly string[] = ['backup', 'restore', 'info', 'hold', 'expire'];

/**
 * The service the command talks to (--service or ROOKERY_SERVICE), with its token, or undefined
 * when the command works on the repository. The repository options describe the local way and
 * are refused next to --service rather than silently ignored.
 */
export async function serviceTargetOf(command: Command): Promise<ServiceTarget | undefined> {
  const options = command.optsWithGlobals<ServiceOptions & { repo?: string[]; pgUrl?: string; config?: string }>();
  if (!options.service) return undefined;
  const local = [options.repo && '--repo', options.pgUrl && '--pg-url', options.config && '--config'].filter(Boolean) as string[];
  if (local.length)
    throw new ConfigError(`${local.join(', ')} cannot go with --service: the service uses its own configuration`, local, {
      hint: 'drop them, or drop --service (and ROOKERY_SERVICE) to work on the repository from here',
    });
  const url = parseServiceUrl(options.service);
  if (options.serviceCa) await trustCaFile(options.serviceCa);
  return { url, token: await tokenOf(options.tokenFile) };
}

/** An http:// or https:// URL without credentials (a token goes in --token-file, never in argv). */
export function parseServiceUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`--service '${value}' is not a URL`, ['--service'], { hint: 'e.g. --service https://oltp-backup.internal:3000' });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`--service '${value}' must be an http:// or https:// URL`, ['--service']);
  if (url.username || url.password)
    throw new ConfigError(
      '--service must not carry credentials: a URL on the command line is visible to every user of the host',
      ['--service'],
      {
        hint: `put the token in a file (--token-file FILE, mode 0600) or in ${TOKEN_ENV}`,
      },
    );
  if (url.search || url.hash) throw new ConfigError(`--service '${value}' must not have a query or fragment`, ['--service']);
  // A trailing slash makes the routes resolve under a path prefix (a service behind a proxy at /rookery/).
  if (!url.pathname.endsWith('/')) url.pathname = `${url.pathname}/`;
  return url;
}

/**
 * The token from --token-file (its first line that is not blank or a comment), else ROOKERY_TOKEN.
 * Like ssh with a private key, a file others can read gets a warning (not a refusal: a token file
 * on a shared CI runner may be group-readable on purpose).
 */
export async function tokenOf(tokenFile: string | undefined, env?: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (!tokenFile) return serviceTokenFromEnv(env);
  let text: string;
  try {
    const mode = (await stat(tokenFile)).mode & 0o777;
    if (mode & 0o077)
      log.warn(`token file ${tokenFile} is readable by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${tokenFile}`);
    text = await readFile(tokenFile, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read --token-file ${tokenFile}: ${(error as Error).message}`, ['--token-file']);
  }
  const token = text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#'));
  if (!token) throw new ConfigError(`--token-file ${tokenFile} holds no token`, ['--token-file']);
  if (/\s/.test(token)) throw new ConfigError(`--token-file ${tokenFile}: the token line has spaces in it`, ['--token-file']);
  return token;
}

/**
 * Trusts the certificates in `file` for https calls, besides the system's: fetch (Node's bundled
 * undici) takes no per-call CA and undici's Agent is not a dependency here, so this sets the
 * process's default CA list, which only this command's calls use.
 */
async function trustCaFile(file: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read --service-ca ${file}: ${(error as Error).message}`, ['--service-ca']);
  }
  const certificates = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!certificates) throw new ConfigError(`--service-ca ${file} holds no PEM certificate`, ['--service-ca']);
  setDefaultCACertificates([...getCACertificates('default'), ...certificates]);
}

/** The command's top-level name (`hold` for `rookery hold`, `auth` for `rookery auth token create`). */
export function topCommandOf(command: Command): string {
  let current = command;
  while (current.parent?.parent) current = current.parent;
  return current.name();
}

/**
 * Refuses --service (given on the command line) on a command with no service equivalent. An
 * inherited ROOKERY_SERVICE is ignored there: a shell that exports it still runs `rookery check`
 * or wal-push (from archive_command) on the repository.
 */
export function assertServiceCommand(program: Command, action: Command): void {
  if (program.getOptionValueSource('service') !== 'cli' && !program.getOptionValue('tokenFile')) return;
  const name = topCommandOf(action);
  if (SERVICE_COMMANDS.includes(name)) return;
  const flag = program.getOptionValueSource('service') === 'cli' ? '--service' : '--token-file';
  throw new ConfigError(`rookery ${name} has no service equivalent: ${flag} goes with ${SERVICE_COMMANDS.join(', ')}`, [flag]);
}

/** --token exists only to be refused: argv is readable by every user of the host (ps, /proc). */
export function refuseTokenArgument(program: Command): void {
  if (program.getOptionValue('token') === undefined) return;
  throw new ConfigError('--token is not accepted: a token on the command line is visible to every user of the host', ['--token'], {
    hint: `put it in a file (--token-file FILE, mode 0600) or in ${TOKEN_ENV}`,
  });
}
