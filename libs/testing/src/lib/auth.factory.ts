import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Role, createStaticToken } from '@rookery/auth';
import { TierName } from '@rookery/core';

export { TestSigningKey, jwtClaims, makeSigningKey, signJwt } from '@rookery/auth';

/**
 * Writes a token file in `directory` with one token per entry (as `rookery auth token create`
 * would) and returns the file's path and each token by principal name.
 */
export async function writeTokenFile(
  directory: string,
  entries: readonly { principal: string; roles: Role[]; tiers?: TierName[] }[],
): Promise<{ path: string; tokens: Record<string, string> }> {
  const created = entries.map((entry) => createStaticToken(entry));
  const path = join(directory, 'tokens');
  await writeFile(path, `# test tokens\n${created.map((token) => token.line).join('\n')}\n`, { mode: 0o600 });
  return { path, tokens: Object.fromEntries(created.map((token) => [token.entry.principal, token.token])) };
}
