import type * as Pg from 'pg';

/**
 * node-postgres, loaded on first use: the commands that never connect to PostgreSQL (restore,
 * verify, info) start without it (~0.1 s of module loading on a slow machine).
 */
export function pgDriver(): typeof Pg {
  return require('pg') as typeof Pg;
}
