import { parseLsn } from './lsn';
import {
  formatTimeline,
  parseTimelineHistory,
  parseWalFileName,
  walHistoryFileName,
  walSegmentFileName,
  walSegmentNumberOf,
  walSegmentStartLsn,
} from './wal';

describe('parseWalFileName', () => {
  it.each([
    ['000000010000000000000003', 'segment', 1, 3n],
    ['0000000A00000002000000FF', 'segment', 10, 2n * 256n + 255n],
    ['000000020000000100000000.partial', 'partial', 2, 256n],
    ['000000010000000000000002.00000028.backup', 'backup', 1, 2n],
    ['00000002.history', 'history', 2, null],
    ['FFFFFFFF.history', 'history', 0xffffffff, null],
  ])('parses %s', (name, kind, timeline, segmentNumber) => {
    expect(parseWalFileName(name)).toEqual({ name, kind, timeline, segmentNumber });
  });

  it.each([
    ['', 'empty'],
    ['00000001000000000000003', 'too short'],
    ['0000000100000000000000031', 'too long'],
    ['000000010000000000000003.PARTIAL', 'upper-case suffix'],
    ['00000001000000000000000g', 'not hex'],
    ['000000010000000000000003 ', 'trailing space'],
    ['00000000.history', 'timeline 0'],
    ['000000000000000000000003', 'timeline 0 segment'],
    ['000000010000000000000100', 'segment past the end of a log id (16 MiB segments)'],
    ['000000010000000000000003.backup', 'backup without offset'],
    ['000000010000000000000003.0000028.backup', 'short backup offset'],
    ['00000001.history.partial', 'history partial'],
    ['../000000010000000000000003', 'a path'],
    ['archive_status', 'a pg_wal directory'],
    ['000000010000000000000003.ready', 'an archive_status marker'],
    ['RECOVERYXLOG', 'the temporary name recovery uses'],
  ])('rejects %j (%s)', (name) => {
    expect(parseWalFileName(name)).toBeNull();
  });

  it('accepts larger segment numbers with a smaller segment size', () => {
    // 1 MiB segments: 4096 segments a log id, so 000000FF is valid and 00001000 is not.
    expect(parseWalFileName('0000000100000000000000FF', 1024 * 1024)?.segmentNumber).toBe(255n);
    expect(parseWalFileName('000000010000000000000FFF', 1024 * 1024)?.segmentNumber).toBe(4095n);
    expect(parseWalFileName('000000010000000000001000', 1024 * 1024)).toBeNull();
    expect(parseWalFileName('000000010000000000000FFF')).toBeNull();
  });
});

describe('segment arithmetic', () => {
  it.each([
    [1, 0n, '000000010000000000000000'],
    [1, 3n, '000000010000000000000003'],
    [1, 255n, '0000000100000000000000FF'],
    // Log id rollover: the segment after xxxxxxxx000000FF is (log id + 1) 00000000.
    [1, 256n, '000000010000000100000000'],
    [2, 257n, '000000020000000100000001'],
    [0x1a, 0xabcdn * 256n + 0x12n, '0000001A0000ABCD00000012'],
  ])('timeline %i segment %d is %s, and back', (timeline, segmentNumber, name) => {
    expect(walSegmentFileName(timeline, segmentNumber)).toBe(name);
    expect(parseWalFileName(name)?.segmentNumber).toBe(segmentNumber);
  });

  it('rolls over the log id at the segment size of the cluster', () => {
    const mib = 1024 * 1024;
    expect(walSegmentFileName(1, 4096n, mib)).toBe('000000010000000100000000');
    expect(walSegmentFileName(1, 4095n, mib)).toBe('000000010000000000000FFF');
    expect(walSegmentFileName(1, 4n, 1024 * mib)).toBe('000000010000000100000000');
  });

  it.each([
    ['0/0', 0n],
    ['0/2FFFFFF', 2n],
    ['0/3000028', 3n],
    ['0/FFFFFFFF', 255n],
    ['1/0', 256n],
    ['16/B374D848', 0x16n * 256n + 0xb3n],
  ])('the segment holding %s is number %d', (lsn, segmentNumber) => {
    expect(walSegmentNumberOf(parseLsn(lsn))).toBe(segmentNumber);
  });

  it('gives the first LSN of a segment', () => {
    expect(walSegmentStartLsn(3n)).toBe(parseLsn('0/3000000'));
    expect(walSegmentStartLsn(256n)).toBe(parseLsn('1/0'));
    expect(walSegmentNumberOf(walSegmentStartLsn(257n) - 1n)).toBe(256n);
  });

  it('formats timelines and history file names in 8 upper-case hex digits', () => {
    expect(formatTimeline(1)).toBe('00000001');
    expect(formatTimeline(26)).toBe('0000001A');
    expect(walHistoryFileName(2)).toBe('00000002.history');
    expect(parseWalFileName(walHistoryFileName(26))?.timeline).toBe(26);
  });
});

describe('parseTimelineHistory', () => {
  it('parses the ancestors oldest first, with switch points and reasons', () => {
    const text = [
      '1\t0/3000158\tno recovery target specified',
      '',
      '# a comment',
      '2\t1/A0000000\tbefore 2026-11-26 10:00:00+00',
      '3\t1/B374D848\tat restore point "before-migration"',
      '',
    ].join('\n');
    expect(parseTimelineHistory(text)).toEqual([
      { timeline: 1, switchLsn: parseLsn('0/3000158'), reason: 'no recovery target specified' },
      { timeline: 2, switchLsn: parseLsn('1/A0000000'), reason: 'before 2026-11-26 10:00:00+00' },
      { timeline: 3, switchLsn: parseLsn('1/B374D848'), reason: 'at restore point "before-migration"' },
    ]);
  });

  it('accepts a history without reasons and an empty one', () => {
    expect(parseTimelineHistory('1\t0/3000158\n')).toEqual([{ timeline: 1, switchLsn: parseLsn('0/3000158'), reason: '' }]);
    expect(parseTimelineHistory('')).toEqual([]);
  });

  it.each([
    ['x\t0/3000158\treason', 'timeline not a number'],
    ['1\t03000158\treason', 'LSN without slash'],
    ['1\t0/30001G8\treason', 'LSN not hex'],
    ['1', 'no LSN'],
  ])('refuses %j (%s), naming the line', (line) => {
    expect(() => parseTimelineHistory(line)).toThrow(`malformed timeline history line '${line}'`);
  });
});
