import { tmpdir } from 'node:os';
import {
  PgRestoreDriver,
  PgSqlClient,
  PgVerifybackupDriver,
  ScratchCluster,
  ScratchClusterOptions,
  PostgresToolkit,
  freeLoopbackPort,
} from '@rookery/postgres';

/**
 * What validation and drills need from PostgreSQL beyond the engine: pg_verifybackup for the
 * base backups the engine restored, pg_restore --list for dumps, SQL for the data checks, scratch
 * clusters for logical drills, and a directory for restored copies (as large as the biggest base
 * backup).
 */
export interface ValidationTools {
  verifybackup: PgVerifybackupDriver;
  restore: PgRestoreDriver;
  sql: PgSqlClient;
  scratchCluster(options: ScratchClusterOptions): Promise<ScratchCluster>;
  freePort(): Promise<number>;
  workDirectory: string;
}

export interface ValidationToolsOptions {
  /** Where base backups are extracted and drills restore; default the OS temp directory. */
  workDirectory?: string;
}

/**
 * The tools from the process's PostgreSQL toolkit (the engine's: `engine.toolkit`), with SQL
 * sessions named rookery-validator.
 */
export function createValidationTools(
  toolkit: Pick<PostgresToolkit, 'verifybackup' | 'restore' | 'sqlAs' | 'scratchCluster'>,
  options: ValidationToolsOptions = {},
): ValidationTools {
  return {
    verifybackup: toolkit.verifybackup,
    restore: toolkit.restore,
    sql: toolkit.sqlAs('rookery-validator'),
    scratchCluster: (clusterOptions) => toolkit.scratchCluster(clusterOptions),
    freePort: freeLoopbackPort,
    workDirectory: options.workDirectory ?? tmpdir(),
  };
}
