import { createHash } from 'node:crypto';
import {
  ChangeTrackingPoint,
  IncrementalChainError,
  PartitionedTableLayout,
  PgSnapshot,
  SchemaParts,
  parsePgSnapshot,
  snapshotCovers,
} from '@rookery/core';
import { PgSession, PgSqlClient, definitionText } from '@rookery/postgres';
import { CatalogRelation, LayoutPlan, SchemaCatalog, planLayoutChange, schemaParts } from './logical-partition-layout';

/**
 * rookery's change tracking on a logical tier's database (content), what makes incrementals exact.
 *
 * Schema `rookery` holds `change_log (xid xid8, relid oid, key text[])`, fed by triggers that run
 * in the writing transaction: a row trigger per table with a primary key logs the key of every
 * inserted, updated (old and, if it changed, new key) and deleted row; a statement trigger logs
 * a TRUNCATE, and any change to a table without a primary key, as a NULL key ("the whole table").
 * Each entry carries the writer's top-level transaction id, so an incremental takes exactly the
 * entries of transactions visible in its own snapshot (MVCC on the log) and not visible in its
 * parent's (pg_visible_in_snapshot on the parent's recorded pg_snapshot): a transaction running
 * when the parent read the database, committed later, is in the incremental even though its id is
 * below the parent's xmax; one the parent saw is never carried twice.
 *
 * Triggers are ENABLE ALWAYS, so writers running with session_replication_role = replica (a
 * logical replication subscriber) are tracked too. Only a changeset being applied skips them
 * (it sets rookery.applying_changeset), or a restored database would log its own restore.
 */
export const TRACKING_SCHEMA = 'rookery';

/** Tables whose rows a logical dump of a tracked database leaves out (log and state are per database). */
export const TRACKING_TABLE_DATA = ['"rookery"."change_log"', '"rookery"."change_tracking"'];

/** A table rookery tracks, as the catalog describes it at one snapshot. */
export interface TrackedTable {
  oid: string;
  /** quote_ident(schema).quote_ident(name) */
  name: string;
  /** Primary key columns (quoted) and their types, empty for a table without one. */
  keyColumns: string[];
  keyTypes: string[];
  /** Columns COPY can write (not dropped, not generated), quoted, in order. */
  columns: string[];
}

/** The installation's state row. */
type TrackingState = {
  installation: string;
  prunedThrough: string | null;
  prunedBy: string | null;
};

const ROWS_TRIGGER = 'rookery_capture_rows';
const TABLE_TRIGGER = 'rookery_capture_table';
/** pg_trigger.tgtype bits: ROW 1, INSERT 4, DELETE 8, UPDATE 16, TRUNCATE 32 (AFTER is 0). */
const ROW_IUD = 1 + 4 + 8 + 16;
const STATEMENT_TRUNCATE = 32;
const STATEMENT_IUDT = 4 + 8 + 16 + 32;

const BOOTSTRAP_SQL = `
  create schema if not exists rookery;
  create table if not exists rookery.change_log (
    xid xid8 not null default pg_current_xact_id(),
    relid oid not null,
    key text[]
  );
  create index if not exists change_log_xid_idx on rookery.change_log (xid);
  create table if not exists rookery.change_tracking (
    singleton boolean primary key default true check (singleton),
    installation text not null,
    installed_at timestamptz not null default now(),
    pruned_through pg_snapshot,
    pruned_by text
  );
  insert into rookery.change_tracking (installation) values (gen_random_uuid()::text) on conflict do nothing;
  create or replace function rookery.capture_table() returns trigger language plpgsql security definer
    set search_path = pg_catalog as $capture$
  begin
    if current_setting('rookery.applying_changeset', true) = 'on' then return null; end if;
    insert into rookery.change_log (relid, key) values (tg_relid, null);
    return null;
  end $capture$;`;

