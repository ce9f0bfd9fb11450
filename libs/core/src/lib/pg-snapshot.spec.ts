import { isVisibleInSnapshot, parsePgSnapshot, snapshotCovers } from './pg-snapshot';

describe('pg_snapshot', () => {
  it('parses xmin:xmax:xip and refuses malformed or inconsistent text', () => {
    expect(parsePgSnapshot('100:105:101,103')).toEqual({ xmin: 100n, xmax: 105n, xip: [101n, 103n] });
    expect(parsePgSnapshot('7:7:')).toEqual({ xmin: 7n, xmax: 7n, xip: [] });
    expect(() => parsePgSnapshot('7:5:')).toThrow(/not a consistent/);
    expect(() => parsePgSnapshot('5:9:12')).toThrow(/not a consistent/);
    expect(() => parsePgSnapshot('abc')).toThrow(/not a pg_snapshot/);
  });

  it.each([
    { xid: 99n, visible: true },
    { xid: 100n, visible: true },
    { xid: 101n, visible: false },
    { xid: 102n, visible: true },
    { xid: 104n, visible: true },
    { xid: 105n, visible: false },
    { xid: 200n, visible: false },
  ])('xid $xid visible in 100:105:101,103 is $visible', ({ xid, visible }) => {
    expect(isVisibleInSnapshot(xid, parsePgSnapshot('100:105:101,103'))).toBe(visible);
  });

  it.each([
    // A later snapshot covers an earlier one, even when the earlier one had transactions running.
    { outer: '104:110:105', inner: '100:105:101,103', covers: true },
    { outer: '100:105:101,103', inner: '100:105:101,103', covers: true },
    // 103 was running for the outer snapshot but committed for the inner one: not covered.
    { outer: '100:105:103', inner: '104:104:', covers: false },
    // The inner one saw 105..106 that outer did not.
    { outer: '100:105:', inner: '107:107:', covers: false },
    // Beyond outer's xmax, but everything there was still running for inner.
    { outer: '100:105:', inner: '100:107:105,106', covers: true },
  ])('$outer covers $inner: $covers', ({ outer, inner, covers }) => {
    expect(snapshotCovers(parsePgSnapshot(outer), parsePgSnapshot(inner))).toBe(covers);
  });
});
