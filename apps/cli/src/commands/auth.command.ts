import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import { ROLES, Role, TokenHashAlgorithm, createStaticToken, formatTokenLine, isRole, parseTokenFile } from '@rookery/auth';
import { ConfigError, TIER_NAMES, TierName, isTierName } from '@rookery/core';
import { collect, configFor } from '../cli.config';

const HEADER =
  '# rookery service tokens: id hash principal roles [tiers] (written by `rookery auth token create`; tokens are never stored)\n';

/**
 * `rookery auth token create|list|revoke`: static bearer tokens for the services' token file
 * (auth.tokenFile). create prints the token once on stdout and appends only its hash line.
 */
export function authCommand(): Command {
  const auth = new Command('auth').description('service authentication: static bearer tokens for auth.tokenFile');
  const token = new Command('token').description('create, list and revoke static tokens');
  token.addCommand(
    new Command('create')
      .description('create a token: printed once on stdout; only its hash line is written to the token file')
      .requiredOption('--principal <name>', 'who the token is for (named in the audit trail)')
      .requiredOption('--role <role>', `${ROLES.join(', ')} (repeatable)`, collect)
      .option('--tier <tier>', `limit the token to a tier (repeatable; default: every tier): ${TIER_NAMES.join(', ')}`, collect)
      .option('--file <path>', 'the token file (default: auth.tokenFile of the config)')
      .option('--hash <algorithm>', 'sha256 (default) or scrypt', 'sha256')
      .action(async (options: { principal: string; role: string[]; tier?: string[]; file?: string; hash: string }, command: Command) => {
        const roles = options.role.filter(isRole);
        const badRole = options.role.find((role) => !isRole(role));
        if (badRole) throw new ConfigError(`--role: unknown role '${badRole}' (roles: ${ROLES.join(', ')})`, ['--role']);
        const badTier = options.tier?.find((tier) => !isTierName(tier));
        if (badTier) throw new ConfigError(`--tier: unknown tier '${badTier}' (tiers: ${TIER_NAMES.join(', ')})`, ['--tier']);
        if (options.hash !== 'sha256' && options.hash !== 'scrypt')
          throw new ConfigError(`--hash: '${options.hash}' is not sha256 or scrypt`, ['--hash']);
        const path = tokenFile(options.file, command);
        const existing = await readExisting(path);
        const created = createStaticToken(
          { principal: options.principal, roles: roles as Role[], tiers: (options.tier ?? []) as TierName[] },
          options.hash as TokenHashAlgorithm,
        );
        // The file is checked whole first: a token appended to a file the services refuse would not work.
        if (existing !== null) parseTokenFile(existing, path);
        if (existing === null) await writeFile(path, `${HEADER}${created.line}\n`, { mode: 0o600, flag: 'wx' });
        else await appendFile(path, `${existing.endsWith('\n') || existing === '' ? '' : '\n'}${created.line}\n`);
        process.stderr.write(
          `token ${created.entry.id} for ${created.entry.principal} (${created.entry.roles.join(', ')}${created.entry.tiers ? ` on ${created.entry.tiers.join(', ')}` : ''}) added to ${path}; it is shown once:\n`,
        );
        process.stdout.write(`${created.token}\n`);
      }),
  );
  token.addCommand(
    new Command('list')
      .description('the token file’s entries: id, principal, roles, tiers (never a token)')
      .option('--file <path>', 'the token file (default: auth.tokenFile of the config)')
      .option('--json', 'as JSON')
      .action(async (options: { file?: string; json?: boolean }, command: Command) => {
        const path = tokenFile(options.file, command);
        const entries = parseTokenFile((await readExisting(path)) ?? '', path).map(({ id, principal, roles, tiers }) => ({
          id,
          principal,
          roles,
          tiers,
        }));
        process.stdout.write(
          options.json
            ? `${JSON.stringify(entries, null, 2)}\n`
            : entries
                .map((entry) => `${entry.id}  ${entry.principal}  ${entry.roles.join(',')}  ${entry.tiers?.join(',') ?? 'every tier'}\n`)
                .join(''),
        );
      }),
  );
  token.addCommand(
    new Command('revoke')
      .description('remove a token’s line (services reread the file when it changes)')
      .requiredOption('--id <id>', 'the token id (the 12 hex digits after rky_)')
      .option('--file <path>', 'the token file (default: auth.tokenFile of the config)')
      .action(async (options: { id: string; file?: string }, command: Command) => {
        const path = tokenFile(options.file, command);
        const entries = parseTokenFile((await readExisting(path)) ?? '', path);
        const kept = entries.filter((entry) => entry.id !== options.id);
        if (kept.length === entries.length) throw new ConfigError(`no token with id '${options.id}' in ${path}`, ['--id']);
        await writeFile(path, `${HEADER}${kept.map(formatTokenLine).join('\n')}${kept.length ? '\n' : ''}`, { mode: 0o600 });
        process.stderr.write(`token ${options.id} revoked in ${path}\n`);
      }),
  );
  return auth.addCommand(token);
}

function tokenFile(flag: string | undefined, command: Command): string {
  if (flag) return flag;
  const configured = configFor(command).auth.tokenFile;
  if (!configured) throw new ConfigError('no token file: pass --file or set auth.tokenFile in the config', ['--file', 'auth.tokenFile']);
  return configured;
}

async function readExisting(path: string): Promise<string | null> {
  try {
    await stat(path);
  } catch {
    return null;
  }
  return readFile(path, 'utf8');
}
