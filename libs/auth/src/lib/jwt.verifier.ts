import { KeyObject, createPublicKey } from 'node:crypto';
import type { JWTPayload, ProtectedHeaderParameters } from 'jose';
import { readFile } from 'node:fs/promises';
import { ConfigError, TIER_NAMES, TierName, UnauthenticatedError, isTierName } from '@rookery/core';
import { Principal, Role, isRole } from './principal';

/**
 * jose, loaded on the first token verified: @rookery/auth is imported by every rookery command
 * but the WAL ones (the CLI's `auth` command is), and loading jose's ~80 modules cost each run
 * ~50 ms of CPU (`rookery --version`: 0.19 → 0.13 s user time, 76 → 73.5 MiB max RSS).
 */
const jose = () => require('jose') as typeof import('jose');

/** The signature algorithms accepted: asymmetric only. `none` and the HMAC family never are. */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

export interface JwtVerifierOptions {
  /** The `iss` every token must carry, exactly. */
  issuer: string;
  /** An `aud` every token must carry (the claim may list others). */
  audience: string;
  /** Where the signing keys are: a JWKS URL, a JWKS file, or (both null) the issuer's OpenID discovery document. */
  jwksUrl: string | null;
  jwksFile: string | null;
  algorithms: readonly JwtAlgorithm[];
  /** Dotted path of the claim listing rookery roles (`roles`, `realm_access.roles`); a string is split on spaces. */
  rolesClaim: string;
  /** Dotted path of the claim listing the tiers the caller may act on; absent: every tier. */
  tiersClaim: string;
  /** The claim naming the principal in the audit trail. */
  principalClaim: string;
  clockToleranceSeconds: number;
}

/** A public key of a JWKS as RFC 7517 writes it (the members rookery reads). */
export interface Jwk {
  kty: string;
  kid?: string;
  alg?: string;
  use?: string;
  crv?: string;
  [member: string]: unknown;
}

/** Where the verifier gets the keys: asked again (`refresh`) when a token names a key it does not know. */
export interface JwksSource {
  keys(refresh: boolean): Promise<readonly Jwk[]>;
}

const KEY_TYPE: Readonly<Record<JwtAlgorithm, { kty: string; crv?: string }>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

/**
 * Verifies JWT bearer tokens (compact JWS) with jose: the header's algorithm must be one allowed,
 * the key is the JWKS's (by kid) of the matching type, and jose checks the signature, exp
 * (required), nbf, iss and aud before the claims name a principal. rookery picks the key itself
 * (not jose's JWKS helpers) so a file and a URL refresh alike and a refusal names the missing key.
 */
export class JwtVerifier {
  private readonly cache = new Map<string, KeyObject>();

