import { coverageOf, partitionChanges } from './logical-change-tracking';

const row = (name: string, relkind: string, parent: string | null = null, bound: string | null = null) => ({
  oid: `${name.length}`,
  name,
  relkind,
  parent,
  bound,
  keyColumns: relkind === 'r' ? ['id'] : null,
  keyTypes: relkind === 'r' ? ['bigint'] : null,
  columns: ['id'],
});

describe('coverageOf', () => {
  it('tracks leaf partitions like tables, leaves roots out of the data, and names what it cannot follow', () => {
    const coverage = coverageOf([
      row('public.events', 'p'),
      row('public.events_2026_01', 'r', 'public.events', "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')"),
      row('public.events_default', 'r', 'public.events', 'DEFAULT'),
      row('public.events_remote', 'f', 'public.events', "FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')"),
      row('public.plain', 'r'),
    ]);
    expect(coverage.tables.map((table) => table.name)).toEqual(['public.events_2026_01', 'public.events_default', 'public.plain']);
    expect(coverage.partitioned).toEqual([
      {
        table: 'public.events',
        partitions: [
          { table: 'public.events_2026_01', bound: "FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')" },
          { table: 'public.events_default', bound: 'DEFAULT' },
          { table: 'public.events_remote', bound: "FOR VALUES FROM ('2020-01-01') TO ('2021-01-01')" },
        ],
      },
    ]);
    expect(coverage.untracked).toEqual([
      { table: 'public.events_remote', reason: expect.stringMatching(/foreign table attached to public.events/) },
    ]);
  });
});

describe('partitionChanges', () => {
  const jan = { table: 'public.e_01', bound: 'FOR VALUES IN (1)' };
  const feb = { table: 'public.e_02', bound: 'FOR VALUES IN (2)' };
  const layout = (...partitions: (typeof jan)[]) => [{ table: 'public.e', partitions }];

  it.each([
    ['nothing', layout(jan), layout(jan), ['public.e_01'], ['public.e_01'], []],
    [
      'a partition created',
      layout(jan),
      layout(jan, feb),
      ['public.e_01'],
      ['public.e_01', 'public.e_02'],
      ['partition public.e_02 of public.e was created'],
    ],
    [
      'a table attached',
      layout(jan),
      layout(jan, feb),
      ['public.e_01', 'public.e_02'],
      ['public.e_01', 'public.e_02'],
      ['public.e_02 was attached to public.e'],
    ],
    [
      'a partition detached',
      layout(jan, feb),
      layout(jan),
      ['public.e_01', 'public.e_02'],
      ['public.e_01', 'public.e_02'],
      ['public.e_02 was detached from public.e'],
    ],
    [
      'a partition dropped',
      layout(jan, feb),
      layout(jan),
      ['public.e_01', 'public.e_02'],
      ['public.e_01'],
      ['partition public.e_02 of public.e was dropped'],
    ],
    [
      'a partition re-bound',
      layout(jan),
      layout({ ...jan, bound: 'FOR VALUES IN (1, 3)' }),
      ['public.e_01'],
      ['public.e_01'],
      ['partition public.e_01 moved from public.e FOR VALUES IN (1) to public.e FOR VALUES IN (1, 3)'],
    ],
  ])('names %s', (_what, before, after, trackedBefore, trackedAfter, changes) => {
    expect(partitionChanges(before, after, { before: new Set(trackedBefore), after: new Set(trackedAfter) })).toEqual(changes);
  });

  it('names a new partitioned table', () => {
    expect(partitionChanges([], layout(jan), { before: new Set(), after: new Set(['public.e_01']) })).toEqual([
      'partition public.e_01 of public.e was created',
      'partitioned table public.e was created',
    ]);
  });
});
