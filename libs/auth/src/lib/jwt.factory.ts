import { KeyObject, constants, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import type { TierName } from '@rookery/core';
import type { Role } from './principal';

// Signing JWTs is no service's business: these make keys and tokens for specs and local trials,
// the counterpart of JwtVerifier.

/** A signing key for test JWTs, and its public half as a JWKS entry. */
export interface TestSigningKey {
  alg: string;
  kid: string;
  privateKey: KeyObject;
  jwk: Record<string, unknown>;
}

export function makeSigningKey(
  alg: 'RS256' | 'PS256' | 'ES256' | 'EdDSA' = 'RS256',
  kid = `key-${randomBytes(3).toString('hex')}`,
): TestSigningKey {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { alg, kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' } };
}

/** A compact JWS over `claims` (header overrides: another alg, no kid, `alg: none` to forge). */
export function signJwt(key: TestSigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const fullHeader = { alg: key.alg, typ: 'JWT', kid: key.kid, ...header };
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${encode(fullHeader)}.${encode(claims)}`;
  if (fullHeader.alg === 'none') return `${input}.`;
  const data = Buffer.from(input);
  const signature =
    key.alg === 'ES256'
      ? sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
      : key.alg === 'PS256'
        ? sign('sha256', data, { key: key.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 })
        : sign(key.alg === 'EdDSA' ? null : 'sha256', data, key.privateKey);
  return `${input}.${signature.toString('base64url')}`;
}

/** The claims of a valid token for `audience` from `issuer`, valid for an hour; overrides win. */
export function jwtClaims(
  options: { issuer: string; audience: string; subject: string; roles: Role[]; tiers?: TierName[] },
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: options.issuer,
    aud: options.audience,
    sub: options.subject,
    roles: options.roles,
    ...(options.tiers ? { rookery_tiers: options.tiers } : {}),
    iat: now,
    exp: now + 3600,
    ...overrides,
  };
}
