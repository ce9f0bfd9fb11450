import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { Test } from 'supertest';
import { Role, TestSigningKey, createStaticToken, jwtClaims, makeSigningKey, signJwt } from '@rookery/auth';
import { TIER_NAMES, TierName } from '@rookery/core';

/** The `auth` config section of a service under test, and the credentials its checks send. */
export interface AuthFixture {
  /** For buildConfig's file object: the token file and a JWKS file with `key`'s public half. */
  section: { mode: 'required'; tokenFile: string; jwt: { issuer: string; audience: string; jwksFile: string } };
  /** Static tokens by principal: operator, auditor, service (every tier), operator-<tier> and auditor-<tier> (one tier). */
  tokens: Record<string, string>;
  /** A JWT from the trusted key; claims override the valid defaults (an hour, every tier). */
  jwt(subject: string, roles: string[], overrides?: Record<string, unknown>, header?: Record<string, unknown>): string;
  /** A key the service does not trust, with the trusted key's kid. */
  forged(subject: string, roles: string[]): string;
}

const ISSUER = 'https://id.rookery.test/realms/platform';
const AUDIENCE = 'rookery';

/** Writes a token file and a JWKS under `work` with every role, unscoped and scoped to each tier. */
export async function makeAuthFixture(work: string): Promise<AuthFixture> {
  const entries: { principal: string; roles: Role[]; tiers?: TierName[] }[] = [
    { principal: 'operator', roles: ['operator'] },
    { principal: 'auditor', roles: ['auditor'] },
    { principal: 'service', roles: ['service'] },
    ...TIER_NAMES.flatMap((tier) => [
      { principal: `operator-${tier}`, roles: ['operator'] as Role[], tiers: [tier] },
      { principal: `auditor-${tier}`, roles: ['auditor'] as Role[], tiers: [tier] },
    ]),
  ];
  const created = entries.map((entry) => createStaticToken(entry));
  const tokenFile = join(work, 'tokens');
  await writeFile(tokenFile, `# test tokens\n${created.map((token) => token.line).join('\n')}\n`, { mode: 0o600 });
  const key: TestSigningKey = makeSigningKey('ES256');
  const jwksFile = join(work, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [key.jwk] }));
  const claims = (subject: string, roles: string[], overrides: Record<string, unknown> = {}) =>
    jwtClaims({ issuer: ISSUER, audience: AUDIENCE, subject, roles: roles as Role[] }, overrides);
  return {
    section: { mode: 'required', tokenFile, jwt: { issuer: ISSUER, audience: AUDIENCE, jwksFile } },
    tokens: Object.fromEntries(created.map((token) => [token.entry.principal, token.token])),
    jwt: (subject, roles, overrides, header) => signJwt(key, claims(subject, roles, overrides), header),
    forged: (subject, roles) => signJwt(makeSigningKey('ES256', key.kid), claims(subject, roles)),
  };
}

/** A route as the HTTP server routes it: method and Express path pattern (`/backups/:id`). */
export interface RegisteredRoute {
  method: string;
  path: string;
}

interface RouterLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
}

/**
 * Every route the app's HTTP server answers, read from Express's router (not from the controllers'
 * decorators), so a route added any way is listed. The OpenAPI document's own routes (/docs…) are
 * left out: they are public by design and describe, never act.
 */
export function registeredRoutes(app: INestApplication): RegisteredRoute[] {
  const express = app.getHttpAdapter().getInstance() as { router?: { stack: RouterLayer[] }; _router?: { stack: RouterLayer[] } };
  const stack = (express.router ?? express._router)?.stack ?? [];
  const routes = stack.flatMap((layer) => {
    if (!layer.route) return [];
    const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
    const methods = Object.keys(layer.route.methods).filter((method) => layer.route?.methods[method] && method !== '_all');
    return paths.flatMap((path) => methods.map((method) => ({ method: method.toUpperCase(), path })));
  });
  if (routes.length === 0) throw new Error('no routes found in the Express router: has its layout changed?');
  // Nest answers what no route matched with a catch-all for every method: a 404, not a route.
  const catchAll = (path: string) => routes.filter((route) => route.path === path).length >= 20;
  return routes.filter((route) => !route.path.startsWith('/docs') && !catchAll(route.path));
}

