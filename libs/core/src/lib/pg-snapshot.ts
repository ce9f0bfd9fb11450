import { InvariantError } from './rookery.errors';

/**
 * A PostgreSQL MVCC snapshot as `pg_current_snapshot()` prints it, `xmin:xmax:xip,…` (xid8,
 * decimal). A transaction id x is visible in it (committed before it was taken, if it committed
 * at all) when x < xmin, or x < xmax and x is not in xip: the rule of pg_visible_in_snapshot().
 */
export interface PgSnapshot {
  xmin: bigint;
  xmax: bigint;
  xip: readonly bigint[];
}

export function parsePgSnapshot(text: string): PgSnapshot {
  const match = /^(\d+):(\d+):([\d,]*)$/.exec(text.trim());
  if (!match) throw new InvariantError(`'${text}' is not a pg_snapshot (xmin:xmax:xip,…)`);
  const snapshot = { xmin: BigInt(match[1]), xmax: BigInt(match[2]), xip: match[3] ? match[3].split(',').map((xid) => BigInt(xid)) : [] };
  if (snapshot.xmin > snapshot.xmax || snapshot.xip.some((xid) => xid < snapshot.xmin || xid >= snapshot.xmax)) {
    throw new InvariantError(`'${text}' is not a consistent pg_snapshot`);
  }
  return snapshot;
}

export function isVisibleInSnapshot(xid: bigint, snapshot: PgSnapshot): boolean {
  if (xid < snapshot.xmin) return true;
  if (xid >= snapshot.xmax) return false;
  return !snapshot.xip.includes(xid);
}

/**
 * True when every transaction visible in `inner` is also visible in `outer`: what a later snapshot
 * of the same server always satisfies with respect to an earlier one. The change log may only have
 * been pruned through a snapshot covered by the parent's; otherwise changes the incremental needs
 * are gone. Ids that can break it are those outer does not see: its xip, and [outer.xmax, inner.xmax).
 */
export function snapshotCovers(outer: PgSnapshot, inner: PgSnapshot): boolean {
  if (outer.xip.some((xid) => isVisibleInSnapshot(xid, inner))) return false;
  if (inner.xmax <= outer.xmax) return true;
  // inner saw past outer's horizon: only possible if every id there was still running for inner.
  const span = inner.xmax - outer.xmax;
  if (span > BigInt(inner.xip.length)) return false;
  for (let xid = outer.xmax; xid < inner.xmax; xid++) if (isVisibleInSnapshot(xid, inner)) return false;
  return true;
}