  constructor(
    private readonly options: JwtVerifierOptions,
    private readonly source: JwksSource,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether the token looks like a compact JWS (three base64url parts), so this verifier decides. */
  static handles(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
  }

  async verify(token: string): Promise<Principal> {
    if (!JwtVerifier.handles(token)) throw new UnauthenticatedError('malformed JWT');
    let header: ProtectedHeaderParameters;
    try {
      header = jose().decodeProtectedHeader(token);
    } catch {
      throw new UnauthenticatedError('JWT header is not JSON');
    }
    const alg = header.alg;
    // Checked before jose (which refuses it too) so the refusal names the accepted list.
    if (typeof alg !== 'string' || !(this.options.algorithms as readonly string[]).includes(alg)) {
      throw new UnauthenticatedError(`JWT algorithm '${String(alg)}' is not accepted (accepted: ${this.options.algorithms.join(', ')})`);
    }
    if (header.crit !== undefined) throw new UnauthenticatedError('JWT with critical header parameters is not accepted');
    const key = await this.key(alg as JwtAlgorithm, header.kid);
    const { issuer, audience, algorithms, clockToleranceSeconds } = this.options;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jose().jwtVerify(token, key, {
        issuer,
        audience,
        algorithms: [...algorithms],
        clockTolerance: clockToleranceSeconds,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw refusal(error, this.options);
    }
    return this.principal(claims);
  }

  private principal(claims: JWTPayload): Principal {
    const name = claims[this.options.principalClaim];
    if (typeof name !== 'string' || name.length === 0) throw new UnauthenticatedError(`JWT has no ${this.options.principalClaim} claim`);
    return { name, roles: this.roles(claims), tiers: this.tiers(claims), via: 'jwt' };
  }

  /** The rookery roles among the claim's values; an identity provider's other roles are ignored. */
  private roles(claims: JWTPayload): Role[] {
    const value = claimAt(claims, this.options.rolesClaim);
    const values = typeof value === 'string' ? value.split(/\s+/) : Array.isArray(value) ? value : [];
    return [...new Set(values.filter(isRole))];
  }

  private tiers(claims: JWTPayload): TierName[] | null {
    const value = claimAt(claims, this.options.tiersClaim);
    if (value === undefined) return null;
    const values = typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value;
    if (!Array.isArray(values)) throw new UnauthenticatedError(`JWT claim ${this.options.tiersClaim} must be a list of tiers`);
    const unknown = values.filter((tier) => !isTierName(tier));
    if (unknown.length)
      throw new UnauthenticatedError(
        `JWT claim ${this.options.tiersClaim} names unknown tier(s) ${unknown.join(', ')} (tiers: ${TIER_NAMES.join(', ')})`,
      );
    return values as TierName[];
  }

  private async key(alg: JwtAlgorithm, kid: string | undefined): Promise<KeyObject> {
    const found = this.pick(await this.source.keys(false), alg, kid) ?? this.pick(await this.source.keys(true), alg, kid);
    if (!found) throw new UnauthenticatedError(`no ${alg} key${kid ? ` with kid '${kid}'` : ''} in the JWKS`);
    const cacheKey = JSON.stringify(found);
    let key = this.cache.get(cacheKey);
    if (!key) {
      try {
        key = createPublicKey({ key: found as never, format: 'jwk' });
      } catch (error) {
        throw new UnauthenticatedError(`the JWKS key${kid ? ` '${kid}'` : ''} is not a usable public key`, { cause: error });
      }
      this.cache.set(cacheKey, key);
    }
    return key;
  }

  private pick(keys: readonly Jwk[], alg: JwtAlgorithm, kid: string | undefined): Jwk | undefined {
    const type = KEY_TYPE[alg];
    return keys.find(
      (key) =>
        (kid === undefined || key.kid === kid) &&
        key.kty === type.kty &&
        (type.crv === undefined || key.crv === type.crv) &&
        (key.alg === undefined || key.alg === alg) &&
        (key.use === undefined || key.use === 'sig') &&
        key['d'] === undefined,
    );
  }
}

/** jose's refusal as the UnauthenticatedError a caller reads, naming the claim that failed. */
function refusal(error: unknown, options: Pick<JwtVerifierOptions, 'issuer' | 'audience'>): UnauthenticatedError {
  const cause = { cause: error };
  const { errors } = jose();
  if (error instanceof errors.JWTExpired) {
    const exp = error.payload.exp ?? 0;
    return new UnauthenticatedError(`JWT expired at ${new Date(exp * 1000).toISOString()}`, cause);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reasons: Record<string, string> = {
      exp: 'JWT has no expiry (exp)',
      nbf: 'JWT is not valid yet (nbf)',
      iss: `JWT issuer '${String(error.payload.iss)}' is not ${options.issuer}`,
      aud: `JWT audience does not include ${options.audience}`,
    };
    return new UnauthenticatedError(reasons[error.claim] ?? `JWT claim ${error.claim} refused (${error.reason})`, cause);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return new UnauthenticatedError('JWT signature does not verify', cause);
  if (error instanceof errors.JOSEError) return new UnauthenticatedError(`JWT refused: ${error.message}`, cause);
  return new UnauthenticatedError('JWT refused', cause);
}

function claimAt(claims: JWTPayload, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((value, name) => (value && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined), claims);
}

function parseJwks(text: string, where: string): Jwk[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`JWKS from ${where} is not JSON`, ['auth.jwt'], { cause: error });
  }
  const keys = (value as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) throw new ConfigError(`JWKS from ${where} has no keys array`, ['auth.jwt']);
  return keys.filter((key): key is Jwk => typeof key === 'object' && key !== null && typeof (key as Jwk).kty === 'string');
}

/** A JWKS file, read at start and again (at most every `minRefreshMs`) when a token names an unknown key. */
export function jwksFromFile(path: string, minRefreshMs = 30_000): JwksSource {
  return refreshing(async () => parseJwks(await readFile(path, 'utf8'), path), minRefreshMs, Infinity);
}

/** A JWKS at a URL, kept `maxAgeMs` and fetched again early (at most every `minRefreshMs`) for an unknown key. */
export function jwksFromUrl(url: string, options: { maxAgeMs?: number; minRefreshMs?: number } = {}): JwksSource {
  return refreshing(async () => parseJwks(await fetchText(url), url), options.minRefreshMs ?? 30_000, options.maxAgeMs ?? 600_000);
}

/** The JWKS the issuer's OpenID discovery document (`<issuer>/.well-known/openid-configuration`) names. */
export function jwksFromIssuer(issuer: string, options: { maxAgeMs?: number; minRefreshMs?: number } = {}): JwksSource {
  let jwks: JwksSource | null = null;
  return {
    async keys(refresh) {
      if (!jwks) {
        const discovery = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
        const uri = (JSON.parse(await fetchText(discovery)) as { jwks_uri?: unknown }).jwks_uri;
        if (typeof uri !== 'string') throw new ConfigError(`${discovery} names no jwks_uri`, ['auth.jwt.issuer']);
        jwks = jwksFromUrl(uri, options);
      }
      return jwks.keys(refresh);
    },
  };
}

export function jwksSource(options: Pick<JwtVerifierOptions, 'issuer' | 'jwksUrl' | 'jwksFile'>): JwksSource {
  if (options.jwksFile) return jwksFromFile(options.jwksFile);
  if (options.jwksUrl) return jwksFromUrl(options.jwksUrl);
  return jwksFromIssuer(options.issuer);
}

function refreshing(load: () => Promise<Jwk[]>, minRefreshMs: number, maxAgeMs: number): JwksSource {
  let keys: Jwk[] | null = null;
  let loadedAt = 0;
  let loading: Promise<Jwk[]> | null = null;
  const reload = () => {
    loading ??= load()
      .then((loaded) => {
        keys = loaded;
        loadedAt = Date.now();
        return loaded;
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  };
  return {
    async keys(refresh) {
      const age = Date.now() - loadedAt;
      if (keys === null || age > maxAgeMs || (refresh && age > minRefreshMs)) {
        try {
          return await reload();
        } catch (error) {
          // Keys fetched before keep working while the identity provider is briefly unreachable.
          if (keys !== null) return keys;
          throw new UnauthenticatedError(`cannot load the JWKS: ${(error as Error).message}`, { cause: error });
        }
      }
      return keys;
    },
  };
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000), headers: { accept: 'application/json' } });
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response.text();
}
