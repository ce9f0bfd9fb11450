import { copyOutArgs, definitionText, dumpArgs, exactTablePattern } from './pg-dump.driver';

describe('dumpArgs', () => {
  const conninfo = 'host=127.0.0.1 port=5433 user=backup dbname=penguinmails_content';

  it.each([
    [
      'content metadata: everything but the rows of the big table',
      { conninfo, format: 'custom' as const, compressLevel: 0, excludeTableData: ['public.content_objects'] },
      ['--format=custom', '--compress=0', '--exclude-table-data=public.content_objects', '--no-password', `--dbname=${conninfo}`],
    ],
    [
      'content objects: the big table rows only',
      {
        conninfo,
        format: 'custom' as const,
        compressLevel: 0,
        dataOnly: true,
        tables: ['public.content_objects'],
        snapshot: '00000003-0000001B-1',
      },
      [
        '--format=custom',
        '--compress=0',
        '--snapshot=00000003-0000001B-1',
        '--data-only',
        '--table=public.content_objects',
        '--no-password',
        `--dbname=${conninfo}`,
      ],
    ],
    [
      'olap: directory format, parallel, audit log rows excluded',
      {
        conninfo,
        format: 'directory' as const,
        compressLevel: 0,
        jobs: 2,
        directory: '/tmp/x/dump',
        excludeTableData: ['*.admin_audit_log', 'analytics.mv_a'],
      },
      [
        '--format=directory',
        '--file=/tmp/x/dump',
        '--compress=0',
        '--jobs=2',
        '--exclude-table-data=*.admin_audit_log',
        '--exclude-table-data=analytics.mv_a',
        '--no-password',
        `--dbname=${conninfo}`,
      ],
    ],
    [
      'pg_dump compressing itself',
      { conninfo, format: 'custom' as const, compressLevel: 6, jobs: 1 },
      ['--format=custom', '--compress=6', '--no-password', `--dbname=${conninfo}`],
    ],
  ])('%s', (_case, options, expected) => {
    expect(dumpArgs(options)).toEqual(expected);
  });

  it('refuses parallel jobs for the custom format and a directory dump without a directory', () => {
    expect(() => dumpArgs({ conninfo, format: 'custom', compressLevel: 0, jobs: 2 })).toThrow(/directory format/);
    expect(() => dumpArgs({ conninfo, format: 'directory', compressLevel: 0 })).toThrow(/output directory/);
  });

  it('never carries a password', () => {
    expect(dumpArgs({ conninfo, format: 'custom', compressLevel: 0 }).join(' ')).not.toMatch(/password=/);
  });
});

describe('copyOutArgs', () => {
  const conninfo = 'host=127.0.0.1 port=5433 user=backup dbname=penguinmails_content';

  it('copies a query inside a read-only transaction on the exported snapshot, stopping at the first error', () => {
    expect(copyOutArgs({ conninfo, snapshot: '00000003-0000001B-1', query: 'select 1' })).toEqual([
      '--no-psqlrc',
      '--quiet',
      '--no-password',
      '--set=ON_ERROR_STOP=1',
      `--dbname=${conninfo}`,
      '--command=begin isolation level repeatable read, read only',
      `--command=set transaction snapshot '00000003-0000001B-1'`,
      '--command=set row_security = off',
      '--command=copy (select 1) to stdout',
      '--command=commit',
    ]);
  });

  it('refuses anything but a snapshot id where it is inlined', () => {
    expect(() => copyOutArgs({ conninfo, snapshot: "x'; drop table t; --", query: 'select 1' })).toThrow(/not an exported snapshot id/);
  });
});

describe('exactTablePattern', () => {
  it.each([
    [{ schema: 'public', name: 'events_2026_01' }, '"public"."events_2026_01"'],
    [{ schema: 'Sales', name: 'by month*' }, '"Sales"."by month*"'],
    [{ schema: 'public', name: 'say "hi"' }, '"public"."say ""hi"""'],
  ])('quotes %j as %s (nothing in it a wildcard)', (table, pattern) => {
    expect(exactTablePattern(table)).toBe(pattern);
  });
});

describe('definitionText', () => {
  it('leaves out comments, blank lines and the per-run \\restrict key', () => {
    const script = '--\n-- Name: t; Type: TABLE\n--\n\\restrict abc\n\nCREATE TABLE public.t ();\n\n\\unrestrict abc\n';
    expect(definitionText(script)).toBe('CREATE TABLE public.t ();');
  });
});
