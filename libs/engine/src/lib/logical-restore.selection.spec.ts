import { selectionMisses } from './logical-restore.service';

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
