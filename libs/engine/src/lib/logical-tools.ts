import { tmpdir } from 'node:os';
import { RookeryConfig, processEnvironment } from '@rookery/config';
import { PgBinaries, PgDumpDriver, PgRestoreDriver, PgSqlClient, ProcessRunner } from '@rookery/postgres';

/** The PostgreSQL programs and SQL access the logical backup and restore flows use. */
export interface LogicalTools {
  dump: PgDumpDriver;
  restore: PgRestoreDriver;
  sql: PgSqlClient;
  /** Where directory dumps and parallel restores are staged. */
  workDirectory: string;
}

/** Builds the logical tools from the configuration (the PostgreSQL bin directory). */
export async function createLogicalTools(config: RookeryConfig): Promise<LogicalTools> {
  const runner = new ProcessRunner({ baseEnv: processEnvironment() });
  const binaries = await PgBinaries.resolve({ binDir: config.postgres.binDir, runner });
  return {
    dump: new PgDumpDriver(runner, binaries),
    restore: new PgRestoreDriver(runner, binaries),
    sql: new PgSqlClient({ applicationName: 'rookery' }),
    workDirectory: tmpdir(),
  };
}

/** Resolves the tools once, on first use, so physical-only runs never look for pg_dump. */
export function lazyLogicalTools(config: RookeryConfig): () => Promise<LogicalTools> {
  let tools: Promise<LogicalTools> | undefined;
  return () => (tools ??= createLogicalTools(config));
}
