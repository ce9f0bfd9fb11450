import { createHash } from 'node:crypto';
import { PartitionedTableLayout, SchemaParts } from '@rookery/core';

/**
 * What an incremental needs to follow the partition layout (see logical-change-tracking): the
 * schema split into what belongs to each table and the rest, the tables a layout change touches,
 * and the DDL a changeset carries for them. Pure: the catalog and pg_dump's text come in.
 */

/** One TOC entry of a `pg_dump --schema-only --format=plain` script. */
export interface SchemaEntry {
  name: string;
  type: string;
  /** '-' for objects outside schemas. */
  schema: string;
  owner: string;
  /** The header line and the statements, without comments, blank lines and SET lines. */
  text: string;
  /** default_tablespace and default_table_access_method as pg_dump had set them for this entry. */
  settings: string[];
}

const HEADER = /^-- Name: (.*); Type: (.*); Schema: (.*); Owner: (.*)$/;
const SETTING_ENTRIES = new Set(['TABLE', 'INDEX', 'CONSTRAINT', 'MATERIALIZED VIEW']);
const ENTRY_SETTING = /^SET (default_tablespace|default_table_access_method) = (.*);$/;

/** Pure: a plain schema script's entries, in the script's order, with the settings in force for each. */
export function schemaEntries(script: string): SchemaEntry[] {
  const entries: SchemaEntry[] = [];
  const settings = new Map<string, string>();
  let current: { header: RegExpExecArray; lines: string[]; settings: string[] } | undefined;
  const close = () => {
    if (!current) return;
    const [line, name, type, schema, owner] = current.header;
    entries.push({ name, type, schema, owner, text: [line, ...current.lines].join('\n'), settings: current.settings });
    current = undefined;
  };
  for (const line of script.split('\n')) {
    const header = HEADER.exec(line);
    if (header) {
      close();
      // pg_dump sets these only when the next table or index needs another value: each entry of
      // those kinds carries the values in force, whatever entry came before it.
      const carries = SETTING_ENTRIES.has(header[2]);
      current = { header, lines: [], settings: carries ? [...settings].map(([name, value]) => `SET ${name} = ${value};`) : [] };
      continue;
    }
    const setting = ENTRY_SETTING.exec(line);
    if (setting) {
      settings.set(setting[1], setting[2]);
      continue;
    }
    if (!current || line.trim() === '' || line.startsWith('--') || line.startsWith('SET ') || /^\\(un)?restrict\b/.test(line)) continue;
    current.lines.push(line);
  }
  close();
  return entries;
}

/** A relation as the catalog names it: raw schema and name, and quoted as rookery names tables. */
export type CatalogRelation = {
  schema: string;
  name: string;
  /** The table: itself for a table, the indexed table for an index, the owner for a sequence. Quoted, schema-qualified. */
  table: string;
};

/** Entry types named after their table alone, or `table sub-object`. */
const TABLE_ENTRIES = new Set(['TABLE', 'TABLE ATTACH', 'FOREIGN TABLE', 'ROW SECURITY']);
const TABLE_SUBOBJECT_ENTRIES = new Set(['DEFAULT', 'CONSTRAINT', 'FK CONSTRAINT', 'TRIGGER', 'POLICY', 'RULE']);
const INDEX_ENTRIES = new Set(['INDEX', 'INDEX ATTACH']);
const SEQUENCE_ENTRIES = new Set(['SEQUENCE', 'SEQUENCE OWNED BY']);
const LABEL_ENTRIES = new Set(['ACL', 'COMMENT', 'SECURITY LABEL']);

/** The relations entries are attributed by: tables, indexes, and sequences a table owns (serial, identity). */
export interface SchemaCatalog {
  tables: readonly CatalogRelation[];
  indexes: readonly CatalogRelation[];
  ownedSequences: readonly CatalogRelation[];
}

/**
 * Pure: the table an entry belongs to (its definition, attachment, defaults, constraints,
 * indexes, triggers, policies, grants and comments, the sequences it owns), or null.
 */
