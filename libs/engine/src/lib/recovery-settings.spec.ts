import { parseRecoveryTarget } from '@rookery/core';
import { parseRecoveryLog } from './recovery-outcome';
import { configString, recoverySettingsLines, restoreCommand } from './recovery-settings';

describe('recovery settings', () => {
  const self = ['/usr/bin/node', '/opt/rookery/bin/rookery.js', '--repo', 's3://b/p?region=r&endpoint=http%3A%2F%2F127.0.0.1%3A9000'];

  it('builds a restore_command the shell and PostgreSQL read back as the same argv', () => {
    expect(restoreCommand(self, 'oltp')).toBe(
      "/usr/bin/node /opt/rookery/bin/rookery.js --repo 's3://b/p?region=r&endpoint=http%%3A%%2F%%2F127.0.0.1%%3A9000' wal-get %f %p --tier oltp",
    );
    expect(restoreCommand(['/a dir/node', "/it's/rookery.js"], 'queue')).toBe(
      `'/a dir/node' '/it'\\''s/rookery.js' wal-get %f %p --tier queue`,
    );
  });

  it('with prefetch, runs the shell fast path beside rookery.js with the same arguments and the node binary in ROOKERY_NODE', () => {
    expect(restoreCommand(self, 'oltp', 32)).toBe(
      "ROOKERY_NODE=/usr/bin/node /opt/rookery/bin/rookery-wal-get --repo 's3://b/p?region=r&endpoint=http%%3A%%2F%%2F127.0.0.1%%3A9000' wal-get %f %p --tier oltp --prefetch 32",
    );
    expect(restoreCommand(['/a dir/node', '/x/rookery.js'], 'queue', 4)).toBe(
      `ROOKERY_NODE='/a dir/node' /x/rookery-wal-get wal-get %f %p --tier queue --prefetch 4`,
    );
    expect(restoreCommand(['/usr/local/bin/rookery'], 'queue', 4)).toBe('/usr/local/bin/rookery wal-get %f %p --tier queue --prefetch 4');
  });

  it('quotes postgresql.conf strings', () => {
    expect(configString("it's a \\ path")).toBe("'it''s a \\\\ path'");
  });

  it.each([
    [{}, [], ['recovery_target_action']],
    [
      { targetTime: '2026-11-26T02:00:00.5Z' },
      ["recovery_target_time = '2026-11-26 02:00:00.500000+00'", "recovery_target_action = 'promote'"],
      [],
    ],
    [{ targetLsn: '0/3000148' }, ["recovery_target_lsn = '0/3000148'"], []],
    [{ targetXid: String(2n ** 32n + 7n) }, ["recovery_target_xid = '7'"], []],
    [{ targetName: "before 'x'" }, ["recovery_target_name = 'before ''x'''"], []],
  ])('writes the target %p', (flags, expected, absent) => {
    const lines = recoverySettingsLines({ selfCommand: self, tier: 'oltp', target: parseRecoveryTarget(flags), archiveMode: 'keep' });
    expect(lines).toEqual(expect.arrayContaining(["recovery_target_timeline = 'latest'", ...expected]));
    expect(lines.some((line) => line.startsWith('restore_command = '))).toBe(true);
    for (const name of [...absent, 'archive_mode']) expect(lines.some((line) => line.startsWith(name))).toBe(false);
  });

  it('turns archiving off when asked', () => {
    expect(recoverySettingsLines({ selfCommand: self, tier: 'oltp', target: { kind: 'latest' }, archiveMode: 'off' })).toContain(
      "archive_mode = 'off'",
    );
  });
});

describe('parseRecoveryLog', () => {
  const log = [
    '2026-11-26 02:10:00.000 UTC [10] LOG:  starting point-in-time recovery to 2026-11-26 02:00:00+00',
    '2026-11-26 02:10:00.100 UTC [10] LOG:  database system is ready to accept read-only connections',
    '2026-11-26 02:10:01.000 UTC [10] LOG:  recovery stopping before commit of transaction 812, time 2026-11-26 02:00:00.000123+00',
    '2026-11-26 02:10:01.000 UTC [10] LOG:  redo done at 0/5000148 system usage: CPU: user: 0.00 s',
    '2026-11-26 02:10:01.000 UTC [10] LOG:  last completed transaction was at log time 2026-11-26 01:59:59.999+00',
    '2026-11-26 02:10:01.000 UTC [10] LOG:  selected new timeline ID: 2',
    '2026-11-26 02:10:01.200 UTC [9] LOG:  database system is ready to accept connections',
  ].join('\n');

  it('reads what recovery reached and that the server was promoted', () => {
    expect(parseRecoveryLog(log)).toEqual({
      promoted: true,
      failure: null,
      outcome: {
        timeline: 2,
        endLsn: '0/5000148',
        stoppedAt: 'recovery stopping before commit of transaction 812, time 2026-11-26 02:00:00.000123+00',
        lastTransactionTime: '2026-11-26 01:59:59.999+00',
      },
    });
  });

  it('is not promoted while only read-only connections are accepted', () => {
    expect(parseRecoveryLog(log.split('\n').slice(0, 2).join('\n')).promoted).toBe(false);
  });

  it('prefers the startup failure over refused clients', () => {
    const failed = [
      '... FATAL:  the database system is not yet accepting connections',
      '... FATAL:  recovery ended before configured recovery target was reached',
      '... LOG:  startup process (PID 10) exited with exit code 1',
    ].join('\n');
    expect(parseRecoveryLog(failed).failure).toBe('recovery ended before configured recovery target was reached');
  });
});