/**
 * Partitioned tables: a partitioned table (relkind 'p') has no storage, its rows are in its leaf
 * partitions (relkind 'r', relispartition), which are tracked like any ordinary table. Their row
 * triggers see every row routed to them, and an UPDATE that moves a row to another partition
 * fires DELETE on the old leaf and INSERT on the new one, so each leaf's log is exact on its own.
 * The roots carry no triggers and no rows in a changeset.
 *
 * Layout changes are followed. Each point records the layout (which table is attached where, with
 * which bound) and the schema as one hash per table plus one for every other definition
 * (logical-partition-layout). When the only tables whose definition changed since the parent are
 * partitions attached, detached, created, dropped or re-bound, the incremental:
 * - first installs the triggers on the tables that have none (a new leaf), as the full does, in a
 *   transaction committed before its snapshot, so every change after the snapshot is logged;
 * - carries, ahead of the rows, DROP TABLE for each dropped partition and each table it
 *   recreates, then each created, attached, detached or re-bound table's own definition at the
 *   snapshot (pg_dump --schema-only --table: columns, defaults, constraints, indexes, triggers,
 *   grants, owned sequences, the source's exactly) as a table of its own; its rows whole; and only
 *   after the rows the partition and index attachments, so the bounds are checked against the
 *   rows at the snapshot (the partition's and the default partition's), never the parent's;
 * - records the new layout: the next incremental tracks the new leaves by key.
 * Recreated rather than replaying ATTACH/DETACH on the restored table: what the source's ATTACH
 * did besides attaching (indexes created to match the root's, foreign keys and CHECKs cloned)
 * and what DETACH left behind depend on the table's definition at that moment; its definition
 * at the snapshot is exact by construction, and restoring it needs no knowledge of the steps.
 * Rows whole: a created table had no trigger before this incremental; an attached or detached one
 * kept its own (they are not clones of the root's), but once recreated it needs all its rows.
 * Refused, naming it: any other schema change; a table to recreate that something else depends
 * on (a view, another table's foreign key: the restore could not drop it); a partitioned table
 * attached or detached with its partitions.
 *
 * Cost to the source: the same as an ordinary table's, one row trigger per leaf, one change_log
 * row per changed key, two for a row moved between partitions; for a new leaf, the full's brief
 * SHARE ROW EXCLUSIVE lock to create its trigger, taken by the incremental that first sees it;
 * one pg_dump --table per recreated table; a recreated table's rows read whole once (an attached
 * table that brings a year of rows costs that year once). Logical decoding would follow the rows
 * without triggers but holds a replication slot (WAL kept on the source until the next
 * incremental, wal_level = logical, which needs a restart) and decodes no DDL in PostgreSQL 15:
 * the layout would still come from the catalog as here, so triggers were kept.
 *
 * What the tracking cannot follow (a foreign table attached as a partition: its rows are not in
 * this database, nor in a dump) is listed with the reason, for the manifest and the backup's log;
 * it never fails the full.
 */
export interface TrackingCoverage {
  tables: TrackedTable[];
  partitioned: PartitionedTable[];
  untracked: { table: string; reason: string }[];
}

/** The tables of the database rookery tracks (every table with storage outside the system and rookery schemas). */
export async function listTrackedTables(session: PgSession): Promise<TrackedTable[]> {
  return (await readTrackingCoverage(session)).tables;
}

/** The tracked tables, the partition layout, and what the tracking cannot follow, at one snapshot. */
export async function readTrackingCoverage(session: PgSession): Promise<TrackingCoverage> {
  const rows = await session.query<CatalogTable>(
    `select c.oid::text as oid, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name, c.relkind::text as relkind,
            (select quote_ident(pn.nspname) || '.' || quote_ident(p.relname) from pg_inherits h
               join pg_class p on p.oid = h.inhparent join pg_namespace pn on pn.oid = p.relnamespace
               where c.relispartition and h.inhrelid = c.oid) as parent,
            case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end as bound,
            (select array_agg(quote_ident(a.attname) order by k.ord) from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) as "keyColumns",
            (select array_agg(format_type(a.atttypid, a.atttypmod) order by k.ord) from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
               join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum) as "keyTypes",
            (select array_agg(quote_ident(a.attname) order by a.attnum) from pg_attribute a
               where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     left join pg_index i on i.indrelid = c.oid and i.indisprimary
     where (c.relkind in ('r', 'p') or (c.relkind = 'f' and c.relispartition))
       and n.nspname not in ('pg_catalog', 'information_schema', '${TRACKING_SCHEMA}')
       and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
     order by 2`,
  );
  return coverageOf(rows);
}

/** A partitioned table and its direct partitions (a partition may itself be partitioned). */
export type PartitionedTable = PartitionedTableLayout;

