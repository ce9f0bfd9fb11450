export * from './lib/bearer.authenticator';
export * from './lib/jwt.factory';
export * from './lib/jwt.verifier';
export * from './lib/principal';
export * from './lib/token-file';
