import type { DatabaseError } from 'pg';
import { pgDriver } from './pg-driver';
import { RookeryError, SourceUnavailableError } from '@rookery/core';
import { describePgUrl } from './pg-connection';

export type SqlParams = readonly unknown[];

/** One open connection, handed to `PgSqlClient.withSession` callbacks. */
export interface PgSession {
  query<Row extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: SqlParams): Promise<Row[]>;
}

export interface PgSqlClientOptions {
  connectTimeoutMs?: number;
  applicationName?: string;
}

/** SQLSTATEs that mean "these credentials are refused" rather than "the server is unreachable". */
const AUTH_FAILURES = new Set(['28P01', '28000']);
/** SQLSTATEs that mean the server exists but cannot take us now (starting, shutting down, full). */
const NOT_READY = new Set(['57P03', '53300', '57P01']);

/**
 * Plain SQL against a database over node-postgres: the control queries of this lib and the test
 * harness's data work. Connection problems become SourceUnavailableError naming host:port, never
 * the password.
 */
export class PgSqlClient {
  private readonly connectTimeoutMs: number;
  private readonly applicationName: string;

  constructor(options: PgSqlClientOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.applicationName = options.applicationName ?? 'rookery';
  }

  async query<Row extends Record<string, unknown> = Record<string, unknown>>(
    url: string,
    sql: string,
    params: SqlParams = [],
  ): Promise<Row[]> {
    return this.withSession(url, (session) => session.query<Row>(sql, params));
  }

  async withSession<T>(url: string, work: (session: PgSession) => Promise<T>): Promise<T> {
    const client = new (pgDriver().Client)({
      connectionString: url,
      connectionTimeoutMillis: this.connectTimeoutMs,
      application_name: this.applicationName,
    });
    // An idle connection dropped by the server emits 'error'; without a listener it would crash.
    client.on('error', () => undefined);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(() => undefined);
      throw connectionError(url, error);
    }
    try {
      return await work({
        query: async <Row extends Record<string, unknown>>(sql: string, params: SqlParams = []) =>
          (await client.query<Row>(sql, params as unknown[])).rows,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/** Translates a node-postgres connect failure into the core taxonomy. */
export function connectionError(url: string, error: unknown): RookeryError {
  const target = describePgUrl(url);
  const user = safeUser(url);
  const isDatabaseError = (value: unknown): value is DatabaseError => value instanceof pgDriver().DatabaseError;
  if (isDatabaseError(error) && error.code && AUTH_FAILURES.has(error.code)) {
    return new SourceUnavailableError(`authentication failed for user '${user}' on postgres ${target}: ${error.message}`, {
      cause: error,
      retryable: false,
      hint: 'check the password in the tier pgUrl (or PGPASSFILE) and pg_hba.conf on the server',
    });
  }
  const code = (error as { code?: string }).code;
  const detail = error instanceof Error ? error.message : String(error);
  return new SourceUnavailableError(`cannot connect to postgres ${target}: ${detail}`, {
    cause: error,
    retryable: code === undefined || !isDatabaseError(error) || NOT_READY.has(code),
    hint: 'check that the server is running and the host and port in the tier pgUrl',
  });
}

function safeUser(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || 'default';
  } catch {
    return 'unknown';
  }
}