/** GET /health: the one route without a token. */
export function isPublicRoute(route: RegisteredRoute): boolean {
  return route.method === 'GET' && route.path === '/health';
}

/**
 * A request on `route` acting on `tier`: path parameters filled (`:tier` with it, others with a
 * name nothing has), `?tier=` on reads and `{ tier }` as the JSON body of writes, so the guard
 * sees the tier however the route takes it.
 */
export function routeRequest(app: INestApplication, route: RegisteredRoute, tier: TierName, token?: string, body?: object): Test {
  const request = require('supertest') as typeof import('supertest');
  const path = route.path.replace(/:(\w+)/g, (_match, name: string) => (name === 'tier' ? tier : `no-such-${name}`));
  const agent = request(app.getHttpServer());
  const method = route.method.toLowerCase() as 'get' | 'post' | 'put' | 'patch' | 'delete';
  let call = agent[method](route.method === 'GET' ? `${path}?tier=${tier}` : path);
  if (token) call = call.set('Authorization', `Bearer ${token}`);
  return route.method === 'GET' || route.method === 'HEAD' ? call : call.send(body ?? { tier });
}

/**
 * Sends `check`'s request on every route and lists those whose status is not what `expected`
 * accepts, as "POST /backups: 202": an empty list is a pass, and a failure names each route.
 */
export async function routesAnswering(
  routes: readonly RegisteredRoute[],
  check: (route: RegisteredRoute) => Test,
  expected: (status: number, route: RegisteredRoute) => boolean,
): Promise<string[]> {
  const wrong: string[] = [];
  for (const route of routes) {
    const response = await check(route);
    if (!expected(response.status, route)) wrong.push(`${route.method} ${route.path}: ${response.status} ${JSON.stringify(response.body)}`);
  }
  return wrong;
}

export interface ServiceAuthCheckOptions {
  app: () => INestApplication;
  auth: () => AuthFixture;
  /** The tier requests act on: the service's own, or any one on a fleet-wide service. */
  tier: TierName;
  /** Routes that act on every tier ('GET /compliance'): a principal scoped to one tier is refused there. */
  fleetRoutes?: readonly string[];
}

/** An audit event as the service published it. */
export interface PublishedAudit {
  actor: string;
  role?: string;
  action: string;
  outcome: string;
}

type Check = [string, () => Promise<void>];

/**
 * The authentication checks every service passes, over every route its router has (see
 * registeredRoutes), as [name, run] rows for `it.each`. A failing row names each route that
 * answered wrong and what it answered.
 */
