import { listArgs, parseTocList, restoreArgs } from './pg-restore.driver';

describe('restoreArgs', () => {
  const conninfo = 'host=127.0.0.1 port=5433 user=postgres dbname=restored';
  const head = [`--dbname=${conninfo}`, '--no-password', '--exit-on-error'];

  it.each([
    ['a stream, all or nothing', { conninfo, input: null, singleTransaction: true }, [...head, '--single-transaction', '--format=custom']],
    ['a file with parallel jobs', { conninfo, input: '/tmp/a.dump', jobs: 4 }, [...head, '--jobs=4', '/tmp/a.dump']],
    [
      'metadata before the big table',
      { conninfo, input: '/tmp/m.dump', sections: ['pre-data', 'data'] as const },
      [...head, '--section=pre-data', '--section=data', '/tmp/m.dump'],
    ],
    [
      'one table over an existing one',
      { conninfo, input: '/tmp/d', clean: true, schemas: ['analytics'], tables: ['fact_email_sends'] },
      [...head, '--clean', '--if-exists', '--schema=analytics', '--table=fact_email_sends', '/tmp/d'],
    ],
    ['data only', { conninfo, input: '/tmp/o.dump', dataOnly: true, jobs: 1 }, [...head, '--data-only', '/tmp/o.dump']],
  ])('%s', (_case, options, expected) => {
    expect(restoreArgs(options)).toEqual(expected);
  });

  it('refuses parallel jobs from a stream or in one transaction', () => {
    expect(() => restoreArgs({ conninfo, input: null, jobs: 2 })).toThrow(/file or directory/);
    expect(() => restoreArgs({ conninfo, input: '/tmp/a', jobs: 2, singleTransaction: true })).toThrow(/single transaction/);
  });

  it('lists a file or stdin', () => {
    expect(listArgs('/tmp/a.dump')).toEqual(['--list', '/tmp/a.dump']);
    expect(listArgs(null)).toEqual(['--list', '--format=custom']);
  });
});

describe('parseTocList', () => {
  const listing = [
    ';',
    '; Archive created at 2026-01-01 10:00:00 UTC',
    ';     dbname: penguinmails_olap',
    ';',
    '6; 2615 16385 SCHEMA - analytics postgres',
    '215; 1259 16386 TABLE analytics dim_date postgres',
    '220; 1259 16450 MATERIALIZED VIEW analytics mv_daily_campaign_stats postgres',
    '3380; 0 16386 TABLE DATA analytics dim_date postgres',
    '3391; 0 0 SEQUENCE SET public content_objects_id_seq postgres',
    '3400; 0 16450 MATERIALIZED VIEW DATA analytics mv_daily_campaign_stats postgres',
    '3190; 2606 16500 FK CONSTRAINT analytics fact_email_sends fact_email_sends_date_key_fkey postgres',
    '3201; 1259 16510 INDEX public content_objects_message_id_key postgres',
    ';3202; 1259 16511 INDEX public commented_out postgres',
  ].join('\n');

  it('reads multi-word types, schemas, names and owners', () => {
    expect(parseTocList(listing)).toEqual([
      { dumpId: 6, type: 'SCHEMA', schema: '', name: 'analytics', owner: 'postgres' },
      { dumpId: 215, type: 'TABLE', schema: 'analytics', name: 'dim_date', owner: 'postgres' },
      { dumpId: 220, type: 'MATERIALIZED VIEW', schema: 'analytics', name: 'mv_daily_campaign_stats', owner: 'postgres' },
      { dumpId: 3380, type: 'TABLE DATA', schema: 'analytics', name: 'dim_date', owner: 'postgres' },
      { dumpId: 3391, type: 'SEQUENCE SET', schema: 'public', name: 'content_objects_id_seq', owner: 'postgres' },
      { dumpId: 3400, type: 'MATERIALIZED VIEW DATA', schema: 'analytics', name: 'mv_daily_campaign_stats', owner: 'postgres' },
      {
        dumpId: 3190,
        type: 'FK CONSTRAINT',
        schema: 'analytics',
        name: 'fact_email_sends fact_email_sends_date_key_fkey',
        owner: 'postgres',
      },
      { dumpId: 3201, type: 'INDEX', schema: 'public', name: 'content_objects_message_id_key', owner: 'postgres' },
    ]);
  });

  it('returns nothing for an empty or comment-only listing', () => {
    expect(parseTocList('')).toEqual([]);
    expect(parseTocList(';\n; nothing\n')).toEqual([]);
  });
});