/** A table as readTrackingCoverage reads it from the catalog. */
type CatalogTable = {
  oid: string;
  name: string;
  /** r: a table or a leaf partition, p: a partitioned table, f: a foreign table attached as a partition. */
  relkind: string;
  /** The partitioned table it is a partition of, quoted. */
  parent: string | null;
  bound: string | null;
  keyColumns: string[] | null;
  keyTypes: string[] | null;
  columns: string[] | null;
};

/** Pure: the catalog rows of readTrackingCoverage as what is tracked, partitioned, and not followed. */
export function coverageOf(rows: readonly CatalogTable[]): TrackingCoverage {
  const partitioned = rows
    .filter((row) => row.relkind === 'p')
    .map((root) => ({
      table: root.name,
      partitions: rows.filter((row) => row.parent === root.name).map((row) => ({ table: row.name, bound: row.bound ?? '' })),
    }));
  return {
    tables: rows
      .filter((row) => row.relkind === 'r')
      .map((row) => ({
        oid: row.oid,
        name: row.name,
        keyColumns: row.keyColumns ?? [],
        keyTypes: row.keyTypes ?? [],
        columns: row.columns ?? [],
      })),
    partitioned,
    untracked: rows
      .filter((row) => row.relkind === 'f')
      .map((row) => ({
        table: row.name,
        reason: `a foreign table attached to ${row.parent}: its rows are not in this database, backups carry none of them`,
      })),
  };
}

/**
 * Installs or completes the change tracking before a full backup reads the database, in one
 * transaction of its own that commits before the full's snapshot is taken. Creating a trigger
 * waits for the table's running writers (lock conflict), so every change after this commit is
 * logged, and every change before it is in the full. Existing, correct triggers are left alone:
 * no table lock at all on the daily full once installed. An incremental (`newTablesOnly`) only
 * completes an existing installation with the tables that have no trigger yet (a new partition):
 * nothing is written when there is none.
 */
