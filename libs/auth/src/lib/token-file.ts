import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { ConfigError, TIER_NAMES, TierName, UnauthenticatedError, isTierName } from '@rookery/core';
import { Principal, ROLES, Role, isRole } from './principal';

/**
 * Static bearer tokens for small installs. A token is `rky_<id>_<secret>`: the id (12 hex
 * digits) finds its line, the secret (32 random bytes) is what proves it. The file holds one line
 * per token, never the token itself:
 *
 *     # id           hash                 principal    roles            tiers (optional)
 *     3f9a2c1b7d0e   sha256:<base64url>   ci-pipeline  operator,auditor content
 *
 * The hash is sha256 of the whole token by default: the secret has 256 bits of entropy, so a slow
 * hash adds cost to every request and no protection. The sha256 may be written in hex (64 digits)
 * by tools without base64url, such as sha256sum in a shell script. `scrypt:<N>:<r>:<p>:<salt>:<hash>` is
 * accepted too for those whose policy asks for one (a scrypt on a token's first use in a process).
 */
export interface TokenEntry {
  id: string;
  hash: string;
  principal: string;
  roles: Role[];
  /** null: every tier. */
  tiers: TierName[] | null;
}

export const TOKEN_PREFIX = 'rky_';
const TOKEN_PATTERN = /^rky_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const PRINCIPAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/;
const HASH_PATTERN = /^(sha256:([A-Za-z0-9_-]{43}|[0-9a-f]{64})|scrypt:\d+:\d+:\d+:[A-Za-z0-9_-]{16,}:[A-Za-z0-9_-]{43})$/;

export type TokenHashAlgorithm = 'sha256' | 'scrypt';

/** A new token and the line that goes into the token file for it. The token is shown once, never stored. */
export function createStaticToken(
  entry: { principal: string; roles: readonly Role[]; tiers?: readonly TierName[] | null },
  algorithm: TokenHashAlgorithm = 'sha256',
): { token: string; line: string; entry: TokenEntry } {
  const problems = entryProblems(entry.principal, [...entry.roles], entry.tiers ?? null);
  if (problems.length) throw new ConfigError(`cannot create a token: ${problems.join('; ')}`, problems);
  const id = randomBytes(6).toString('hex');
  const token = `${TOKEN_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  const created: TokenEntry = {
    id,
    hash: hashToken(token, algorithm),
    principal: entry.principal,
    roles: [...new Set(entry.roles)],
    tiers: entry.tiers && entry.tiers.length ? [...new Set(entry.tiers)] : null,
  };
  return { token, line: formatTokenLine(created), entry: created };
}

export function hashToken(token: string, algorithm: TokenHashAlgorithm = 'sha256'): string {
  if (algorithm === 'sha256') return `sha256:${createHash('sha256').update(token).digest('base64url')}`;
  const salt = randomBytes(16);
  const [N, r, p] = [16384, 8, 1];
  return `scrypt:${N}:${r}:${p}:${salt.toString('base64url')}:${scryptSync(token, salt, 32, { N, r, p }).toString('base64url')}`;
}

/** Whether `token` hashes to `hash` (either form), in constant time for the comparison. */
export function tokenMatches(token: string, hash: string): boolean {
  let expected: Buffer;
  let actual: Buffer;
  if (hash.startsWith('sha256:')) {
    const digest = hash.slice('sha256:'.length);
    // 64 hex digits: what a shell script writes with sha256sum (docker/init-secrets.sh).
    expected = Buffer.from(digest, /^[0-9a-f]{64}$/.test(digest) ? 'hex' : 'base64url');
    actual = createHash('sha256').update(token).digest();
  } else if (hash.startsWith('scrypt:')) {
    const [, N, r, p, salt, digest] = hash.split(':');
    expected = Buffer.from(digest, 'base64url');
    actual = scryptSync(token, Buffer.from(salt, 'base64url'), expected.length, {
      N: Number(N),
      r: Number(r),
      p: Number(p),
      maxmem: 256 * Number(N) * Number(r),
    });
  } else {
    return false;
  }
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

export function formatTokenLine(entry: TokenEntry): string {
  return [entry.id, entry.hash, entry.principal, entry.roles.join(','), ...(entry.tiers ? [entry.tiers.join(',')] : [])].join(' ');
}

/** Parses a token file; every bad line is reported at once (line numbers from 1), none is skipped. */
export function parseTokenFile(text: string, source: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  const ids = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const where = `${source}:${index + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length < 4 || fields.length > 5) {
      problems.push(`${where}: expected 'id hash principal roles [tiers]', got ${fields.length} fields`);
      return;
    }
    const [id, hash, principal, roleList, tierList] = fields;
    if (!/^[0-9a-f]{12}$/.test(id)) problems.push(`${where}: id '${id}' is not 12 hex digits`);
    else if (ids.has(id)) problems.push(`${where}: id '${id}' appears twice`);
    ids.add(id);
    if (!HASH_PATTERN.test(hash))
      problems.push(`${where}: hash must be sha256:<base64url> or scrypt:N:r:p:<salt>:<hash> (a token itself is never written here)`);
    const roles = roleList.split(',');
    const tiers = tierList === undefined ? null : tierList.split(',');
    const lineProblems = entryProblems(principal, roles, tiers);
    problems.push(...lineProblems.map((problem) => `${where}: ${problem}`));
    if (lineProblems.length === 0) entries.push({ id, hash, principal, roles: roles as Role[], tiers: tiers as TierName[] | null });
  });
  if (problems.length) throw new ConfigError(`invalid token file ${source}: ${problems.join('; ')}`, problems);
  return entries;
}

