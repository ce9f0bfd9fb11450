import { Command } from 'commander';
import { ServiceCallError } from '../cli.errors';
import { ServiceTarget, TOKEN_ENV, serviceTargetOf } from './service-target';

type Method = 'GET' | 'POST' | 'DELETE';

/** The client of the service the command runs through (--service, ROOKERY_SERVICE), or undefined to work on the repository. */
export async function serviceClientOf(command: Command): Promise<ServiceClient | undefined> {
  const target = await serviceTargetOf(command);
  return target && new ServiceClient(target);
}

/**
 * The REST calls of `rookery --service`: JSON in and out, the bearer token on every call, and
 * every refusal turned into one ServiceCallError that says what the service answered.
 */
export class ServiceClient {
  constructor(private readonly target: ServiceTarget) {}

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path);
  }

  post<T>(path: string, body: object = {}): Promise<T> {
    return this.call<T>('POST', path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.call<T>('DELETE', path);
  }

  /** The service as messages name it: its URL without the trailing slash. */
  get name(): string {
    return this.target.url.href.replace(/\/$/, '');
  }

  private async call<T>(method: Method, path: string, body?: object): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token) headers['authorization'] = `Bearer ${this.target.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      // No redirects: the token goes to the URL given, never to one a response names.
      response = await fetch(new URL(path.replace(/^\//, ''), this.target.url), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: 'manual',
      });
    } catch (error) {
      throw unreachableError(this.name, error);
    }
    const text = await response.text();
    if (response.status >= 300)
      throw answerError({ service: this.name, method, path, status: response.status, text, hadToken: !!this.target.token });
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ServiceCallError(
        `the service at ${this.name} answered ${method} ${path} with something that is not JSON`,
        'is --service the URL of a rookery service?',
        response.status,
      );
    }
  }
}

/** What a service sent back for a call it did not carry out. */
export interface RefusedCall {
  service: string;
  method: string;
  path: string;
  status: number;
  /** The body as text: `{ code, message, hint? }` from a rookery service, anything from a proxy. */
  text: string;
  hadToken: boolean;
}

/**
 * The error for a refused call: the service's own message and hint, with 401 and 403 saying which
 * (an unknown token and a token without the role need different fixes), and a route the service
 * does not have (an older version) or an answer that is not rookery's named as such.
 */
export function answerError(call: RefusedCall): ServiceCallError {
  const body = parseErrorBody(call.text);
  const said = body?.message ?? `${call.status}${call.text.trim() ? `: ${call.text.trim().split('\n')[0].slice(0, 200)}` : ''}`;
  if (call.status === 401) {
    const hint = call.hadToken
      ? `check the token (--token-file or ${TOKEN_ENV}): unknown, revoked or expired tokens are refused`
      : `no token was given: use --token-file FILE or ${TOKEN_ENV}`;
    return new ServiceCallError(
      `the service at ${call.service} refused the token (401 unauthenticated): ${said}`,
      body?.hint ?? hint,
      401,
      body?.code,
    );
  }
  if (call.status === 403) {
    const hint = "the token's roles or tiers do not cover this call: ask for an operator token of the tier to change things";
    return new ServiceCallError(
      `the service at ${call.service} refused the call (403 forbidden): ${said}`,
      body?.hint ?? hint,
      403,
      body?.code,
    );
  }
  if (call.status >= 300 && call.status < 400)
    return new ServiceCallError(
      `the service at ${call.service} answered ${call.method} ${call.path} with a redirect (${call.status}); rookery does not follow redirects with a token`,
      'give the URL the service answers on',
      call.status,
    );
  if (!body?.code)
    return new ServiceCallError(
      call.status === 404
        ? `the service at ${call.service} has no route ${call.method} ${call.path}`
        : `the service at ${call.service} answered ${call.method} ${call.path} with ${said}`,
      call.status === 404 ? 'is it a rookery tier service of this version?' : undefined,
      call.status,
    );
  return new ServiceCallError(body.message ?? said, body.hint, call.status, body.code);
}

function parseErrorBody(text: string): { code?: string; message?: string; hint?: string } | undefined {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null) return undefined;
    const { code, message, hint } = body as Record<string, unknown>;
    return {
      code: typeof code === 'string' ? code : undefined,
      message: typeof message === 'string' ? message : Array.isArray(message) ? message.join('; ') : undefined,
      hint: typeof hint === 'string' ? hint : undefined,
    };
  } catch {
    return undefined;
  }
}

const NETWORK_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
};

/** fetch failed before an answer: the reason from its cause (refused, not found, a certificate not trusted). */
export function unreachableError(service: string, error: unknown): ServiceCallError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? '';
  const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code);
  const reason = NETWORK_REASONS[code] ?? cause?.message ?? (error as Error).message;
  return new ServiceCallError(
    `cannot reach the service at ${service}: ${reason}${code && !reason.includes(code) ? ` (${code})` : ''}`,
    certificate
      ? 'its certificate is not trusted here: give the CA that signed it with --service-ca FILE or ROOKERY_SERVICE_CA'
      : 'is the service running, and is --service (or ROOKERY_SERVICE) its URL?',
  );
}
