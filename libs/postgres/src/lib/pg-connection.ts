import { ConfigError, redactUrl } from '@rookery/core';

/**
 * A libpq connection split for a child process: `conninfo` is safe for argv (`-d`), every secret
 * and TLS setting travels in `env`.
 */
export interface PgConnection {
  conninfo: string;
  env: Record<string, string>;
  /** host:port/database for messages (a socket directory counts as the host). */
  target: string;
}

/** Query parameters libpq also reads from the environment: these go to env, never to argv. */
const ENV_PARAMETERS: Readonly<Record<string, string>> = {
  password: 'PGPASSWORD',
  passfile: 'PGPASSFILE',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  sslcrl: 'PGSSLCRL',
  sslpassword: 'PGSSLPASSWORD',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
  target_session_attrs: 'PGTARGETSESSIONATTRS',
  gssencmode: 'PGGSSENCMODE',
};

/** Parameters that may stay in the conninfo (never secret). */
const CONNINFO_PARAMETERS = new Set(['host', 'hostaddr', 'port', 'user', 'dbname', 'replication']);

export function connectionFromUrl(url: string): PgConnection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new ConfigError(`invalid postgres url '${redactUrl(url)}'`, ['pgUrl'], { cause: error });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(`invalid postgres url '${redactUrl(url)}': expected postgres:// or postgresql://`, ['pgUrl']);
  }

  const keywords: Record<string, string> = {};
  const env: Record<string, string> = {};
  if (parsed.hostname) keywords['host'] = decodeURIComponent(parsed.hostname.replace(/^\[|\]$/g, ''));
  if (parsed.port) keywords['port'] = parsed.port;
  if (parsed.username) keywords['user'] = decodeURIComponent(parsed.username);
  if (parsed.password) env['PGPASSWORD'] = decodeURIComponent(parsed.password);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (database) keywords['dbname'] = database;

  const unknown: string[] = [];
  for (const [key, value] of parsed.searchParams) {
    if (ENV_PARAMETERS[key]) env[ENV_PARAMETERS[key]] = value;
    else if (CONNINFO_PARAMETERS.has(key)) keywords[key] = value;
    else unknown.push(key);
  }
  if (unknown.length > 0) {
    throw new ConfigError(
      `unsupported parameter(s) ${unknown.map((key) => `'${key}'`).join(', ')} in postgres url '${redactUrl(url)}'`,
      unknown.map((key) => `pgUrl.${key}`),
    );
  }

  const conninfo = Object.entries(keywords)
    .map(([key, value]) => `${key}=${quoteConninfoValue(value)}`)
    .join(' ');
  const target = `${keywords['host'] ?? 'localhost'}:${keywords['port'] ?? '5432'}/${keywords['dbname'] ?? keywords['user'] ?? ''}`;
  return { conninfo, env, target };
}

/** libpq keyword/value quoting: single quotes, with backslash and quote escaped. */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && /^[A-Za-z0-9_.\-/:]+$/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** host:port/database of a URL for messages, without credentials. */
export function describePgUrl(url: string): string {
  try {
    return connectionFromUrl(url).target;
  } catch {
    return redactUrl(url);
  }
}