export function entryTable(entry: Pick<SchemaEntry, 'name' | 'type' | 'schema'>, catalog: SchemaCatalog): string | null {
  const inSchema = catalog.tables.filter((table) => table.schema === entry.schema);
  const exact = (name: string, among: readonly CatalogRelation[]) => among.find((relation) => relation.name === name)?.table ?? null;
  // Names may hold spaces and dots: the longest table name the entry's name starts with wins.
  const prefixed = (name: string, separator: string) =>
    inSchema
      .filter((table) => name.startsWith(table.name + separator))
      .sort((a, b) => b.name.length - a.name.length)
      .at(0)?.table ?? null;
  if (TABLE_ENTRIES.has(entry.type)) return exact(entry.name, inSchema);
  if (INDEX_ENTRIES.has(entry.type))
    return exact(
      entry.name,
      catalog.indexes.filter((index) => index.schema === entry.schema),
    );
  const sequences = catalog.ownedSequences.filter((sequence) => sequence.schema === entry.schema);
  if (SEQUENCE_ENTRIES.has(entry.type)) return exact(entry.name, sequences);
  if (TABLE_SUBOBJECT_ENTRIES.has(entry.type)) return prefixed(entry.name, ' ');
  if (LABEL_ENTRIES.has(entry.type)) {
    if (entry.name.startsWith('TABLE ')) return exact(entry.name.slice('TABLE '.length), inSchema);
    if (entry.name.startsWith('FOREIGN TABLE ')) return exact(entry.name.slice('FOREIGN TABLE '.length), inSchema);
    if (entry.name.startsWith('SEQUENCE ')) return exact(entry.name.slice('SEQUENCE '.length), sequences);
    if (entry.name.startsWith('COLUMN ')) return prefixed(entry.name.slice('COLUMN '.length), '.');
  }
  return null;
}

/**
 * Pure: the schema as a hash per table (every entry that belongs to it) and one for the rest.
 * Entries are hashed as a set (sorted), so removing one table's entries moves nothing else.
 * rookery's own schema is left out: the tracking adds a trigger function for each new table,
 * which is not the user's schema changing (the triggers themselves are in their table's part).
 */
export function schemaParts(script: string, catalog: SchemaCatalog, trackingSchema: string): SchemaParts {
  const texts = new Map<string, string[]>();
  const rest: string[] = [];
  for (const entry of schemaEntries(script)) {
    if (entry.schema === trackingSchema) continue;
    const table = entryTable(entry, catalog);
    const text = [...entry.settings, entry.text].join('\n');
    if (table) texts.set(table, [...(texts.get(table) ?? []), text]);
    else rest.push(text);
  }
  const hash = (parts: string[]) =>
    createHash('sha256')
      .update([...parts].sort().join('\0'))
      .digest('hex');
  return {
    rest: hash(rest),
    tables: Object.fromEntries([...texts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([table, parts]) => [table, hash(parts)])),
  };
}

/** Where a partition sits: its parent and bound. */
type Placement = { parent: string; bound: string };

function placements(layout: readonly PartitionedTableLayout[]): Map<string, Placement> {
  return new Map(
    layout.flatMap((root) => root.partitions.map((partition) => [partition.table, { parent: root.table, bound: partition.bound }])),
  );
}

/** The partitioned tables' depth: 0 for a root that is no partition, 1 for its partitions, … */
function depthOf(table: string, layout: ReadonlyMap<string, Placement>): number {
  let depth = 0;
  for (let at = layout.get(table); at && depth <= layout.size; at = layout.get(at.parent)) depth++;
  return depth;
}

/**
 * What an incremental does about the layout between the parent's point and now:
 * - drop: tables of the parent's restored state to drop first (dropped partitions, and the tables
 *   recreated), deepest first;
 * - recreate: tables whose definition is taken from the source at the incremental's snapshot and
 *   whose rows are carried whole (created partitions, tables attached, detached or re-bound),
 *   shallowest first;
 * - refusals: every schema change that is not the layout's, each named.
 */
