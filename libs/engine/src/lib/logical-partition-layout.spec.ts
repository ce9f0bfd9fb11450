import { SchemaParts } from '@rookery/core';
import { SchemaCatalog, entryTable, planLayoutChange, schemaEntries, schemaParts, tableScriptPhases } from './logical-partition-layout';

/** A pg_dump --schema-only --format=plain script as PostgreSQL 15 prints one (shortened). */
const SCRIPT = `--
-- PostgreSQL database dump
--

\\restrict Kc1PZ0

-- Dumped from database version 15.20

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: rookery; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA rookery;

--
-- Name: capture_0123; Type: FUNCTION; Schema: rookery; Owner: postgres
--

CREATE FUNCTION rookery.capture_0123() RETURNS trigger
    LANGUAGE plpgsql;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: events; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.events (
    id bigint NOT NULL,
    created_at date NOT NULL
)
PARTITION BY RANGE (created_at);

--
-- Name: events_2026_01; Type: TABLE; Schema: public; Owner: postgres
--

CREATE TABLE public.events_2026_01 (
    id bigint DEFAULT nextval('public.events_id_seq'::regclass) NOT NULL,
    created_at date NOT NULL
);

--
-- Name: events_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres
--

CREATE SEQUENCE public.events_id_seq;

--
-- Name: events_2026_01; Type: TABLE ATTACH; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2026_01 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');

--
-- Name: events_2026_01 events_2026_01_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres
--

ALTER TABLE ONLY public.events_2026_01
    ADD CONSTRAINT events_2026_01_pkey PRIMARY KEY (id, created_at);

--
-- Name: events_2026_01_pkey; Type: INDEX ATTACH; Schema: public; Owner: postgres
--

ALTER INDEX public.events_pkey ATTACH PARTITION public.events_2026_01_pkey;

--
-- Name: events_2026_01 rookery_capture_rows; Type: TRIGGER; Schema: public; Owner: postgres
--

CREATE TRIGGER rookery_capture_rows AFTER INSERT OR DELETE OR UPDATE ON public.events_2026_01 FOR EACH ROW EXECUTE FUNCTION rookery.capture_0123();

ALTER TABLE public.events_2026_01 ENABLE ALWAYS TRIGGER rookery_capture_rows;

--
-- Name: TABLE events_2026_01; Type: ACL; Schema: public; Owner: postgres
--

GRANT SELECT ON TABLE public.events_2026_01 TO reader;

--
-- PostgreSQL database dump complete
--

\\unrestrict Kc1PZ0
`;

const CATALOG: SchemaCatalog = {
  tables: [
    { schema: 'public', name: 'events', table: 'public.events' },
    { schema: 'public', name: 'events_2026_01', table: 'public.events_2026_01' },
    { schema: 'public', name: 'my table', table: 'public."my table"' },
    { schema: 'public', name: 'my table two', table: 'public."my table two"' },
  ],
  indexes: [
    { schema: 'public', name: 'events_pkey', table: 'public.events' },
    { schema: 'public', name: 'events_2026_01_pkey', table: 'public.events_2026_01' },
  ],
  ownedSequences: [{ schema: 'public', name: 'notes_id_seq', table: 'public.notes' }],
};

describe('schemaEntries', () => {
  it('splits the script at the entry headers, leaving the preamble, comments, SET and \\restrict lines out', () => {
    const entries = schemaEntries(SCRIPT);
    expect(entries.map((entry) => `${entry.type} ${entry.name}`)).toEqual([
      'SCHEMA rookery',
      'FUNCTION capture_0123',
      'TABLE events',
      'TABLE events_2026_01',
      'SEQUENCE events_id_seq',
      'TABLE ATTACH events_2026_01',
      'CONSTRAINT events_2026_01 events_2026_01_pkey',
      'INDEX ATTACH events_2026_01_pkey',
      'TRIGGER events_2026_01 rookery_capture_rows',
      'ACL TABLE events_2026_01',
    ]);
    expect(entries[3].text).toBe(`-- Name: events_2026_01; Type: TABLE; Schema: public; Owner: postgres
CREATE TABLE public.events_2026_01 (
    id bigint DEFAULT nextval('public.events_id_seq'::regclass) NOT NULL,
    created_at date NOT NULL
);`);
    expect(entries.some((entry) => /restrict|SET statement_timeout|Dumped/.test(entry.text))).toBe(false);
  });

  it('gives each table, index and constraint the tablespace and access method in force, whatever entry set them', () => {
    const entries = schemaEntries(SCRIPT);
    const settings = ["SET default_tablespace = '';", 'SET default_table_access_method = heap;'];
    expect(entries.find((entry) => entry.type === 'TABLE' && entry.name === 'events_2026_01')?.settings).toEqual(settings);
    expect(entries.find((entry) => entry.type === 'CONSTRAINT')?.settings).toEqual(settings);
    expect(entries.find((entry) => entry.type === 'SEQUENCE')?.settings).toEqual([]);
    expect(entries.find((entry) => entry.type === 'FUNCTION')?.settings).toEqual([]);
  });
});

