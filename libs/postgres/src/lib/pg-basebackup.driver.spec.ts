import { basebackupArgs, parseBasebackupStderr } from './pg-basebackup.driver';

describe('basebackupArgs', () => {
  it.each([
    [
      { conninfo: 'host=127.0.0.1 port=5433 user=postgres', label: 'nightly', checkpoint: 'fast' as const },
      '--checkpoint=fast',
      '--label=nightly',
    ],
    [
      { conninfo: "host=db user='a b'", label: '20261126T020000Z-oltp', checkpoint: 'spread' as const },
      '--checkpoint=spread',
      '--label=20261126T020000Z-oltp',
    ],
    [
      { conninfo: 'host=/tmp/sock', label: 'label with spaces', checkpoint: 'fast' as const },
      '--checkpoint=fast',
      '--label=label with spaces',
    ],
  ])('builds a tar-to-stdout argv for %j', (options, checkpoint, label) => {
    const args = basebackupArgs(options);
    expect(args).toEqual([
      '--pgdata=-',
      '--format=tar',
      '--wal-method=fetch',
      checkpoint,
      label,
      '--verbose',
      '--no-password',
      '-d',
      options.conninfo,
    ]);
  });

  it('never carries a password', () => {
    const args = basebackupArgs({ conninfo: 'host=db user=backup', label: 'x', checkpoint: 'fast' });
    expect(args.join(' ')).not.toMatch(/password=/);
  });
});

describe('parseBasebackupStderr', () => {
  const verbose = [
    'pg_basebackup: initiating base backup, waiting for checkpoint to complete',
    'pg_basebackup: checkpoint completed',
    'pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1',
    'pg_basebackup: write-ahead log end point: 0/2000100',
    'pg_basebackup: base backup completed',
  ].join('\n');

  it.each([
    [verbose, { startLsn: '0/2000028', stopLsn: '0/2000100', timeline: 1 }],
    [
      verbose.replace('0/2000028 on timeline 1', '16/b374d848 on timeline 12').replace('0/2000100', '16/B3800000'),
      { startLsn: '16/B374D848', stopLsn: '16/B3800000', timeline: 12 },
    ],
    [`WARNING: something\r\n${verbose.replace(/\n/g, '\r\n')}`, { startLsn: '0/2000028', stopLsn: '0/2000100', timeline: 1 }],
  ])('reads start, stop and timeline (%#)', (stderr, expected) => {
    expect(parseBasebackupStderr(stderr)).toEqual(expected);
  });

  it.each([
    ['', 'empty output'],
    ['pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1\n', 'no end point'],
    ['pg_basebackup: error: connection to server failed\n', 'a failure'],
  ])('returns null for %j (%s)', (stderr) => {
    expect(parseBasebackupStderr(stderr)).toBeNull();
  });
});
