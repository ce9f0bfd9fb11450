import { cpus } from 'node:os';
import { PgSession, PgSqlClient } from '@rookery/postgres';

/** Options every synthetic tier database accepts (seedOltp, seedContent, seedOlap). */
export interface SeedOptions {
  /** Target size of the seeded data (tables + indexes) in MiB; rows scale linearly with it. */
  sizeMb?: number;
  /** Same seed, same rows: two seeds with one seed value have equal table checksums. */
  seed?: number;
  /** Database to create; default the tier's database name. */
  database?: string;
  /** Drop the database first when it exists (else an existing database is an error). */
  dropExisting?: boolean;
  /** Connections loading in parallel; default the number of CPUs (at most 4). */
  parallelism?: number;
  onProgress?: (progress: SeedProgress) => void;
}

export interface SeedProgress {
  phase: 'schema' | 'data' | 'constraints' | 'analyze' | 'done';
  /** 0..1 over the whole seed. */
  fraction: number;
  table?: string;
}

export interface SeedResult {
  database: string;
  url: string;
  /** pg_database_size after seeding (includes the ~7.5 MB of an empty database). */
  databaseBytes: number;
  /** Bytes added by the seed: tables, TOAST and indexes. */
  dataBytes: number;
  rows: Record<string, number>;
  elapsedMs: number;
}

/**
 * What one synthetic database is made of. `insertSql(table, rows)` returns an INSERT … SELECT over
 * `generate_series($1, $2)` with seed `$3`, using the session helpers of HELPER_SQL.
 */
export interface SeedPlan<Table extends string> {
  defaultDatabase: string;
  schemaSql: string;
  /** Rows per MiB requested, and the minimum row count of each table. */
  rowsPerMb: Readonly<Record<Table, number>>;
  minimumRows?: Partial<Record<Table, number>>;
  /** Adjusts the computed counts (e.g. a multiple of another table's count). */
  adjustCounts?: (counts: Record<Table, number>) => void;
  insertSql(table: Table, counts: Record<Table, number>): string;
  /** Keys and indexes, built in parallel after the load. */
  indexDdl: readonly string[];
  /** Foreign keys and whatever needs every key (materialized views), run in order. */
  finalDdl: readonly string[];
}

const CHUNK_ROWS = 25_000;

/**
 * Creates and loads a synthetic database server-side (generate_series and a deterministic hash of
 * row number, column and seed), so hundreds of MB load in seconds and the same seed always
 * produces the same rows. Tables are loaded without indexes, then keys and indexes are built: the
 * fast order for a bulk load, and the end state is the same as a live system's.
 */
export async function runSeed<Table extends string>(url: string, plan: SeedPlan<Table>, options: SeedOptions): Promise<SeedResult> {
  const started = Date.now();
  const sizeMb = options.sizeMb ?? 200;
  const seed = options.seed ?? 1;
  const database = options.database ?? plan.defaultDatabase;
  const sql = new PgSqlClient({ applicationName: 'rookery-seed' });
  const progress = options.onProgress ?? (() => undefined);
  const parallelism = Math.max(1, options.parallelism ?? Math.min(4, cpus().length));

  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`invalid database name '${database}'`);
  if (!Number.isFinite(sizeMb) || sizeMb <= 0) throw new Error(`invalid seed size ${sizeMb} MB`);
  if (!Number.isInteger(seed)) throw new Error(`invalid seed ${seed}: expected an integer`);

  progress({ phase: 'schema', fraction: 0 });
  if (options.dropExisting) await sql.query(url, `drop database if exists ${database}`);
  await sql.query(url, `create database ${database}`);
  const target = withDatabase(url, database);
  const [{ size: emptyBytes }] = await sql.query<{ size: string }>(target, 'select pg_database_size(current_database()) as size');
  await sql.query(target, plan.schemaSql);

  const rows = rowCounts(plan, sizeMb);
  const chunks = (Object.entries(rows) as [Table, number][]).flatMap(([table, count]) => chunkRanges(table, count));
  let loaded = 0;
  const totalRows = chunks.reduce((sum, chunk) => sum + chunk.to - chunk.from + 1, 0);
  await runPool(parallelism, chunks, target, sql, async (session, chunk) => {
    await session.query(plan.insertSql(chunk.table, rows), [chunk.from, chunk.to, seed]);
    loaded += chunk.to - chunk.from + 1;
    progress({ phase: 'data', fraction: 0.05 + 0.75 * (loaded / totalRows), table: chunk.table });
  });

  progress({ phase: 'constraints', fraction: 0.8 });
  // Primary keys and indexes of different tables build in parallel; foreign keys need the keys.
  let built = 0;
  await runPool(parallelism, plan.indexDdl, target, sql, async (session, ddl) => {
    await session.query(ddl);
    progress({ phase: 'constraints', fraction: 0.8 + 0.12 * (++built / plan.indexDdl.length) });
  });
  await sql.withSession(target, async (session) => {
    for (const ddl of plan.finalDdl) await session.query(ddl);
    progress({ phase: 'analyze', fraction: 0.95 });
    await session.query('analyze');
  });

  const [{ size }] = await sql.query<{ size: string }>(target, 'select pg_database_size(current_database()) as size');
  progress({ phase: 'done', fraction: 1 });
  return {
    database,
    url: target,
    databaseBytes: Number(size),
    dataBytes: Number(size) - Number(emptyBytes),
    rows,
    elapsedMs: Date.now() - started,
  };
}