describe('entryTable', () => {
  it.each([
    ['TABLE', 'events_2026_01', 'public.events_2026_01'],
    ['TABLE ATTACH', 'events_2026_01', 'public.events_2026_01'],
    ['CONSTRAINT', 'events_2026_01 events_2026_01_pkey', 'public.events_2026_01'],
    ['FK CONSTRAINT', 'my table two fk', 'public."my table two"'],
    ['TRIGGER', 'my table t', 'public."my table"'],
    ['DEFAULT', 'events_2026_01 id', 'public.events_2026_01'],
    ['INDEX', 'events_pkey', 'public.events'],
    ['INDEX ATTACH', 'events_2026_01_pkey', 'public.events_2026_01'],
    ['ACL', 'TABLE events_2026_01', 'public.events_2026_01'],
    ['COMMENT', 'COLUMN my table two.note', 'public."my table two"'],
    ['SEQUENCE', 'notes_id_seq', 'public.notes'],
    ['SEQUENCE OWNED BY', 'notes_id_seq', 'public.notes'],
    ['SEQUENCE', 'events_id_seq', null],
    ['FUNCTION', 'capture_0123', null],
    ['VIEW', 'events', null],
  ])('%s %s belongs to %s', (type, name, table) => {
    expect(entryTable({ type, name, schema: 'public' }, CATALOG)).toBe(table);
  });

  it('matches names in the entry schema only', () => {
    expect(entryTable({ type: 'TABLE', name: 'events', schema: 'archive' }, CATALOG)).toBeNull();
  });
});

describe('schemaParts', () => {
  const parts = schemaParts(SCRIPT, CATALOG, 'rookery');

  it('hashes each table with its entries and the rest apart, leaving the tracking schema out', () => {
    expect(Object.keys(parts.tables)).toEqual(['public.events', 'public.events_2026_01']);
    const withoutTracking = SCRIPT.replace(
      'CREATE FUNCTION rookery.capture_0123() RETURNS trigger',
      'CREATE FUNCTION rookery.capture_4567()',
    );
    expect(schemaParts(withoutTracking, CATALOG, 'rookery')).toEqual(parts);
  });

  it("changes only a table's hash when its entries change, only the rest's when another definition does", () => {
    const detached = schemaParts(SCRIPT.replace(/^ALTER TABLE ONLY public\.events ATTACH PARTITION .*$/m, ''), CATALOG, 'rookery');
    expect(detached.rest).toBe(parts.rest);
    expect(detached.tables['public.events']).toBe(parts.tables['public.events']);
    expect(detached.tables['public.events_2026_01']).not.toBe(parts.tables['public.events_2026_01']);
    const sequence = schemaParts(
      SCRIPT.replace('CREATE SEQUENCE public.events_id_seq;', 'CREATE SEQUENCE public.events_id_seq CACHE 5;'),
      CATALOG,
      'rookery',
    );
    expect(sequence.rest).not.toBe(parts.rest);
    expect(sequence.tables).toEqual(parts.tables);
  });

  it('does not depend on the order of the entries', () => {
    const blocks = SCRIPT.split('\n--\n-- Name: ');
    const reordered = [blocks[0], ...blocks.slice(1).reverse()].join('\n--\n-- Name: ');
    expect(schemaParts(reordered, CATALOG, 'rookery').rest).toBe(parts.rest);
  });
});

