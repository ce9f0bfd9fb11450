#!/usr/bin/env node
// Service authentication benchmark (issue 16), over the compiled code (npm run build first):
//   1. the cost of one token check (BearerAuthenticator.authenticate) per kind of token:
//      static sha256 (the default), static scrypt, JWT ES256 and RS256 (keys cached);
//   2. requests per second of GET /backups on an oltp-backup service (in this process, SQLite
//      catalog, no database) with auth.mode none, a static token and a JWT, CONCURRENCY
//      keep-alive clients for --seconds each: what a token check adds to a real route.
// Usage: node tools/bench/auth.mjs [--seconds 5] [--concurrency 16] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
require('reflect-metadata');
const dist = (lib) => require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
const { BearerAuthenticator, createStaticToken, jwtClaims, makeSigningKey, signJwt } = dist('auth');
const { buildConfig } = dist('config');
const { configureServiceApp } = dist('service-kit');
const { OltpBackupModule } = require(path.join(ROOT, 'dist', 'apps', 'oltp-backup', 'src', 'app', 'oltp-backup.module.js'));
const { NestFactory } = require('@nestjs/core');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const SECONDS = Number(option('seconds', 5));
const CONCURRENCY = Number(option('concurrency', 16));
const OUT = option('out', null);

const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-auth-bench-'));
const issuer = 'https://id.rookery.bench/realm';
const audience = 'rookery';
try {
  const sha = createStaticToken({ principal: 'bench', roles: ['auditor'] });
  const scrypt = createStaticToken({ principal: 'bench-scrypt', roles: ['auditor'] }, 'scrypt');
  const es = makeSigningKey('ES256');
  const rs = makeSigningKey('RS256');
  writeFileSync(path.join(work, 'tokens'), `${sha.line}\n${scrypt.line}\n`);
  writeFileSync(path.join(work, 'jwks.json'), JSON.stringify({ keys: [es.jwk, rs.jwk] }));
  const section = { tokenFile: path.join(work, 'tokens'), jwt: { issuer, audience, jwksFile: path.join(work, 'jwks.json') } };
  const claims = () => jwtClaims({ issuer, audience, subject: 'bench-jwt', roles: ['auditor'] });
  const tokens = {
    'static sha256': sha.token,
    'static scrypt': scrypt.token,
    'JWT ES256': signJwt(es, claims()),
    'JWT RS256': signJwt(rs, claims()),
  };

  const config = buildConfig({ auth: section }, 'auth bench');
  const authenticator = await BearerAuthenticator.create(config.auth);
  const checks = {};
  for (const [kind, token] of Object.entries(tokens)) {
    const iterations = kind.includes('scrypt') ? 200 : 5000;
    for (let warm = 0; warm < 20; warm++) await authenticator.authenticate(`Bearer ${token}`);
    const started = process.hrtime.bigint();
    for (let index = 0; index < iterations; index++) await authenticator.authenticate(`Bearer ${token}`);
    checks[kind] = Number(process.hrtime.bigint() - started) / 1000 / iterations;
    console.log(`token check, ${kind}: ${checks[kind].toFixed(1)} µs`);
  }

  const routes = {};
  for (const [kind, auth, token] of [
    ['auth.mode none', { mode: 'none' }, null],
    ['static sha256', section, sha.token],
    ['JWT ES256', section, tokens['JWT ES256']],
  ]) {
    const serviceConfig = buildConfig(
      {
        repositories: [`file://${path.join(work, 'repository')}`],
        catalog: { url: `sqlite://${path.join(work, `${kind.replace(/\W/g, '')}.sqlite`)}` },
        service: { host: '127.0.0.1', port: 0 },
        auth,
      },
      'auth bench',
    );
    const app = await NestFactory.create(OltpBackupModule.forRoot({ config: serviceConfig, logLevel: 'silent' }), { logger: false });
    configureServiceApp(app, { title: 'bench', description: 'bench' });
    await app.listen(0, '127.0.0.1');
    const url = `http://127.0.0.1:${app.getHttpServer().address().port}/backups`;
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const probe = await fetch(url, { headers });
    if (probe.status !== 200) throw new Error(`GET /backups (${kind}): ${probe.status}`);
    let done = 0;
    const until = Date.now() + SECONDS * 1000;
    const client = async () => {
      while (Date.now() < until) {
        const response = await fetch(url, { headers });
        await response.arrayBuffer();
        if (response.status !== 200) throw new Error(`GET /backups (${kind}): ${response.status}`);
        done++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    routes[kind] = done / SECONDS;
    console.log(`GET /backups, ${kind}: ${routes[kind].toFixed(0)} requests/s (${CONCURRENCY} clients, ${SECONDS} s)`);
    await app.close();
  }
  if (OUT)
    writeFileSync(
      OUT,
      JSON.stringify({ at: new Date().toISOString(), concurrency: CONCURRENCY, seconds: SECONDS, checks, routes }, null, 2),
    );
} finally {
  rmSync(work, { recursive: true, force: true });
}
