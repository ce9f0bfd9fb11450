import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenFileVerifier } from '@rookery/auth';
import { assertCliBuilt, runRookery } from '@rookery/testing';

describe('rookery auth token', () => {
  let work: string;
  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-auth-token-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('prints a token once, writes only its hash line (0600), and the services accept it until it is revoked', async () => {
    const file = join(work, 'tokens');
    const created = runRookery(['auth', 'token', 'create', '--principal', 'ci', '--role', 'operator', '--tier', 'content', '--file', file]);
    expect(created.status).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^rky_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(token.slice('rky_0123456789ab_'.length));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = runRookery(['auth', 'token', 'create', '--principal', 'audit', '--role', 'auditor', '--file', file, '--hash', 'scrypt']);
    expect(second.status).toBe(0);

    const verifier = await TokenFileVerifier.load(file, { recheckMs: 0 });
    await expect(verifier.verify(token)).resolves.toEqual({ name: 'ci', roles: ['operator'], tiers: ['content'], via: 'token-file' });
    await expect(verifier.verify(second.stdout.trim())).resolves.toMatchObject({ name: 'audit', roles: ['auditor'], tiers: null });

    const listed = runRookery(['auth', 'token', 'list', '--file', file, '--json']);
    const id = token.slice(4, 16);
    expect(JSON.parse(listed.stdout)).toEqual([
      { id, principal: 'ci', roles: ['operator'], tiers: ['content'] },
      { id: second.stdout.trim().slice(4, 16), principal: 'audit', roles: ['auditor'], tiers: null },
    ]);
    expect(runRookery(['auth', 'token', 'revoke', '--id', id, '--file', file]).status).toBe(0);
    await expect(verifier.verify(token)).rejects.toThrow('unknown or revoked token');
  });

  it.each([
    ['an unknown role', ['--principal', 'x', '--role', 'admin'], "unknown role 'admin'"],
    ['an unknown tier', ['--principal', 'x', '--role', 'operator', '--tier', 'billing'], "unknown tier 'billing'"],
    ['a principal with a space', ['--principal', 'a b', '--role', 'operator'], "principal 'a b'"],
  ])('refuses %s (exit 2), writing nothing', async (_case, args, message) => {
    const file = join(work, `refused-${args[1].replace(/\W/g, '')}`);
    const run = runRookery(['auth', 'token', 'create', ...args, '--file', file]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
    await expect(stat(file)).rejects.toThrow();
  });

  it('refuses to add to a token file the services would refuse', async () => {
    const file = join(work, 'broken');
    await writeFile(file, 'not a token line\n');
    const run = runRookery(['auth', 'token', 'create', '--principal', 'x', '--role', 'operator', '--file', file]);
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(await readFile(file, 'utf8')).toBe('not a token line\n');
  });
});