describe('planLayoutChange', () => {
  const jan = { table: 'public.e_01', bound: 'FOR VALUES IN (1)' };
  const feb = { table: 'public.e_02', bound: 'FOR VALUES IN (2)' };
  const layout = (...partitions: (typeof jan)[]) => [{ table: 'public.e', partitions }];
  const parts = (tables: Record<string, string>, rest = 'rest'): SchemaParts => ({ rest, tables });
  const plain = { 'public.e': 'e', 'public.other': 'other' };

  it.each([
    ['nothing', layout(jan), { ...plain, 'public.e_01': '1' }, layout(jan), { ...plain, 'public.e_01': '1' }, [], [], []],
    [
      'a partition created',
      layout(jan),
      { ...plain, 'public.e_01': '1' },
      layout(jan, feb),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2' },
      ['partition public.e_02 of public.e was created'],
      [],
      ['public.e_02'],
    ],
    [
      'a table attached',
      layout(jan),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2' },
      layout(jan, feb),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2 attached' },
      ['public.e_02 was attached to public.e'],
      ['public.e_02'],
      ['public.e_02'],
    ],
    [
      'a partition detached',
      layout(jan, feb),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2' },
      layout(jan),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2 detached' },
      ['public.e_02 was detached from public.e'],
      ['public.e_02'],
      ['public.e_02'],
    ],
    [
      'a partition dropped',
      layout(jan, feb),
      { ...plain, 'public.e_01': '1', 'public.e_02': '2' },
      layout(jan),
      { ...plain, 'public.e_01': '1' },
      ['partition public.e_02 of public.e was dropped'],
      ['public.e_02'],
      [],
    ],
    [
      'a partition re-bound',
      layout(jan),
      { ...plain, 'public.e_01': '1' },
      layout({ ...jan, bound: 'FOR VALUES IN (1, 3)' }),
      { ...plain, 'public.e_01': '1 re-bound' },
      ['partition public.e_01 moved from public.e FOR VALUES IN (1) to public.e FOR VALUES IN (1, 3)'],
      ['public.e_01'],
      ['public.e_01'],
    ],
  ])('follows %s', (_what, beforeLayout, beforeTables, afterLayout, afterTables, changes, drop, recreate) => {
    expect(
      planLayoutChange({ partitioned: beforeLayout, parts: parts(beforeTables) }, { partitioned: afterLayout, parts: parts(afterTables) }),
    ).toEqual({ changes, drop, recreate, refusals: [] });
  });

  it.each([
    ['a column added to a table', { ...plain, 'public.other': 'other + column' }, 'rest', ['the definition of public.other changed']],
    ['a table created', { ...plain, 'public.new': 'new' }, 'rest', ['table public.new was created']],
    ['a table dropped', { 'public.e': 'e' }, 'rest', ['table public.other was dropped']],
    [
      'a function changed',
      plain,
      'rest + function',
      ['a definition outside the tables changed (a schema, type, function, sequence, view, extension …)'],
    ],
  ])('refuses %s, naming it', (_what, afterTables, rest, refusals) => {
    const plan = planLayoutChange({ partitioned: [], parts: parts(plain) }, { partitioned: [], parts: parts(afterTables, rest) });
    expect(plan.refusals).toEqual(refusals);
  });

  it('refuses a definition change of a partition that stays where it was', () => {
    const plan = planLayoutChange(
      { partitioned: layout(jan), parts: parts({ ...plain, 'public.e_01': '1' }) },
      { partitioned: layout(jan, feb), parts: parts({ ...plain, 'public.e_01': '1 + index', 'public.e_02': '2' }) },
    );
    expect(plan.refusals).toEqual(['the definition of public.e_01 changed']);
  });

  it('refuses a partitioned table attached with its own partitions (recreating it would drop them)', () => {
    const sub = { table: 'public.e_03', bound: 'FOR VALUES IN (3)' };
    const plan = planLayoutChange(
      {
        partitioned: [{ table: 'public.e_03', partitions: [{ table: 'public.e_03_a', bound: 'DEFAULT' }] }],
        parts: parts({ 'public.e': 'e', 'public.e_03': '3', 'public.e_03_a': 'a' }),
      },
      {
        partitioned: [...layout(sub), { table: 'public.e_03', partitions: [{ table: 'public.e_03_a', bound: 'DEFAULT' }] }],
        parts: parts({ 'public.e': 'e', 'public.e_03': '3 attached', 'public.e_03_a': 'a' }),
      },
    );
    expect(plan.refusals).toEqual(['partitioned table public.e_03 was attached or detached with its own partitions']);
  });

  it('creates a new sub-partitioned table before its partitions and drops partitions before their parent', () => {
    const sub = { table: 'public.e_03', bound: 'FOR VALUES IN (3)' };
    const subLayout = [{ table: 'public.e_03', partitions: [{ table: 'public.e_03_a', bound: 'DEFAULT' }] }];
    const without = { partitioned: layout(jan), parts: parts({ ...plain, 'public.e_01': '1' }) };
    const withSub = {
      partitioned: [...layout(jan, sub), ...subLayout],
      parts: parts({ ...plain, 'public.e_01': '1', 'public.e_03': '3', 'public.e_03_a': 'a' }),
    };
    expect(planLayoutChange(without, withSub)).toMatchObject({ recreate: ['public.e_03', 'public.e_03_a'], refusals: [] });
    expect(planLayoutChange(withSub, without)).toMatchObject({ drop: ['public.e_03_a', 'public.e_03'], refusals: [] });
  });
});

describe('tableScriptPhases', () => {
  it('defines the table with its constraints and triggers first, attaches it and then its indexes after the rows', () => {
    const phases = tableScriptPhases(
      SCRIPT.replace(/--\n-- Name: events; Type: TABLE[^]*?(?=--\n-- Name: events_2026_01; Type: TABLE;)/, ''),
    );
    expect(phases.attach).toEqual([
      "ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2026_01 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');",
      'ALTER INDEX public.events_pkey ATTACH PARTITION public.events_2026_01_pkey;',
    ]);
    expect(phases.define.join('\n')).toContain(
      "SET default_tablespace = '';\nSET default_table_access_method = heap;\nCREATE TABLE public.events_2026_01 (",
    );
    expect(phases.define.join('\n')).toContain('ENABLE ALWAYS TRIGGER rookery_capture_rows;');
    expect(phases.define.join('\n')).not.toMatch(/ATTACH PARTITION|restrict|set_config/);
  });
});
