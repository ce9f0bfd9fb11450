import { tmpdir } from 'node:os';
import { PgDumpDriver, PgRestoreDriver, PgSqlClient, PostgresToolkit } from '@rookery/postgres';

/** The PostgreSQL programs and SQL access the logical backup and restore flows use. */
export interface LogicalTools {
  dump: PgDumpDriver;
  restore: PgRestoreDriver;
  sql: PgSqlClient;
  /** Where directory dumps and parallel restores are staged. */
  workDirectory: string;
}

/**
 * The logical tools of the engine's PostgreSQL toolkit. The programs' directory is looked up on
 * first use (PgBinaries), so physical-only runs never look for pg_dump.
 */
export function logicalToolsOf(toolkit: Pick<PostgresToolkit, 'dump' | 'restore' | 'sql'>): () => Promise<LogicalTools> {
  const tools: LogicalTools = { dump: toolkit.dump, restore: toolkit.restore, sql: toolkit.sql, workDirectory: tmpdir() };
  return async () => tools;
}
