import { WAL_LONG_HEADER_BYTES, WAL_PAGE_MAGIC_BY_MAJOR, checkWalFile } from './wal-file.check';

const MiB = 1024 * 1024;
const SYSTEM = '7301234567890123456';
const REPOSITORY = { systemIdentifier: SYSTEM, segmentSize: 16 * MiB };

/** The first 40 bytes of a segment as PostgreSQL writes them (XLogLongPageHeaderData). */
function longHeader(options: { magic?: number; info?: number; pageAddress?: bigint; system?: string; segmentSize?: number } = {}): Buffer {
  const header = Buffer.alloc(WAL_LONG_HEADER_BYTES);
  header.writeUInt16LE(options.magic ?? WAL_PAGE_MAGIC_BY_MAJOR[15], 0);
  header.writeUInt16LE(options.info ?? 0x0002, 2);
  header.writeUInt32LE(1, 4);
  header.writeBigUInt64LE(options.pageAddress ?? 0x3000000n, 8);
  header.writeBigUInt64LE(BigInt(options.system ?? SYSTEM), 24);
  header.writeUInt32LE(options.segmentSize ?? 16 * MiB, 32);
  header.writeUInt32LE(8192, 36);
  return header;
}

const SEGMENT = '000000010000000000000003';

describe('checkWalFile', () => {
  it('accepts a whole segment of the repository system and returns its header', () => {
    expect(checkWalFile(SEGMENT, 16 * MiB, longHeader(), REPOSITORY)).toEqual({
      problem: null,
      header: { magic: 0xd110, info: 2, pageAddress: 0x3000000n, systemIdentifier: SYSTEM, segmentSize: 16 * MiB, blockSize: 8192 },
    });
  });

  it.each(Object.entries(WAL_PAGE_MAGIC_BY_MAJOR))('accepts the page magic of PostgreSQL %s', (_major, magic) => {
    expect(checkWalFile(SEGMENT, 16 * MiB, longHeader({ magic })).problem).toBeNull();
  });

  it.each([
    ['an 8-byte file', SEGMENT, 8, Buffer.from('junkjunk'), /is 8 bytes, too short for a WAL page header/],
    ['a segment cut short', SEGMENT, 8 * MiB, longHeader(), /is 8388608 bytes, not a whole segment of 16777216 bytes/],
    ['a segment one byte long', SEGMENT, 16 * MiB + 1, longHeader(), /not a whole segment/],
    ['an unknown magic', SEGMENT, 16 * MiB, longHeader({ magic: 0x1234 }), /magic 0x1234 is no PostgreSQL version's/],
    ['zeros', SEGMENT, 16 * MiB, Buffer.alloc(WAL_LONG_HEADER_BYTES), /magic 0x0000/],
    ['a short page header', SEGMENT, 16 * MiB, longHeader({ info: 0 }), /does not start with a segment's long page header/],
    ['a segment size that is no power of two', SEGMENT, 16 * MiB, longHeader({ segmentSize: 3 * MiB }), /long page header/],
    [
      'another segment renamed',
      SEGMENT,
      16 * MiB,
      longHeader({ pageAddress: 0x4000000n }),
      /starting at 0\/4000000, not the one its name gives \(0\/3000000\)/,
    ],
    ['a .partial of junk', `${SEGMENT}.partial`, 8, Buffer.from('junkjunk'), /too short/],
  ])('refuses %s', (_what, name, size, head, reason) => {
    const check = checkWalFile(name, size, head);
    expect(check.problem).toMatch(reason);
  });

  it('refuses a segment of another database system', () => {
    expect(checkWalFile(SEGMENT, 16 * MiB, longHeader({ system: '7300000000000000001' }), REPOSITORY).problem).toBe(
      `WAL file '${SEGMENT}' comes from database system 7300000000000000001, but this repository archives system ${SYSTEM}`,
    );
  });

  it('refuses a segment size other than the repository one', () => {
    const head = longHeader({ segmentSize: 64 * MiB, pageAddress: 0n });
    expect(checkWalFile('000000010000000000000000', 64 * MiB, head, REPOSITORY).problem).toMatch(
      /segments of 67108864 bytes, but this repository archives segments of 16777216 bytes/,
    );
  });

  it('takes the segment size from the header to place the segment (64 MiB segments)', () => {
    expect(
      checkWalFile('000000010000000100000002', 64 * MiB, longHeader({ segmentSize: 64 * MiB, pageAddress: 0x108000000n })).problem,
    ).toBeNull();
  });

  it('exempts a .partial file from the size, not from the header or the system', () => {
    expect(checkWalFile(`${SEGMENT}.partial`, 5 * MiB, longHeader(), REPOSITORY).problem).toBeNull();
    expect(checkWalFile(`${SEGMENT}.partial`, 5 * MiB, longHeader({ magic: 0xbeef })).problem).toMatch(/magic 0xbeef/);
    expect(checkWalFile(`${SEGMENT}.partial`, 5 * MiB, longHeader({ system: '1' }), REPOSITORY).problem).toMatch(/database system 1,/);
  });

  it('passes a .partial that holds no WAL yet', () => {
    expect(checkWalFile(`${SEGMENT}.partial`, 16 * MiB, Buffer.alloc(WAL_LONG_HEADER_BYTES), REPOSITORY)).toEqual({
      problem: null,
      header: null,
    });
  });

  it.each(['00000002.history', `${SEGMENT}.00000028.backup`])('does not check %s (a text file)', (name) => {
    expect(checkWalFile(name, 3, Buffer.from('abc'), REPOSITORY)).toEqual({ problem: null, header: null });
  });
});