export async function ensureChangeTracking(sql: PgSqlClient, url: string, options: { newTablesOnly?: boolean } = {}): Promise<void> {
  await sql.withSession(url, async (session) => {
    await session.query('begin');
    try {
      await session.query(`set local lock_timeout = '60s'`);
      if (options.newTablesOnly) {
        const [{ installed }] = await session.query<{ installed: boolean }>(
          `select to_regclass('rookery.change_tracking') is not null as installed`,
        );
        // Not installed: the incremental's own checks say so; it installs nothing.
        if (!installed) {
          await session.query('rollback');
          return;
        }
      } else {
        await session.query(BOOTSTRAP_SQL);
      }
      const all = await listTrackedTables(session);
      const existing = await session.query<{ relid: string; name: string; tgtype: number; tgenabled: string; function: string }>(
        `select t.tgrelid::text as relid, t.tgname as name, t.tgtype::int as tgtype, t.tgenabled::text as tgenabled,
                p.proname as function
         from pg_trigger t join pg_proc p on p.oid = t.tgfoid
         where t.tgname in ('${ROWS_TRIGGER}', '${TABLE_TRIGGER}')`,
      );
      const tables = options.newTablesOnly
        ? all.filter(
            (table) => !existing.some((row) => row.relid === table.oid && (row.name === ROWS_TRIGGER || row.name === TABLE_TRIGGER)),
          )
        : all;
      for (const table of tables) {
        const has = (name: string, tgtype: number, fn: string) =>
          existing.some(
            (row) => row.relid === table.oid && row.name === name && row.tgtype === tgtype && row.tgenabled === 'A' && row.function === fn,
          );
        const withKey = table.keyColumns.length > 0;
        if (withKey) {
          const fn = captureFunctionName(table);
          await session.query(captureFunctionSql(table, fn));
          if (!has(ROWS_TRIGGER, ROW_IUD, fn))
            await createTrigger(session, table, ROWS_TRIGGER, 'insert or update or delete', 'row', `rookery.${fn}`);
        } else if (existing.some((row) => row.relid === table.oid && row.name === ROWS_TRIGGER)) {
          await session.query(`drop trigger ${ROWS_TRIGGER} on ${table.name}`);
        }
        const events = withKey ? 'truncate' : 'insert or update or delete or truncate';
        if (!has(TABLE_TRIGGER, withKey ? STATEMENT_TRUNCATE : STATEMENT_IUDT, 'capture_table')) {
          await createTrigger(session, table, TABLE_TRIGGER, events, 'statement', 'rookery.capture_table');
        }
      }
      await session.query('commit');
    } catch (error) {
      await session.query('rollback').catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Where the database stands, read inside the backup's snapshot transaction: the snapshot, the
 * installation, a fingerprint of every definition (pg_dump --schema-only at that snapshot, the
 * script with its entry headers), the same split by table, and the catalog that split used.
 */
export async function readTrackingPoint(
  session: PgSession,
  schemaScript: () => Promise<string>,
): Promise<ChangeTrackingPoint & { state: TrackingState; catalog: SchemaCatalog }> {
  const [current] = await session.query<{ snapshot: string }>('select pg_current_snapshot()::text as snapshot');
  // Probed first: a failed query would abort the snapshot's transaction.
  const [{ installed }] = await session.query<{ installed: boolean }>(
    `select to_regclass('rookery.change_tracking') is not null as installed`,
  );
  const [state] = installed
    ? await session.query<TrackingState>(
        `select installation, pruned_through::text as "prunedThrough", pruned_by as "prunedBy" from rookery.change_tracking`,
      )
    : [];
  if (!state) {
    throw new IncrementalChainError('rookery change tracking is not installed on this database', {
      hint: 'a full backup of a tier with policy.logical.incremental installs it: rookery backup --type full',
    });
  }
  const script = await schemaScript();
  const fingerprint = createHash('sha256').update(definitionText(script)).digest('hex');
  const coverage = await readTrackingCoverage(session);
  const catalog = await readSchemaCatalog(session);
  return {
    snapshot: current.snapshot,
    installation: state.installation,
    schemaFingerprint: fingerprint,
    schemaParts: schemaParts(script, catalog, TRACKING_SCHEMA),
    catalog,
    tracked: coverage.tables.map((table) => table.name),
    partitioned: coverage.partitioned,
    untracked: coverage.untracked,
    state,
  };
}

/** The point as a manifest records it (without the installation's state row). */
export function recordedPoint(point: ChangeTrackingPoint & { state?: TrackingState }): ChangeTrackingPoint {
  const { snapshot, installation, schemaFingerprint, schemaParts: parts, tracked, partitioned, untracked } = point;
  return { snapshot, installation, schemaFingerprint, ...(parts ? { schemaParts: parts } : {}), tracked, partitioned, untracked };
}

/** Tables, their indexes and the sequences they own, by raw and quoted name, at the session's snapshot. */
export async function readSchemaCatalog(session: PgSession): Promise<SchemaCatalog> {
  const userRelations = `n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'`;
  const tables = await session.query<CatalogRelation>(
    `select n.nspname as schema, c.relname as name, quote_ident(n.nspname) || '.' || quote_ident(c.relname) as table
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p', 'f') and ${userRelations} order by 3`,
  );
  const indexes = await session.query<CatalogRelation>(
    `select n.nspname as schema, ic.relname as name, quote_ident(n.nspname) || '.' || quote_ident(tc.relname) as table
     from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class tc on tc.oid = i.indrelid
     join pg_namespace n on n.oid = tc.relnamespace
     where ${userRelations} order by 1, 2`,
  );
  const ownedSequences = await session.query<CatalogRelation>(
    `select n.nspname as schema, s.relname as name, quote_ident(tn.nspname) || '.' || quote_ident(t.relname) as table
     from pg_depend d join pg_class s on s.oid = d.objid and s.relkind = 'S' join pg_namespace n on n.oid = s.relnamespace
     join pg_class t on t.oid = d.refobjid join pg_namespace tn on tn.oid = t.relnamespace
     where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
       and t.relkind in ('r', 'p', 'f') and ${userRelations} order by 1, 2`,
  );
  return { tables, indexes, ownedSequences };
}

/**
 * What stops a layout change from being followed, read at the incremental's snapshot: a table to
 * recreate (or a sequence it owns) that another object depends on (the restore's DROP TABLE would
 * fail: a view, another table's foreign key or column default), or a table to carry whole whose triggers are not in place at the snapshot
 * (created after the incremental installed them: its next changes would go unlogged).
 */
export async function layoutObstacles(
  session: PgSession,
  plan: Pick<LayoutPlan, 'drop' | 'recreate'>,
  tables: readonly TrackedTable[],
): Promise<string[]> {
  const recreated = new Set(plan.recreate);
  const kept = plan.drop.filter((table) => recreated.has(table));
  const dependents = kept.length
    ? await session.query<{ table: string; dependent: string }>(
        `with kept as (select to_regclass(name) as relid from unnest($1::text[]) name),
              -- What DROP TABLE takes with it: the table and the sequences it owns (serial, identity).
              dropped as (
                select relid, relid as owner from kept
                union all
                select d.objid, d.refobjid from pg_depend d join kept k on k.relid = d.refobjid join pg_class s on s.oid = d.objid
                where d.classid = 'pg_class'::regclass and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i') and s.relkind = 'S')
         select distinct quote_ident(n.nspname) || '.' || quote_ident(c.relname) as table,
                pg_describe_object(d.classid, d.objid, d.objsubid) as dependent
         from dropped x join pg_depend d on d.refclassid = 'pg_class'::regclass and d.refobjid = x.relid and d.deptype = 'n'
         join pg_class c on c.oid = x.relid join pg_namespace n on n.oid = c.relnamespace
         where not (d.classid = 'pg_constraint'::regclass
                    and exists (select 1 from pg_constraint k where k.oid = d.objid and k.conrelid = x.owner))
           and not (d.classid = 'pg_attrdef'::regclass
                    and exists (select 1 from pg_attrdef a where a.oid = d.objid and a.adrelid = x.owner))
         order by 1, 2`,
        [kept],
      )
    : [];
  const carried = tables.filter((table) => recreated.has(table.name));
  const triggered = carried.length
    ? await session.query<{ relid: string }>(
        `select distinct tgrelid::text as relid from pg_trigger where tgname in ('${ROWS_TRIGGER}', '${TABLE_TRIGGER}') and tgrelid = any ($1::oid[])`,
        [carried.map((table) => table.oid)],
      )
    : [];
  return [
    ...dependents.map((row) => `${row.dependent} depends on ${row.table}, which the incremental would recreate`),
    ...carried
      .filter((table) => !triggered.some((row) => row.relid === table.oid))
      .map((table) => `${table.name} appeared after the incremental installed its tracking (run the incremental again)`),
  ];
}

/** What the backup's log says about a point: each table the next incremental cannot follow. */
export function coverageWarnings(point: ChangeTrackingPoint): string[] {
  return (point.untracked ?? []).map(
    (entry) => `change tracking does not follow ${entry.table} (${entry.reason}); incrementals leave it as the full has it`,
  );
}

/**
 * Whether an incremental can chain to `parent` at `current`, and what it must do about the
 * partition layout: same installation (nothing went unlogged), the same schema or one whose only
 * changes are the layout's (a changeset carries rows, and the layout's DDL), and the log still
 * holds every change the parent did not see (pruning only removes what the parent's snapshot
 * covers). A parent recorded without schema parts (an older rookery) needs the very same schema.
 */
export function checkChainable(
  parent: { id: string; point: ChangeTrackingPoint | undefined },
  current: ChangeTrackingPoint & { state: TrackingState },
  database: string,
  tier: string,
): LayoutPlan {
  const full = `take a full backup: rookery backup --tier ${tier} --type full`;
  if (!parent.point) {
    throw new IncrementalChainError(`backup '${parent.id}' was taken without change tracking; an incremental cannot chain to it`, {
      hint: full,
    });
  }
  if (parent.point.installation !== current.installation) {
    throw new IncrementalChainError(
      `the change tracking on database '${database}' was reinstalled since backup '${parent.id}': changes in between may not be logged`,
      { hint: full },
    );
  }
  let plan: LayoutPlan = { changes: [], drop: [], recreate: [], refusals: [] };
  if (parent.point.schemaFingerprint !== current.schemaFingerprint) {
    const parts = parent.point.schemaParts && current.schemaParts;
    plan = parts
      ? planLayoutChange(
          { partitioned: parent.point.partitioned ?? [], parts: parent.point.schemaParts as SchemaParts },
          { partitioned: current.partitioned ?? [], parts: current.schemaParts as SchemaParts },
        )
      : { ...plan, refusals: ['a table, column, index, constraint, trigger or other definition'] };
    if (plan.refusals.length) {
      throw new IncrementalChainError(
        `the schema of database '${database}' changed since backup '${parent.id}' (${plan.refusals.join('; ')}); an incremental carries row changes and partition layout changes only`,
        { hint: full },
      );
    }
  }
  if (
    current.state.prunedThrough &&
    !snapshotCovers(parsePgSnapshot(parent.point.snapshot), parsePgSnapshot(current.state.prunedThrough))
  ) {
    throw new IncrementalChainError(
      `the change log of database '${database}' was pruned through backup '${current.state.prunedBy}', past backup '${parent.id}' the incremental would chain to`,
      { hint: `backup '${current.state.prunedBy}' may have been removed from the repository; ${full}` },
    );
  }
  return plan;
}

/**
 * After a backup committed: entries its snapshot saw are no longer needed by any incremental
 * (they all chain to this backup or a later one). Failure is harmless: the log is only longer.
 */
export async function pruneChangeLog(sql: PgSqlClient, url: string, backupId: string, point: ChangeTrackingPoint): Promise<void> {
  const snapshot: PgSnapshot = parsePgSnapshot(point.snapshot);
  await sql.withSession(url, async (session) => {
    await session.query('begin');
    await session.query(`delete from rookery.change_log where xid < $1::xid8 and pg_visible_in_snapshot(xid, $2::pg_snapshot)`, [
      snapshot.xmax.toString(),
      point.snapshot,
    ]);
    await session.query(`update rookery.change_tracking set pruned_through = $1::pg_snapshot, pruned_by = $2 where installation = $3`, [
      point.snapshot,
      backupId,
      point.installation,
    ]);
    await session.query('commit');
  });
}

/** The log's entries an incremental carries: by tables, changed keys counted, whole-table marks. */
export async function summarizeChanges(session: PgSession, parentSnapshot: string): Promise<Map<string, { keys: number; whole: boolean }>> {
  const rows = await session.query<{ relid: string; keys: string; whole: boolean }>(
    `select relid::text as relid, count(distinct key) as keys, bool_or(key is null) as whole
     from rookery.change_log where ${changedSince('$1')} group by relid`,
    [parentSnapshot],
  );
  return new Map(rows.map((row) => [row.relid, { keys: Number(row.keys), whole: row.whole }]));
}

/** SQL condition on change_log: written by a transaction the parent's snapshot (a parameter or literal) did not see. */
export function changedSince(parentSnapshot: string): string {
  return `xid >= pg_snapshot_xmin(${parentSnapshot}::pg_snapshot) and not pg_visible_in_snapshot(xid, ${parentSnapshot}::pg_snapshot)`;
}

/**
 * The tracking a recreated table needs in a restored database before its own definition (whose
 * triggers call it) is applied: its row trigger function, as ensureChangeTracking creates it.
 */
export function captureFunctionDefinition(table: TrackedTable): string | null {
  return table.keyColumns.length ? captureFunctionSql(table, captureFunctionName(table)) : null;
}

function captureFunctionName(table: TrackedTable): string {
  return `capture_${createHash('sha256').update(table.name).digest('hex').slice(0, 16)}`;
}

/** The row trigger function of one table, its primary key columns written in. */
function captureFunctionSql(table: TrackedTable, fn: string): string {
  const keyOf = (row: 'old' | 'new') => `array[${table.keyColumns.map((column) => `${row}.${column}::text`).join(', ')}]`;
  const rowOf = (row: 'old' | 'new') => `row(${table.keyColumns.map((column) => `${row}.${column}`).join(', ')})`;
  return `create or replace function rookery.${fn}() returns trigger language plpgsql security definer
    set search_path = pg_catalog as $capture$
  begin
    if current_setting('rookery.applying_changeset', true) = 'on' then return null; end if;
    if tg_op <> 'INSERT' then
      insert into rookery.change_log (relid, key) values (tg_relid, ${keyOf('old')});
    end if;
    if tg_op = 'INSERT' or (tg_op = 'UPDATE' and ${rowOf('new')} is distinct from ${rowOf('old')}) then
      insert into rookery.change_log (relid, key) values (tg_relid, ${keyOf('new')});
    end if;
    return null;
  end $capture$`;
}

async function createTrigger(
  session: PgSession,
  table: TrackedTable,
  name: string,
  events: string,
  level: 'row' | 'statement',
  fn: string,
): Promise<void> {
  await session.query(`create or replace trigger ${name} after ${events} on ${table.name} for each ${level} execute function ${fn}()`);
  await session.query(`alter table ${table.name} enable always trigger ${name}`);
}
