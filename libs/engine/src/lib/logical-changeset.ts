import { Readable, Writable } from 'node:stream';
import { ChangesetInfo, IntegrityError, parsePgSnapshot } from '@rookery/core';
import { PgDumpDriver, PgSession } from '@rookery/postgres';
import { TrackedTable, changedSince } from './logical-change-tracking';

/**
 * A changeset: the artifact of a content incremental, a plain SQL script that psql applies in one
 * transaction on top of the restored parent. For each table with changes since the parent:
 * - mode 'keys': the changed primary keys go into a temporary table, the target's rows with those
 *   keys are deleted, then the source's current rows for those keys are copied in. A key whose row
 *   no longer exists is thereby deleted; inserted, updated (any number of times), and inserted-
 *   then-deleted rows all end as they are at the incremental's snapshot.
 * - mode 'whole' (a table without primary key, or truncated): all its rows replace the target's.
 * Then every sequence is set to its value. The script runs with session_replication_role =
 * replica, so foreign keys (and their ON DELETE actions) and user triggers do not fire while the
 * target passes through states between two consistent ones; the end state is the source's, which
 * satisfied them. Unique indexes are still checked, and cannot fail: changed keys are all deleted
 * before any changed row is copied in.
 * An incremental that follows a partition layout change (see logical-change-tracking) adds DDL
 * around the rows: first the tables it drops, then, with rookery's trigger functions they call,
 * the definitions of the tables it recreates (tables of their own), whose rows come whole; after
 * every row, their partition and index attachments, so each bound is checked against the rows of
 * the incremental's snapshot. All of it in psql's one transaction.
 */
export const CHANGESET_HEADER = '-- rookery changeset 1';
const CHANGESET_END = '-- rookery changeset end';
const KEYS_TABLE = 'pg_temp.rookery_changed_keys';

export interface ChangesetPlan {
  url: string;
  /** The exported snapshot the incremental reads. */
  snapshot: string;
  /** pg_current_snapshot() text of the parent: changes of transactions it did not see are carried. */
  parentSnapshot: string;
  tables: readonly TrackedTable[];
  changes: ReadonlyMap<string, { keys: number; whole: boolean }>;
  sequences: readonly SequenceValue[];
  describe: { backup: string; parent: string };
  layout?: ChangesetLayout;
  signal?: AbortSignal;
}

/** The layout DDL of a changeset. */
export interface ChangesetLayout {
  /** Named for the manifest: partitions attached, detached, created, dropped. */
  changes: string[];
  /** Tables dropped first, deepest partitions first. */
  drop: string[];
  /** Tables recreated from their definition (shallowest first), in two phases: before and after the rows. */
  recreate: { table: string; define: string[]; attach: string[] }[];
  /** rookery's row trigger functions the recreated tables' triggers call. */
  functions: string[];
}

/** pg_dump's definitions are schema-qualified and expect these; reset after them for the rows. */
const DEFINITIONS_BEGIN = `SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n`;
const DEFINITIONS_END = 'RESET search_path;\nRESET check_function_bodies;\nRESET default_tablespace;\nRESET default_table_access_method;\n';

export interface SequenceValue {
  /** A SQL literal of the qualified name, for setval(). */
  literal: string;
  lastValue: string;
  isCalled: boolean;
}