export function serviceAuthChecks(options: ServiceAuthCheckOptions): Check[] {
  const { tier } = options;
  const other = TIER_NAMES.find((candidate) => candidate !== tier) as TierName;
  const app = () => options.app();
  const auth = () => options.auth();
  const protectedRoutes = () => registeredRoutes(app()).filter((route) => !isPublicRoute(route));
  const writes = () => protectedRoutes().filter((route) => route.method !== 'GET');
  const reads = () => protectedRoutes().filter((route) => route.method === 'GET');
  const fleet = (route: RegisteredRoute) => (options.fleetRoutes ?? []).includes(`${route.method} ${route.path}`);
  const send = (route: RegisteredRoute, token?: string, body?: object) => routeRequest(app(), route, tier, token, body);
  const expectNone = async (what: string, wrong: Promise<string[]>) => {
    const failures = await wrong;
    if (failures.length) throw new Error(`${what}:\n${failures.join('\n')}`);
  };
  const refusedWith = (status: number) => (answered: number) => answered === status;
  const passedGuard = (answered: number) => answered !== 401 && answered !== 403;
  // A write that passes the guard carries a field no route knows: the 400 naming it proves the
  // guard let it through without starting anything.
  const unknownField = { tier, unexpectedField: true };
  const passedWith = (token: string, scoped: boolean) =>
    expectNone(
      'routes that did not let the principal through (or did not name the unknown field)',
      routesAnswering(
        protectedRoutes(),
        (route) => send(route, token, unknownField),
        (status, route) => {
          if (scoped && fleet(route)) return status === 403;
          return route.method === 'GET' ? passedGuard(status) : status === 400;
        },
      ).then(async (wrong) => {
        for (const route of writes().filter((candidate) => !(scoped && fleet(candidate)))) {
          const body = (await send(route, token, unknownField)).body as { message?: string };
          if (!String(body.message).includes("'unexpectedField'"))
            wrong.push(`${route.method} ${route.path}: 400 without naming the field: ${body.message}`);
        }
        return wrong;
      }),
    );

  return [
    [
      'finds GET /health and protected routes in the router',
      async () => {
        const routes = registeredRoutes(app());
        if (!routes.some(isPublicRoute) || protectedRoutes().length === 0) throw new Error(`routes: ${JSON.stringify(routes)}`);
      },
    ],
    [
      'answers GET /health without a token',
      async () => {
        const status = (await send({ method: 'GET', path: '/health' })).status;
        if (status !== 200 && status !== 503) throw new Error(`GET /health: ${status}`);
      },
    ],
    [
      'refuses every other route without a token: 401 with WWW-Authenticate: Bearer',
      () =>
        expectNone(
          'routes not refusing a call without a token',
          routesAnswering(
            protectedRoutes(),
            (route) => send(route),
            (status) => status === 401,
          ).then(async (wrong) => {
            for (const route of protectedRoutes()) {
              const challenge = (await send(route)).headers['www-authenticate'];
              if (!String(challenge).startsWith('Bearer')) wrong.push(`${route.method} ${route.path}: WWW-Authenticate ${challenge}`);
            }
            return wrong;
          }),
        ),
    ],
    [
      'refuses an expired JWT on every route: 401',
      () =>
        expectNone(
          'routes taking an expired JWT',
          routesAnswering(
            protectedRoutes(),
            (route) => send(route, auth().jwt('alice', ['operator'], { exp: Math.floor(Date.now() / 1000) - 3600 })),
            refusedWith(401),
          ),
        ),
    ],
    [
      'refuses a JWT signed by an untrusted key on every route: 401',
      () =>
        expectNone(
          'routes taking a forged JWT',
          routesAnswering(protectedRoutes(), (route) => send(route, auth().forged('mallory', ['operator'])), refusedWith(401)),
        ),
    ],
    [
      'refuses an unsigned (alg none) JWT on every route: 401',
      () =>
        expectNone(
          'routes taking alg none',
          routesAnswering(
            protectedRoutes(),
            (route) => send(route, auth().jwt('mallory', ['operator'], {}, { alg: 'none' })),
            refusedWith(401),
          ),
        ),
    ],
    [
      'refuses a JWT for another audience on every route: 401',
      () =>
        expectNone(
          'routes taking another audience',
          routesAnswering(
            protectedRoutes(),
            (route) => send(route, auth().jwt('alice', ['operator'], { aud: 'billing' })),
            refusedWith(401),
          ),
        ),
    ],
    [
      'refuses an unknown static token on every route: 401',
      () => {
        const known = auth().tokens['operator'];
        const unknown = `${known.slice(0, -4)}${known.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
        return expectNone(
          'routes taking an unknown static token',
          routesAnswering(protectedRoutes(), (route) => send(route, unknown), refusedWith(401)),
        );
      },
    ],
    [
      'refuses a valid token without a rookery role on every route: 403',
      () =>
        expectNone(
          'routes taking a token without a role',
          routesAnswering(protectedRoutes(), (route) => send(route, auth().jwt('bob', ['viewer'])), refusedWith(403)),
        ),
    ],
    [
      'refuses an auditor on every write route (403) and lets it read every read route',
      async () => {
        await expectNone(
          'write routes taking an auditor',
          routesAnswering(writes(), (route) => send(route, auth().tokens['auditor']), refusedWith(403)),
        );
        await expectNone(
          'read routes refusing an auditor',
          routesAnswering(reads(), (route) => send(route, auth().tokens['auditor']), passedGuard),
        );
      },
    ],
    [
      `refuses an operator and an auditor scoped to another tier (${other}) on every route: 403`,
      async () => {
        await expectNone(
          'routes taking an operator of another tier',
          routesAnswering(protectedRoutes(), (route) => send(route, auth().tokens[`operator-${other}`]), refusedWith(403)),
        );
        await expectNone(
          'routes taking an auditor of another tier',
          routesAnswering(protectedRoutes(), (route) => send(route, auth().tokens[`auditor-${other}`]), refusedWith(403)),
        );
        const scopedJwt = auth().jwt('carol', ['operator'], { rookery_tiers: [other] });
        await expectNone(
          'routes taking a JWT operator of another tier',
          routesAnswering(protectedRoutes(), (route) => send(route, scopedJwt), refusedWith(403)),
        );
      },
    ],
    [
      `lets an operator scoped to the tier (${tier}) through every route that acts on it, not the fleet-wide ones`,
      () => passedWith(auth().tokens[`operator-${tier}`], true),
    ],
    [
      'lets an operator JWT through every route; an unknown body field is a 400 naming it',
      () => passedWith(auth().jwt('dave', ['operator']), false),
    ],
    ['lets a service token through every route', () => passedWith(auth().tokens['service'], false)],
    [
      'refuses cross-origin requests (403, no Access-Control-Allow-Origin) and non-JSON bodies (415) on every write route',
      async () => {
        const token = auth().tokens['operator'];
        const lacksCors = (status: number) => status === 403;
        await expectNone(
          'write routes taking a cross-origin request',
          routesAnswering(writes(), (route) => send(route, token).set('Origin', 'http://evil.example'), lacksCors),
        );
        const request = require('supertest') as typeof import('supertest');
        for (const route of writes()) {
          const preflight = await request(app().getHttpServer())
            .options(route.path)
            .set('Origin', 'http://evil.example')
            .set('Access-Control-Request-Method', route.method);
          if (preflight.headers['access-control-allow-origin'] !== undefined)
            throw new Error(`OPTIONS ${route.path} allows origin ${preflight.headers['access-control-allow-origin']}`);
        }
        const form = (route: RegisteredRoute) => send(route, token).type('form').send(`tier=${tier}`);
        await expectNone('write routes taking a form post', routesAnswering(writes(), form, refusedWith(415)));
        const text = (route: RegisteredRoute) => send(route, token).set('Content-Type', 'text/plain').send(JSON.stringify({ tier }));
        await expectNone('write routes taking text/plain', routesAnswering(writes(), text, refusedWith(415)));
      },
    ],
    [
      'answers 413 to a body over the limit on every write route',
      () =>
        expectNone(
          'write routes not answering 413',
          routesAnswering(
            writes(),
            (route) => send(route, auth().tokens['operator'], { tier, padding: 'x'.repeat(200 * 1024) }),
            refusedWith(413),
          ),
        ),
    ],
    [
      'puts the bearer scheme on every protected route of the OpenAPI document, and lists every route',
      async () => {
        const request = require('supertest') as typeof import('supertest');
        const document = (await request(app().getHttpServer()).get('/docs-json').expect(200)).body as {
          paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>>;
          components?: { securitySchemes?: Record<string, { scheme?: string }> };
        };
        const wrong: string[] = [];
        if (document.components?.securitySchemes?.['bearer']?.scheme !== 'bearer') wrong.push('no bearer security scheme');
        for (const route of registeredRoutes(app())) {
          const operation = document.paths[route.path.replace(/:(\w+)/g, '{$1}')]?.[route.method.toLowerCase()];
          if (!operation) wrong.push(`${route.method} ${route.path}: not in the document`);
          else if (!isPublicRoute(route) && !operation.security?.some((requirement) => 'bearer' in requirement))
            wrong.push(`${route.method} ${route.path}: no bearer security`);
        }
        if (wrong.length) throw new Error(wrong.join('\n'));
      },
    ],
  ];
}

/** What recordAudits wraps: a service's ServiceEventsService (the service-kit lib is not imported here). */
export interface EventPublisher {
  publish(...events: { type: string; data: unknown }[]): Promise<void>;
}

/**
 * Records the audit events the service publishes from now on (the real publish still runs): for
 * checks that the trail names the principal.
 */
export function recordAudits(events: EventPublisher): PublishedAudit[] {
  const published: PublishedAudit[] = [];
  const publish = events.publish.bind(events);
  events.publish = (...batch) => {
    for (const event of batch) if (event.type === 'dev.rookery.audit') published.push(event.data as PublishedAudit);
    return publish(...batch);
  };
  return published;
}
