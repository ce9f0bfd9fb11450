import type * as Pg from 'pg';

/**
 * node-postgres, loaded on first use: the commands that never connect to PostgreSQL (restore,
 * verify, info) start without paying for loading it (BENCHMARKS.md).
 */
export function pgDriver(): typeof Pg {
  return require('pg') as typeof Pg;
}