/** Streams the changeset script; `info` resolves, once the stream ended, with what it carried. */
export function changesetStream(
  dump: PgDumpDriver,
  plan: ChangesetPlan,
): { stream: Readable; info: () => Omit<ChangesetInfo, 'artifact'> } {
  // Inlined in the queries below: checked to be nothing but a snapshot first.
  parsePgSnapshot(plan.parentSnapshot);
  const since = changedSince(`'${plan.parentSnapshot}'`);
  const tables: ChangesetInfo['tables'] = [];
  const copy = async function* (query: string, counter: (lines: number) => void): AsyncGenerator<Buffer> {
    const running = dump.copyOut({ url: plan.url, snapshot: plan.snapshot, query, signal: plan.signal });
    let lines = 0;
    for await (const chunk of running.stream as AsyncIterable<Buffer>) {
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1)) lines++;
      yield chunk;
    }
    await running.result;
    counter(lines);
  };
  async function* generate(): AsyncGenerator<Buffer | string> {
    yield `${CHANGESET_HEADER}\n-- ${JSON.stringify(plan.describe)}\n`;
    yield `SET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\nSET session_replication_role = replica;\nSET rookery.applying_changeset = on;\n`;
    const layout = plan.layout;
    if (layout?.drop.length || layout?.recreate.length) {
      yield `-- rookery layout: ${layout.changes.join('; ')}\n`;
      for (const table of layout.drop) yield `DROP TABLE ${table};\n`;
      yield DEFINITIONS_BEGIN;
      for (const fn of layout.functions) yield `${fn};\n`;
      for (const { define } of layout.recreate) for (const statement of define) yield `${statement}\n`;
      yield DEFINITIONS_END;
    }
    const recreated = new Set(layout?.recreate.map((entry) => entry.table));
    for (const table of plan.tables) {
      const change = plan.changes.get(table.oid) ?? (recreated.has(table.name) ? { keys: 0, whole: true } : undefined);
      if (!change) continue;
      const whole = change.whole || table.keyColumns.length === 0 || recreated.has(table.name);
      const entry = { table: table.name, mode: whole ? ('whole' as const) : ('keys' as const), keys: whole ? 0 : change.keys, rows: 0 };
      tables.push(entry);
      const columns = table.columns.join(', ');
      yield `-- rookery table ${table.name} ${entry.mode}\n`;
      if (whole) {
        yield `DELETE FROM ONLY ${table.name};\nCOPY ${table.name} (${columns}) FROM stdin;\n`;
        yield* copy(`select ${columns} from only ${table.name}`, (rows) => (entry.rows = rows));
        yield '\\.\n';
        continue;
      }
      const keys = table.keyColumns.map((column, index) => `key[${index + 1}]::${table.keyTypes[index]}`).join(', ');
      const changedKeys = `select distinct ${keys} from rookery.change_log where relid = ${table.oid} and key is not null and ${since}`;
      yield `CREATE TEMP TABLE rookery_changed_keys (${table.keyColumns.map((column, index) => `${column} ${table.keyTypes[index]}`).join(', ')});\n`;
      yield `COPY ${KEYS_TABLE} FROM stdin;\n`;
      yield* copy(changedKeys, (lines) => (entry.keys = lines));
      yield `\\.\nDELETE FROM ONLY ${table.name} t USING ${KEYS_TABLE} k WHERE ${table.keyColumns.map((column) => `t.${column} = k.${column}`).join(' AND ')};\n`;
      yield `DROP TABLE ${KEYS_TABLE};\nCOPY ${table.name} (${columns}) FROM stdin;\n`;
      const tupleOf = (alias: string) => `(${table.keyColumns.map((column) => `${alias}.${column}`).join(', ')})`;
      yield* copy(
        `select ${table.columns.map((column) => `t.${column}`).join(', ')} from only ${table.name} t where ${tupleOf('t')} in (${changedKeys})`,
        (rows) => (entry.rows = rows),
      );
      yield '\\.\n';
    }
    if (layout?.recreate.some((entry) => entry.attach.length)) {
      yield `-- rookery layout attachments\n${DEFINITIONS_BEGIN}`;
      for (const { attach } of [...layout.recreate].reverse()) for (const statement of attach) yield `${statement}\n`;
      yield DEFINITIONS_END;
    }
    for (const sequence of plan.sequences) {
      yield `SELECT pg_catalog.setval(${sequence.literal}, ${sequence.lastValue}, ${sequence.isCalled});\n`;
    }
    yield `${trailer(tables.length, plan.sequences.length)}\n`;
  }
  return {
    stream: Readable.from(generate(), { objectMode: false }),
    info: () => ({
      tables,
      sequences: plan.sequences.length,
      ...(plan.layout?.changes.length
        ? {
            layout: {
              changes: plan.layout.changes,
              recreated: plan.layout.recreate.map((entry) => entry.table),
              dropped: plan.layout.drop.filter((table) => !plan.layout?.recreate.some((entry) => entry.table === table)),
            },
          }
        : {}),
    }),
  };
}

/** Every sequence of the database and its value now (sequences are not transactional, as in pg_dump). */
export async function readSequences(session: PgSession): Promise<SequenceValue[]> {
  const sequences = await session.query<{ name: string; literal: string }>(
    `select quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name,
            quote_literal(quote_ident(n.nspname) || '.' || quote_ident(c.relname)) as literal
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'S' and n.nspname not in ('pg_catalog', 'information_schema', 'rookery') and n.nspname not like 'pg_temp%'
     order by 1`,
  );
  const values: SequenceValue[] = [];
  for (const sequence of sequences) {
    const [value] = await session.query<{ lastValue: string; isCalled: boolean }>(
      `select last_value::text as "lastValue", is_called as "isCalled" from ${sequence.name}`,
    );
    values.push({ literal: sequence.literal, ...value });
  }
  return values;
}

function trailer(tables: number, sequences: number): string {
  return `${CHANGESET_END}: ${tables} tables, ${sequences} sequences`;
}

/**
 * A sink that accepts a changeset only if it starts with the header and ends with the trailer
 * the manifest expects (bounded memory: the head and the last bytes are kept). Together with the
 * artifact's checksums this proves the script is whole and is the one the manifest describes.
 */
export class ChangesetCheck extends Writable {
  private head = '';
  private tail = Buffer.alloc(0);

  constructor(
    private readonly artifact: string,
    private readonly expected: Pick<ChangesetInfo, 'tables' | 'sequences'>,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.head.length < CHANGESET_HEADER.length + 1) this.head += chunk.subarray(0, 64).toString('utf8');
    this.tail = Buffer.concat([this.tail, chunk]).subarray(-256);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    const lines = this.tail.toString('utf8').trimEnd().split('\n');
    const want = trailer(this.expected.tables.length, this.expected.sequences);
    if (!this.head.startsWith(`${CHANGESET_HEADER}\n`)) {
      callback(new IntegrityError(`artifact '${this.artifact}' is not a rookery changeset (no header)`));
    } else if (lines.at(-1) !== want) {
      callback(
        new IntegrityError(
          `artifact '${this.artifact}' does not end with '${want}': the changeset is incomplete or not the one the manifest describes`,
        ),
      );
    } else {
      callback();
    }
  }
}
