import type { Params } from 'nestjs-pino';
import type { ResolvedServiceKitOptions } from './service-kit.constants';

/**
 * pino for every service: JSON lines, one per request, named after the service. Credentials that
 * can reach a log line through HTTP are censored here; config secrets are `Secret` values that print
 * as [redacted], and database URLs are logged only through redactUrl().
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.pgUrl',
  '*.encryptionKey',
  '*.secretAccessKey',
];

export function serviceLoggerOptions(options: ResolvedServiceKitOptions): Params {
  return {
    pinoHttp: {
      name: options.serviceName,
      level: options.logLevel,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // Probes and scrapes every few seconds would drown the log.
      autoLogging: { ignore: (req) => req.url === '/health' || req.url === '/metrics' },
    },
  };
}
