import { PgSqlClient } from '@rookery/postgres';

export interface TableChecksum {
  rows: number;
  /** Sum over rows of the first 64 bits of md5(row::text), as a signed decimal. */
  checksum: string;
}

/** schema.table → checksum, for every ordinary table outside the system schemas. */
export type TableChecksums = Record<string, TableChecksum>;

/**
 * Output settings that change row::text: pinned, so two clusters configured differently (time
 * zone, date style) still agree on equal data.
 */
const STABLE_TEXT_SETTINGS = `
  set timezone = 'UTC';
  set datestyle = 'ISO, YMD';
  set intervalstyle = 'postgres';
  set extra_float_digits = 1;
  set bytea_output = 'hex';`;

/**
 * Content checksums of every user table of the database in `url`: a count and the sum of a 64-bit
 * slice of each row's md5. A sum does not depend on row order (physical layout, restore order) but
 * does count duplicates, so it compares the tables as multisets of rows.
 */
export async function tableChecksums(url: string): Promise<TableChecksums> {
  const sql = new PgSqlClient({ applicationName: 'rookery-checksums' });
  return sql.withSession(url, async (session) => {
    await session.query(STABLE_TEXT_SETTINGS);
    const tables = await session.query<{ schema: string; name: string }>(`
      select n.nspname as schema, c.relname as name
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r'
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
      order by 1, 2`);
    const result: TableChecksums = {};
    for (const { schema, name } of tables) {
      const [row] = await session.query<{ rows: string; checksum: string }>(
        `select count(*) as rows,
                coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text as checksum
         from ${quoteIdent(schema)}.${quoteIdent(name)} t`,
      );
      result[`${schema}.${name}`] = { rows: Number(row.rows), checksum: row.checksum };
    }
    return result;
  });
}

/**
 * tableChecksums without rookery's own schema (the change log and tracking state a logical
 * incremental keeps in the source): the user data a restore must reproduce.
 */
export async function userTableChecksums(url: string): Promise<TableChecksums> {
  return Object.fromEntries(Object.entries(await tableChecksums(url)).filter(([table]) => !table.startsWith('rookery.')));
}

/** Human-readable differences between two checksum sets; empty when they are equal. */
export function diffTableChecksums(expected: TableChecksums, actual: TableChecksums): string[] {
  const differences: string[] = [];
  const tables = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  for (const table of tables) {
    const a = expected[table];
    const b = actual[table];
    if (!b) differences.push(`table '${table}' is missing (expected ${a.rows} rows)`);
    else if (!a) differences.push(`table '${table}' is unexpected (${b.rows} rows)`);
    else if (a.rows !== b.rows) differences.push(`table '${table}' has ${b.rows} rows, expected ${a.rows}`);
    else if (a.checksum !== b.checksum) {
      differences.push(`table '${table}' content differs (same ${a.rows} rows, checksum ${b.checksum}, expected ${a.checksum})`);
    }
  }
  return differences;
}

function quoteIdent(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}