function entryProblems(principal: string, roles: readonly string[], tiers: readonly string[] | null): string[] {
  const problems: string[] = [];
  if (!PRINCIPAL_PATTERN.test(principal)) problems.push(`principal '${principal}' must be letters, digits and . _ @ : - (at most 128)`);
  if (roles.length === 0) problems.push('a token needs at least one role');
  for (const role of roles.filter((candidate) => !isRole(candidate))) problems.push(`unknown role '${role}' (roles: ${ROLES.join(', ')})`);
  for (const tier of (tiers ?? []).filter((candidate) => !isTierName(candidate)))
    problems.push(`unknown tier '${tier}' (tiers: ${TIER_NAMES.join(', ')})`);
  return problems;
}

/**
 * Verifies static tokens against a token file. The file is read at start and again when its
 * modification time changes (checked at most every `recheckMs`), so a revoked line stops working
 * without a restart.
 */
export class TokenFileVerifier {
  private byId = new Map<string, TokenEntry>();
  /** sha256 of scrypt-hashed tokens already verified, so a scrypt costs once per token, not per request. */
  private verifiedScrypt = new Set<string>();
  private mtimeMs = -1;
  private checkedAt = 0;

  private constructor(
    readonly path: string,
    private readonly recheckMs: number,
  ) {}

  static async load(path: string, options: { recheckMs?: number } = {}): Promise<TokenFileVerifier> {
    const verifier = new TokenFileVerifier(path, options.recheckMs ?? 2_000);
    await verifier.reload();
    return verifier;
  }

  /** Whether the token has the static form (rky_…), so this verifier, not the JWT one, decides. */
  static handles(token: string): boolean {
    return token.startsWith(TOKEN_PREFIX);
  }

  async verify(token: string): Promise<Principal> {
    await this.refresh();
    const match = TOKEN_PATTERN.exec(token);
    if (!match) throw new UnauthenticatedError('malformed static token (expected rky_<id>_<secret>)');
    const entry = this.byId.get(match[1]);
    if (!entry || !this.matches(token, entry)) throw new UnauthenticatedError(`unknown or revoked token (id ${match[1]})`);
    return { name: entry.principal, roles: entry.roles, tiers: entry.tiers, via: 'token-file' };
  }

  private matches(token: string, entry: TokenEntry): boolean {
    if (!entry.hash.startsWith('scrypt:')) return tokenMatches(token, entry.hash);
    const digest = `${entry.id}:${createHash('sha256').update(token).digest('base64url')}`;
    if (this.verifiedScrypt.has(digest)) return true;
    if (!tokenMatches(token, entry.hash)) return false;
    this.verifiedScrypt.add(digest);
    return true;
  }

  private async refresh(): Promise<void> {
    const now = Date.now();
    if (now - this.checkedAt < this.recheckMs) return;
    this.checkedAt = now;
    const { mtimeMs } = await stat(this.path);
    if (mtimeMs !== this.mtimeMs) await this.reload();
  }

  private async reload(): Promise<void> {
    let text: string;
    let mtimeMs: number;
    try {
      mtimeMs = (await stat(this.path)).mtimeMs;
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read the token file ${this.path}: ${(error as Error).message}`, ['auth.tokenFile'], {
        cause: error,
        hint: 'create it with `rookery auth token create --principal NAME --role operator --file PATH`',
      });
    }
    this.byId = new Map(parseTokenFile(text, this.path).map((entry) => [entry.id, entry]));
    this.verifiedScrypt = new Set();
    this.mtimeMs = mtimeMs;
    this.checkedAt = Date.now();
  }
}
