import { ConfigError } from './rookery.errors';
import { describeRecoveryTarget, formatRecoveryTime, parseRecoveryTarget, parseRecoveryTime } from './recovery-target';

describe('parseRecoveryTarget', () => {
  it('is latest without a flag', () => {
    expect(parseRecoveryTarget({})).toEqual({ kind: 'latest' });
  });

  it.each([
    ['2026-11-26T02:00:00Z', '2026-11-26 02:00:00.000000+00'],
    ['2026-11-26 02:00:00.123456Z', '2026-11-26 02:00:00.123456+00'],
    ['2026-11-26T03:00:00.5+01:00', '2026-11-26 02:00:00.500000+00'],
    ['2026-11-25T21:30:00-0430', '2026-11-26 02:00:00.000000+00'],
    ['2026-11-26T02:00+00', '2026-11-26 02:00:00.000000+00'],
  ])('reads time %s as %s (UTC, microseconds kept)', (value, text) => {
    const target = parseRecoveryTarget({ targetTime: value });
    expect(target).toEqual({ kind: 'time', time: { epochMicros: expect.any(BigInt), text } });
  });

  it('keeps microseconds exactly', () => {
    const time = parseRecoveryTime('2026-11-26T02:00:00.000001Z');
    expect(time.epochMicros).toBe(BigInt(Date.UTC(2026, 10, 26, 2)) * 1000n + 1n);
    expect(formatRecoveryTime(time.epochMicros)).toBe('2026-11-26 02:00:00.000001+00');
  });

  it.each([
    ['2026-11-26T02:00:00', 'no offset: depends on the shell TZ'],
    ['2026-02-30T02:00:00Z', 'not a date'],
    ['2026-11-26T24:00:00Z', 'hour out of range'],
    ['yesterday', 'not ISO 8601'],
    ['2026-11-26T02:00:00.1234567Z', 'below microseconds'],
    ['2026-11-26T02:00:00+25:00', 'offset out of range'],
  ])('refuses time %s (%s) naming the flag', (value) => {
    expect(() => parseRecoveryTarget({ targetTime: value })).toThrow(ConfigError);
    expect(() => parseRecoveryTarget({ targetTime: value })).toThrow(/--target-time/);
  });

  it.each([
    ['0/3000148', 0x3000148n],
    ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
  ])('reads LSN %s', (value, lsn) => {
    expect(parseRecoveryTarget({ targetLsn: value })).toEqual({ kind: 'lsn', lsn });
  });

  it.each(['0x3000148', '3000148', '0/', 'G/1'])('refuses LSN %s naming the flag', (value) => {
    expect(() => parseRecoveryTarget({ targetLsn: value })).toThrow(/--target-lsn/);
  });

  it.each([
    ['748', 748n],
    ['4294967296', 4294967296n],
  ])('reads xid %s', (value, xid) => {
    expect(parseRecoveryTarget({ targetXid: value })).toEqual({ kind: 'xid', xid });
  });

  it.each(['-1', '1', '12a', '', '18446744073709551616'])('refuses xid %p naming the flag', (value) => {
    expect(() => parseRecoveryTarget({ targetXid: value })).toThrow(/--target-xid/);
  });

  it('reads a restore point name and refuses empty or over-long ones', () => {
    expect(parseRecoveryTarget({ targetName: 'before-migration' })).toEqual({ kind: 'name', name: 'before-migration' });
    expect(() => parseRecoveryTarget({ targetName: ' ' })).toThrow(/--target-name must not be empty/);
    expect(() => parseRecoveryTarget({ targetName: 'x'.repeat(64) })).toThrow(/63-byte/);
  });

  it('refuses two targets at once', () => {
    expect(() => parseRecoveryTarget({ targetTime: '2026-11-26T02:00:00Z', targetLsn: '0/1' })).toThrow(
      'only one recovery target may be given, got --target-time and --target-lsn',
    );
  });

  it('describes targets for messages', () => {
    expect(describeRecoveryTarget(parseRecoveryTarget({ targetLsn: '0/3000148' }))).toBe('LSN 0/3000148');
    expect(describeRecoveryTarget({ kind: 'name', name: 'x' })).toBe("restore point 'x'");
  });
});
