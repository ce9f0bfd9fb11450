import { coverageOf } from './logical-change-tracking';

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
