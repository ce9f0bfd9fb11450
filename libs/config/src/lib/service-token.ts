/** Where `rookery --service` finds its bearer token when no --token-file is given (never a flag: argv is public). */
export const SERVICE_TOKEN_ENV = 'ROOKERY_TOKEN';

/** The token in ROOKERY_TOKEN, trimmed; undefined when unset or blank. */
export function serviceTokenFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[SERVICE_TOKEN_ENV]?.trim() || undefined;
}
