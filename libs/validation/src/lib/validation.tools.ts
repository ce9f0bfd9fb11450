import { tmpdir } from 'node:os';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import {
  PgRestoreDriver,
  PgSqlClient,
  PgVerifybackupDriver,
  ScratchCluster,
  ScratchClusterOptions,
  createPostgresToolkit,
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

/** Builds the tools from the configuration (the PostgreSQL bin directory). */
export async function createValidationTools(config: RookeryConfig, options: ValidationToolsOptions = {}): Promise<ValidationTools> {
  const toolkit = await createPostgresToolkit({
    binDir: config.postgres.binDir,
    env: processEnvironment(),
    applicationName: 'rookery-validator',
  });
  return {
    verifybackup: toolkit.verifybackup,
    restore: toolkit.restore,
    sql: toolkit.sql,
    scratchCluster: (clusterOptions) => toolkit.scratchCluster(clusterOptions),
    freePort: freeLoopbackPort,
    workDirectory: options.workDirectory ?? tmpdir(),
  };
}