function rowCounts<Table extends string>(plan: SeedPlan<Table>, sizeMb: number): Record<Table, number> {
  const counts = {} as Record<Table, number>;
  for (const [table, perMb] of Object.entries(plan.rowsPerMb) as [Table, number][]) {
    counts[table] = Math.max(plan.minimumRows?.[table] ?? 10, Math.round(perMb * sizeMb));
  }
  plan.adjustCounts?.(counts);
  return counts;
}

function chunkRanges<Table extends string>(table: Table, count: number): { table: Table; from: number; to: number }[] {
  const ranges = [];
  for (let from = 1; from <= count; from += CHUNK_ROWS) {
    ranges.push({ table, from, to: Math.min(count, from + CHUNK_ROWS - 1) });
  }
  return ranges;
}

async function runPool<T>(
  connections: number,
  items: readonly T[],
  url: string,
  sql: PgSqlClient,
  work: (session: PgSession, item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = () =>
    sql.withSession(url, async (session) => {
      await session.query(HELPER_SQL);
      while (next < items.length) await work(session, items[next++]);
    });
  await Promise.all(Array.from({ length: Math.min(connections, items.length) }, worker));
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Session-local helpers (pg_temp, gone with the connection, so nothing of the seed's machinery is
 * left in the database): r(i, column, seed) is a uniform double in [0, 1) from a hash, pick() an
 * element of an array.
 */
const HELPER_SQL = `
  create function pg_temp.r(i bigint, col int, seed int) returns float8
    language sql immutable parallel safe
    as $$ select abs(hashint8extended(i, seed::bigint * 1000 + col) % 1000000007)::float8 / 1000000007 $$;
  create function pg_temp.pick(items text[], x float8) returns text
    language sql immutable parallel safe
    as $$ select items[1 + floor(x * cardinality(items))::int] $$;`;

/** `pg_temp.r(g, col, $3)`: the column-`col` random draw of row g. */
export function draw(col: number): string {
  return `pg_temp.r(g, ${col}, $3)`;
}

/** The vocabulary every synthetic PenguinMails database draws names and text from (SQL array literals). */
export const VOCABULARY = {
  FIRST: `array['Ada','Ben','Chloe','Dmitri','Elena','Farid','Grace','Hiro','Ines','Jonas','Kofi','Lena','Mateo','Nora','Omar','Priya','Quinn','Rosa','Sven','Tariq','Uma','Viktor','Wen','Ximena','Yusuf','Zoe']`,
  LAST: `array['Andersen','Brooks','Castillo','Dubois','Eriksen','Fischer','Garcia','Hughes','Ivanova','Jensen','Kowalski','Lopez','Moreau','Nakamura','Okafor','Petrov','Quintero','Rossi','Schmidt','Tanaka','Urban','Varga','Weber','Xu','Young','Zimmermann']`,
  WORDS: `array['Blue','Arctic','Swift','Bright','Quiet','Golden','Northern','Clever','Rocky','Silver','Emperor','Little','Royal','Gentoo','Macaroni','Chinstrap']`,
  NOUNS: `array['Penguin','Labs','Works','Mail','Studio','Goods','Outfitters','Analytics','Foods','Travel','Health','Books','Systems','Garden','Media','Supply']`,
  DOMAINS: `array['example.com','example.org','example.net','mail.example','inbox.example','post.example']`,
  SUBJECTS: `array['Your weekly digest','Last chance: {pct}% off everything','Welcome aboard!','We miss you','New arrivals are here','Your order has shipped','Invitation: spring webinar','Product update for {month}','Thanks for being a customer','Reminder: your cart is waiting','Exclusive early access','Tips to get started']`,
  SENTENCES: `array['Thanks for being part of our community.','We have some exciting news to share with you this week.','Our spring collection has just landed and we think you will love it.','Click the link below to see what is new.','As a valued subscriber you get early access before everyone else.','If you have any questions, simply reply to this email.','Your account settings can be changed at any time.','We have updated our privacy policy to make it clearer.','Join thousands of customers who already switched.','This offer ends on Sunday at midnight.','Here are three tips to get more out of your plan.','Do not miss our live webinar next Thursday.','Free shipping on all orders over fifty euros.','You are receiving this email because you signed up on our website.','Unsubscribe at any time with one click.','We would love to hear your feedback.']`,
  PLANS: `array['free','starter','growth','enterprise']`,
  COUNTRIES: `array['DE','FR','GB','US','ES','NL','SE','PL','JP','BR']`,
  EPOCH: `timestamptz '2024-01-01 00:00:00+00'`,
} as const;