export interface LayoutPlan {
  /** The layout changes, named for the operator and the manifest. */
  changes: string[];
  drop: string[];
  recreate: string[];
  refusals: string[];
}

export function planLayoutChange(
  parent: { partitioned: readonly PartitionedTableLayout[]; parts: SchemaParts },
  current: { partitioned: readonly PartitionedTableLayout[]; parts: SchemaParts },
): LayoutPlan {
  const was = placements(parent.partitioned);
  const is = placements(current.partitioned);
  const existedBefore = (table: string) => table in parent.parts.tables;
  const existsNow = (table: string) => table in current.parts.tables;
  const roots = new Set([...parent.partitioned, ...current.partitioned].map((root) => root.table));
  const changes: string[] = [];
  const refusals: string[] = [];
  const moved = new Set<string>();
  for (const [table, now] of is) {
    const then = was.get(table);
    if (then && then.parent === now.parent && then.bound === now.bound) continue;
    moved.add(table);
    if (then) changes.push(`partition ${table} moved from ${then.parent} ${then.bound} to ${now.parent} ${now.bound}`);
    else if (existedBefore(table)) changes.push(`${table} was attached to ${now.parent}`);
    else changes.push(`partition ${table} of ${now.parent} was created`);
  }
  for (const [table, then] of was) {
    if (is.has(table)) continue;
    moved.add(table);
    changes.push(existsNow(table) ? `${table} was detached from ${then.parent}` : `partition ${table} of ${then.parent} was dropped`);
  }
  for (const table of moved) {
    // Recreating a partitioned table would drop its partitions with it in the restored database.
    if (roots.has(table) && existedBefore(table) && existsNow(table))
      refusals.push(`partitioned table ${table} was attached or detached with its own partitions`);
  }
  for (const table of new Set([...Object.keys(parent.parts.tables), ...Object.keys(current.parts.tables)])) {
    if (moved.has(table)) continue;
    if (!existedBefore(table)) refusals.push(`table ${table} was created`);
    else if (!existsNow(table)) refusals.push(`table ${table} was dropped`);
    else if (parent.parts.tables[table] !== current.parts.tables[table]) refusals.push(`the definition of ${table} changed`);
  }
  if (parent.parts.rest !== current.parts.rest) {
    refusals.push('a definition outside the tables changed (a schema, type, function, sequence, view, extension …)');
  }
  const before = (table: string) => depthOf(table, was);
  const after = (table: string) => depthOf(table, is);
  return {
    changes: changes.sort(),
    drop: [...moved].filter(existedBefore).sort((a, b) => before(b) - before(a) || (a < b ? -1 : 1)),
    recreate: [...moved].filter(existsNow).sort((a, b) => after(a) - after(b) || (a < b ? -1 : 1)),
    refusals: refusals.sort(),
  };
}

/**
 * Pure: one table's `pg_dump --schema-only --table` script as the two phases a changeset runs:
 * `define` (the table, its defaults, constraints, indexes, triggers, grants: a table of its own)
 * before the rows are copied in, `attach` (its partition attachment, then its indexes') after,
 * so the bound is checked against the rows as they are at the incremental's snapshot (the
 * partition's and the default partition's), never against the parent's.
 */
export function tableScriptPhases(script: string): { define: string[]; attach: string[] } {
  const define: string[] = [];
  const attach: string[] = [];
  const entries = schemaEntries(script);
  const statements = (entry: SchemaEntry) => [...entry.settings, entry.text.split('\n').slice(1).join('\n')].join('\n');
  for (const entry of entries) {
    if (entry.type === 'TABLE ATTACH') attach.unshift(statements(entry));
    else if (entry.type === 'INDEX ATTACH') attach.push(statements(entry));
    else define.push(statements(entry));
  }
  return { define, attach };
}
