import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@rookery/core';
import { TokenFileVerifier, createStaticToken, formatTokenLine, hashToken, parseTokenFile, tokenMatches } from './token-file';

describe('static token file', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-tokens-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('creates a token whose line holds its hash, never the token', () => {
    const { token, line, entry } = createStaticToken({ principal: 'ci-pipeline', roles: ['operator'], tiers: ['content'] });
    expect(token).toMatch(/^rky_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(line).not.toContain(token.slice('rky_0123456789ab_'.length));
    expect(line).toBe(`${entry.id} ${entry.hash} ci-pipeline operator content`);
    expect(parseTokenFile(`# comment\n\n${line}\n`, 'tokens')).toEqual([entry]);
  });

  it.each(['sha256', 'scrypt'] as const)('matches the token and nothing else with %s', (algorithm) => {
    const { token } = createStaticToken({ principal: 'a', roles: ['auditor'] });
    const hash = hashToken(token, algorithm);
    expect(hash.startsWith(`${algorithm}:`)).toBe(true);
    expect(tokenMatches(token, hash)).toBe(true);
    expect(tokenMatches(`${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`, hash)).toBe(false);
    expect(tokenMatches(token, 'md5:abc')).toBe(false);
  });

  it('accepts a sha256 written in hex, as sha256sum prints it', () => {
    const { token, entry } = createStaticToken({ principal: 'a', roles: ['auditor'] });
    const hex = `sha256:${Buffer.from(entry.hash.slice('sha256:'.length), 'base64url').toString('hex')}`;
    expect(tokenMatches(token, hex)).toBe(true);
    expect(parseTokenFile(`${entry.id} ${hex} a auditor\n`, 'tokens')).toEqual([{ ...entry, hash: hex }]);
  });

  it.each([
    ['too few fields', '3f9a2c1b7d0e sha256:x operator', 'expected'],
    ['a bad id', `3f9a2c1b7d0 ${hashToken('x')} p operator`, "id '3f9a2c1b7d0'"],
    ['a token instead of a hash', `3f9a2c1b7d0e rky_3f9a2c1b7d0e_${'a'.repeat(43)} p operator`, 'hash must be'],
    ['an unknown role', `3f9a2c1b7d0e ${hashToken('x')} p admin`, "unknown role 'admin'"],
    ['an unknown tier', `3f9a2c1b7d0e ${hashToken('x')} p operator content,billing`, "unknown tier 'billing'"],
    ['a bad principal', `3f9a2c1b7d0e ${hashToken('x')} 'p' operator`, "principal ''p''"],
  ])('refuses a line with %s, naming the line', (_case, line, problem) => {
    expect(() => parseTokenFile(`# header\n${line}\n`, 'tokens')).toThrow(ConfigError);
    expect(() => parseTokenFile(`# header\n${line}\n`, 'tokens')).toThrow(`tokens:2`);
    expect(() => parseTokenFile(`# header\n${line}\n`, 'tokens')).toThrow(problem);
  });

  it('refuses an id that appears twice and reports every bad line at once', () => {
    const line = `3f9a2c1b7d0e ${hashToken('x')} p operator`;
    expect(() => parseTokenFile(`${line}\n${line}\nbad\n`, 'tokens')).toThrow(
      /tokens:2: id '3f9a2c1b7d0e' appears twice; tokens:3: expected/,
    );
  });

  it('verifies tokens of the file and refuses unknown, altered and malformed ones', async () => {
    const operator = createStaticToken({ principal: 'ops', roles: ['operator'], tiers: ['oltp'] });
    const auditor = createStaticToken({ principal: 'audit', roles: ['auditor'] }, 'scrypt');
    const stranger = createStaticToken({ principal: 'stranger', roles: ['operator'] });
    const path = join(work, 'verify');
    await writeFile(path, `${operator.line}\n${auditor.line}\n`);
    const verifier = await TokenFileVerifier.load(path);
    await expect(verifier.verify(operator.token)).resolves.toEqual({
      name: 'ops',
      roles: ['operator'],
      tiers: ['oltp'],
      via: 'token-file',
    });
    await expect(verifier.verify(auditor.token)).resolves.toMatchObject({ name: 'audit', roles: ['auditor'], tiers: null });
    await expect(verifier.verify(stranger.token)).rejects.toThrow('unknown or revoked token');
    // The id of a known line with another secret.
    const forged = `rky_${operator.entry.id}_${stranger.token.slice('rky_0123456789ab_'.length)}`;
    await expect(verifier.verify(forged)).rejects.toThrow('unknown or revoked token');
    await expect(verifier.verify('rky_nothex')).rejects.toThrow('malformed static token');
    // A scrypt token verified once is remembered; another secret under its id still is not.
    await expect(verifier.verify(auditor.token)).resolves.toMatchObject({ name: 'audit' });
    await expect(verifier.verify(`rky_${auditor.entry.id}_${stranger.token.slice('rky_0123456789ab_'.length)}`)).rejects.toThrow(
      'unknown or revoked token',
    );
  });

  it('reads the file again when it changes, so a removed line is revoked without a restart', async () => {
    const kept = createStaticToken({ principal: 'kept', roles: ['auditor'] });
    const revoked = createStaticToken({ principal: 'revoked', roles: ['operator'] });
    const path = join(work, 'revoke');
    await writeFile(path, `${kept.line}\n${revoked.line}\n`);
    const verifier = await TokenFileVerifier.load(path, { recheckMs: 0 });
    await expect(verifier.verify(revoked.token)).resolves.toMatchObject({ name: 'revoked' });
    await writeFile(path, `${formatTokenLine(kept.entry)}\n`);
    await utimes(path, new Date(), new Date(Date.now() + 10_000));
    await expect(verifier.verify(revoked.token)).rejects.toThrow('unknown or revoked token');
    await expect(verifier.verify(kept.token)).resolves.toMatchObject({ name: 'kept' });
  });

  it('fails to load a missing file with a hint', async () => {
    await expect(TokenFileVerifier.load(join(work, 'absent'))).rejects.toThrow(/cannot read the token file/);
  });
});
