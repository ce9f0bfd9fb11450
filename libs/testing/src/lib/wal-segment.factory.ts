import { randomBytes } from 'node:crypto';

/** XLOG_PAGE_MAGIC of PostgreSQL 15. */
const PG15_WAL_PAGE_MAGIC = 0xd110;

/** A fixed system identifier for generated segments (a cluster's own is what pg_control_system() shows). */
export const TEST_SYSTEM_IDENTIFIER = '7301234567890123456';

/**
 * The bytes of a WAL segment named `name` as wal-push checks them: a long page header (PostgreSQL
 * 15 magic, the segment's own start address, `systemIdentifier`, the segment size) and then
 * `fill`'s bytes, or random ones. `size` is the segment size: a power of two from 1 MiB.
 */
export function walSegmentBytes(name: string, options: { size?: number; systemIdentifier?: string; fill?: number } = {}): Buffer {
  const size = options.size ?? 16 * 1024 * 1024;
  const bytes = options.fill === undefined ? randomBytes(size) : Buffer.alloc(size, options.fill);
  const logId = BigInt(`0x${name.slice(8, 16)}`);
  const segment = BigInt(`0x${name.slice(16, 24)}`);
  bytes.writeUInt16LE(PG15_WAL_PAGE_MAGIC, 0);
  bytes.writeUInt16LE(0x0002, 2);
  bytes.writeUInt32LE(parseInt(name.slice(0, 8), 16), 4);
  bytes.writeBigUInt64LE((logId << 32n) + segment * BigInt(size), 8);
  bytes.writeUInt32LE(0, 16);
  bytes.writeUInt32LE(0, 20);
  bytes.writeBigUInt64LE(BigInt(options.systemIdentifier ?? TEST_SYSTEM_IDENTIFIER), 24);
  bytes.writeUInt32LE(size, 32);
  bytes.writeUInt32LE(8192, 36);
  return bytes;
}
