import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnauthenticatedError } from '@rookery/core';
import { TestSigningKey, jwtClaims, makeSigningKey, signJwt } from './jwt.factory';
import { Jwk, JwksSource, JwtVerifier, JwtVerifierOptions, jwksFromFile, jwksFromIssuer } from './jwt.verifier';

const issuer = 'https://id.example.test/realms/rookery';
const audience = 'rookery';

function options(overrides: Partial<JwtVerifierOptions> = {}): JwtVerifierOptions {
  return {
    issuer,
    audience,
    jwksUrl: null,
    jwksFile: null,
    algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
    rolesClaim: 'roles',
    tiersClaim: 'rookery_tiers',
    principalClaim: 'sub',
    clockToleranceSeconds: 30,
    ...overrides,
  };
}

function staticKeys(...keys: TestSigningKey[]): JwksSource {
  return { keys: async () => keys.map((key) => key.jwk as Jwk) };
}

const claims = (overrides: Record<string, unknown> = {}) =>
  jwtClaims({ issuer, audience, subject: 'alice', roles: ['operator'] }, overrides);

describe('JwtVerifier', () => {
  const keys = {
    RS256: makeSigningKey('RS256'),
    PS256: makeSigningKey('PS256'),
    ES256: makeSigningKey('ES256'),
    EdDSA: makeSigningKey('EdDSA'),
  };
  const trusted = Object.values(keys);
  const verifier = new JwtVerifier(options(), staticKeys(...trusted));

  it.each(Object.keys(keys) as (keyof typeof keys)[])('accepts a valid %s token and names its principal, roles and tiers', async (alg) => {
    const token = signJwt(keys[alg], claims({ roles: ['operator', 'offline_access'], rookery_tiers: ['content'] }));
    await expect(verifier.verify(token)).resolves.toEqual({ name: 'alice', roles: ['operator'], tiers: ['content'], via: 'jwt' });
  });

  it('reads roles from a nested claim or a space-separated string, and no tier claim means every tier', async () => {
    const nested = new JwtVerifier(options({ rolesClaim: 'realm_access.roles' }), staticKeys(...trusted));
    const token = signJwt(keys.RS256, claims({ roles: undefined, realm_access: { roles: ['auditor'] } }));
    await expect(nested.verify(token)).resolves.toMatchObject({ roles: ['auditor'], tiers: null });
    await expect(verifier.verify(signJwt(keys.RS256, claims({ roles: 'auditor service' })))).resolves.toMatchObject({
      roles: ['auditor', 'service'],
    });
  });

  const refusals: [string, () => string, RegExp][] = [
    ['an expired token', () => signJwt(keys.RS256, claims({ exp: Math.floor(Date.now() / 1000) - 120 })), /expired/],
    ['a token without exp', () => signJwt(keys.RS256, claims({ exp: undefined })), /no expiry/],
    ['a token not valid yet', () => signJwt(keys.RS256, claims({ nbf: Math.floor(Date.now() / 1000) + 600 })), /not valid yet/],
    ['another audience', () => signJwt(keys.RS256, claims({ aud: ['other-api'] })), /audience/],
    ['another issuer', () => signJwt(keys.RS256, claims({ iss: 'https://evil.example' })), /issuer/],
    ['a key not in the JWKS', () => signJwt(makeSigningKey('RS256', keys.RS256.kid), claims()), /signature does not verify/],
    ['an unknown kid', () => signJwt(makeSigningKey('RS256'), claims()), /no RS256 key with kid/],
    ['alg none', () => signJwt(keys.RS256, claims(), { alg: 'none' }), /algorithm 'none' is not accepted/],
    [
      'HS256 (the public key as an HMAC secret)',
      () => signJwt(keys.RS256, claims(), { alg: 'HS256' }),
      /algorithm 'HS256' is not accepted/,
    ],
    ['an algorithm the key is not for', () => signJwt(keys.RS256, claims(), { alg: 'ES256' }), /no ES256 key/],
    ['a changed payload', () => tamper(signJwt(keys.RS256, claims()), { roles: ['operator', 'service'] }), /signature does not verify/],
    ['no subject', () => signJwt(keys.RS256, claims({ sub: undefined })), /no sub claim/],
    ['an unknown tier', () => signJwt(keys.RS256, claims({ rookery_tiers: ['billing'] })), /unknown tier/],
    ['critical headers', () => signJwt(keys.RS256, claims(), { crit: ['b64'] }), /critical/],
    ['garbage', () => 'abc.def.ghi', /not JSON/],
  ];

  it.each(refusals)('refuses %s', async (_case, token, reason) => {
    const verifying = verifier.verify(token());
    await expect(verifying).rejects.toThrow(UnauthenticatedError);
    await expect(verifier.verify(token())).rejects.toThrow(reason);
  });

  it('refuses an algorithm the configuration does not list', async () => {
    const rsaOnly = new JwtVerifier(options({ algorithms: ['RS256'] }), staticKeys(...trusted));
    await expect(rsaOnly.verify(signJwt(keys.ES256, claims()))).rejects.toThrow(/'ES256' is not accepted/);
  });

  it('allows the clock tolerance and no more', async () => {
    const now = Date.now();
    const at = new JwtVerifier(options({ clockToleranceSeconds: 30 }), staticKeys(keys.RS256), () => now);
    const exp = Math.floor(now / 1000) - 10;
    await expect(at.verify(signJwt(keys.RS256, claims({ exp })))).resolves.toMatchObject({ name: 'alice' });
    await expect(at.verify(signJwt(keys.RS256, claims({ exp: exp - 40 })))).rejects.toThrow(/expired/);
  });
});

describe('JWKS sources', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-jwks-'));
  });
  afterAll(() => rm(work, { recursive: true, force: true }));

  it('reads a JWKS file, and again for a key it did not know (a rotation)', async () => {
    const first = makeSigningKey('ES256');
    const rotated = makeSigningKey('ES256');
    const path = join(work, 'jwks.json');
    await writeFile(path, JSON.stringify({ keys: [first.jwk] }));
    const verifier = new JwtVerifier(options(), jwksFromFile(path, 0));
    await expect(verifier.verify(signJwt(first, claims()))).resolves.toMatchObject({ name: 'alice' });
    await writeFile(path, JSON.stringify({ keys: [first.jwk, rotated.jwk] }));
    await expect(verifier.verify(signJwt(rotated, claims()))).resolves.toMatchObject({ name: 'alice' });
  });

  it("finds the keys through the issuer's OpenID discovery document", async () => {
    const key = makeSigningKey('RS256');
    const server = createServer((request, reply) => {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      reply.setHeader('content-type', 'application/json');
      if (request.url === '/realm/.well-known/openid-configuration')
        reply.end(JSON.stringify({ issuer: `${base}/realm`, jwks_uri: `${base}/realm/certs` }));
      else if (request.url === '/realm/certs') reply.end(JSON.stringify({ keys: [key.jwk] }));
      else reply.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const discovered = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realm`;
      const verifier = new JwtVerifier(options({ issuer: discovered }), jwksFromIssuer(discovered));
      const token = signJwt(key, jwtClaims({ issuer: discovered, audience, subject: 'svc', roles: ['service'] }));
      await expect(verifier.verify(token)).resolves.toEqual({ name: 'svc', roles: ['service'], tiers: null, via: 'jwt' });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

function tamper(token: string, change: Record<string, unknown>): string {
  const [header, payload, signature] = token.split('.');
  const claimsOf = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
  return [header, Buffer.from(JSON.stringify({ ...claimsOf, ...change })).toString('base64url'), signature].join('.');
}
