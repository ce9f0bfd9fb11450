import { UnauthenticatedError } from '@rookery/core';
import { JwtVerifier, JwtVerifierOptions, jwksSource } from './jwt.verifier';
import { Principal } from './principal';
import { TokenFileVerifier } from './token-file';

/** How a service authenticates its callers (the `auth` config section, resolved). */
export interface AuthenticatorOptions {
  /** none: every call is anonymous (only with an explicit `auth.mode: none`). */
  mode: 'required' | 'none';
  tokenFile: string | null;
  jwt: JwtVerifierOptions | null;
}

/**
 * Turns an Authorization header into a Principal, transport-neutral (REST and gRPC metadata give
 * it the same string). A static token (rky_…) goes to the token file, anything shaped like a JWT
 * to the JWKS; what neither verifier is configured for is refused.
 */
export class BearerAuthenticator {
  private constructor(
    private readonly tokens: TokenFileVerifier | null,
    private readonly jwt: JwtVerifier | null,
  ) {}

  /** Reads the token file (a bad file fails the start); the JWKS is fetched on the first JWT. */
  static async create(options: AuthenticatorOptions): Promise<BearerAuthenticator> {
    const tokens = options.tokenFile ? await TokenFileVerifier.load(options.tokenFile) : null;
    const jwt = options.jwt ? new JwtVerifier(options.jwt, jwksSource(options.jwt)) : null;
    return new BearerAuthenticator(tokens, jwt);
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    if (!authorization) throw new UnauthenticatedError('no bearer token (send Authorization: Bearer <token>)');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) throw new UnauthenticatedError('the Authorization header is not a bearer token');
    const token = match[1];
    if (TokenFileVerifier.handles(token)) {
      if (!this.tokens) throw new UnauthenticatedError('static tokens are not accepted here (no auth.tokenFile)');
      return this.tokens.verify(token);
    }
    if (JwtVerifier.handles(token)) {
      if (!this.jwt) throw new UnauthenticatedError('JWTs are not accepted here (no auth.jwt)');
      return this.jwt.verify(token);
    }
    throw new UnauthenticatedError('the bearer token is neither a rookery token nor a JWT');
  }
}

/** The principal of every call when authentication is off (`auth.mode: none`). */
export function anonymousPrincipal(address: string | undefined): Principal {
  return { name: `anonymous@${address ?? 'unknown'}`, roles: ['operator', 'auditor', 'service'], tiers: null, via: 'anonymous' };
}
