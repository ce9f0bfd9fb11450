import { tmpdir } from 'node:os';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import {
  PgBinaries,
  PgRestoreDriver,
  PgSqlClient,
  PgVerifybackupDriver,
  ProcessRunner,
  ScratchCluster,
  ScratchClusterOptions,
  createScratchCluster,
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
  const runner = new ProcessRunner({ baseEnv: processEnvironment() });
  const binaries = await PgBinaries.resolve({ binDir: config.postgres.binDir, runner });
  return {
    verifybackup: new PgVerifybackupDriver(runner, binaries),
    restore: new PgRestoreDriver(runner, binaries),
    sql: new PgSqlClient({ applicationName: 'rookery-validator' }),
    scratchCluster: (clusterOptions) =>
      createScratchCluster({ binDir: config.postgres.binDir, baseEnv: processEnvironment(), ...clusterOptions }),
    freePort: freeLoopbackPort,
    workDirectory: options.workDirectory ?? tmpdir(),
  };
}
