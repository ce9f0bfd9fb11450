import { partitionAttachments, selectionMisses, withPartitions } from './logical-restore.service';

const CONTENTS = [
  { type: 'SCHEMA', schema: '', name: 'sales' },
  { type: 'TABLE', schema: 'public', name: 'orders' },
  { type: 'TABLE DATA', schema: 'public', name: 'orders' },
  { type: 'VIEW', schema: 'sales', name: 'totals' },
  { type: 'SEQUENCE', schema: 'sales', name: 'ids' },
  { type: 'INDEX', schema: 'public', name: 'lonely_idx' },
];

describe('selectionMisses', () => {
  it.each([
    ['a table', { tables: ['orders'] }],
    ['a table in its schema', { schemas: ['public'], tables: ['orders'] }],
    ['a schema', { schemas: ['sales'] }],
    ['a view by --table', { tables: ['totals'] }],
    ['a sequence by --table', { schemas: ['sales'], tables: ['ids'] }],
  ])('finds %s', (_what, selection) => {
    expect(selectionMisses(selection, CONTENTS)).toEqual([]);
  });

  it.each([
    ['a table that is not there', { tables: ['nosuch'] }, ["--table 'nosuch'"]],
    ['a schema that is not there', { schemas: ['nosuch'] }, ["--schema 'nosuch'"]],
    ['a table in another schema', { schemas: ['sales'], tables: ['orders'] }, ["--table 'sales.orders'"]],
    ['an index name taken for a table', { tables: ['lonely_idx'] }, ["--table 'lonely_idx'"]],
    ['names differing in case', { tables: ['Orders'] }, ["--table 'Orders'"]],
    ['both', { schemas: ['gone'], tables: ['orders'] }, ["--schema 'gone'", "--table 'gone.orders'"]],
  ])('names %s', (_what, selection, misses) => {
    expect(selectionMisses(selection, CONTENTS)).toEqual(misses);
  });
});

describe('partitions of a --table selection', () => {
  const script = [
    'CREATE TABLE public.events (id bigint) PARTITION BY RANGE (created_at);',
    "ALTER TABLE ONLY public.events ATTACH PARTITION public.events_2026_01 FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');",
    'ALTER TABLE ONLY public.events ATTACH PARTITION archive."Events Old" DEFAULT;',
    "ALTER TABLE ONLY public.events_2026_01 ATTACH PARTITION public.events_2026_01_a FOR VALUES IN ('a');",
    'ALTER TABLE ONLY public.other ATTACH PARTITION public.other_1 FOR VALUES IN (1);',
    'ALTER TABLE ONLY public.events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at);',
    'ALTER SEQUENCE public.events_id_seq OWNED BY public.events.id;',
    'ALTER SEQUENCE public.orders_id_seq OWNED BY public.orders.id;',
  ].join('\n');

  it('reads the attachments of a pre-data script, quoted names unquoted', () => {
    expect(partitionAttachments(script).attachments.map((attachment) => [attachment.parent, attachment.partition])).toEqual([
      [
        { schema: 'public', name: 'events' },
        { schema: 'public', name: 'events_2026_01' },
      ],
      [
        { schema: 'public', name: 'events' },
        { schema: 'archive', name: 'Events Old' },
      ],
      [
        { schema: 'public', name: 'events_2026_01' },
        { schema: 'public', name: 'events_2026_01_a' },
      ],
      [
        { schema: 'public', name: 'other' },
        { schema: 'public', name: 'other_1' },
      ],
    ]);
    expect(partitionAttachments(script).attachments[1].statement).toBe(
      'ALTER TABLE ONLY public.events ATTACH PARTITION archive."Events Old" DEFAULT;',
    );
  });

  it('widens a partitioned table to its partitions, sub-partitions, their schemas and owned sequences', () => {
    const { selection, attach } = withPartitions({ schemas: ['public'], tables: ['events'] }, partitionAttachments(script));
    expect(selection).toEqual({
      schemas: ['public', 'archive'],
      tables: ['events', 'events_2026_01', 'Events Old', 'events_2026_01_a', 'events_id_seq'],
    });
    expect(attach.map((attachment) => attachment.partition.name)).toEqual(['events_2026_01', 'Events Old', 'events_2026_01_a']);
  });

  it('leaves a selection of ordinary tables as it is', () => {
    expect(withPartitions({ tables: ['orders'] }, partitionAttachments(script))).toEqual({ selection: { tables: ['orders'] }, attach: [] });
  });
});
