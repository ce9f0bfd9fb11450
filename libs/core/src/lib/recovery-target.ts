import { ConfigError } from './rookery.errors';
import { formatLsn, parseLsn } from './lsn';

/**
 * Where a point-in-time recovery stops (PostgreSQL's recovery_target_*). Pure parsing of the
 * `rookery restore --target-*` values; the recovery window and the choice of base backup are in
 * recovery-window.ts.
 *
 *   latest  replay every archived WAL record (no recovery_target_*)
 *   time    stop after the last transaction committed at or before `time` (inclusive, microseconds)
 *   lsn     stop after the first record at or after `lsn` (PostgreSQL's inclusive LSN rule)
 *   xid     stop after the commit of transaction `xid`
 *   name    stop at the restore point created with pg_create_restore_point(name)
 */
export type RecoveryTarget =
  | { kind: 'latest' }
  | { kind: 'time'; time: RecoveryTime }
  | { kind: 'lsn'; lsn: bigint }
  | { kind: 'xid'; xid: bigint }
  | { kind: 'name'; name: string };

/**
 * A recovery target time with the microsecond precision of PostgreSQL's commit timestamps (a JS
 * Date keeps milliseconds only, which would move a target between two commits).
 */
export interface RecoveryTime {
  /** Microseconds since the Unix epoch, UTC. */
  epochMicros: bigint;
  /** The same instant as PostgreSQL reads it: '2026-11-26 02:00:00.123456+00'. */
  text: string;
}

export interface RecoveryTargetFlags {
  targetTime?: string;
  targetLsn?: string;
  targetXid?: string;
  targetName?: string;
}

const TIME_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)$/i;

/** PostgreSQL's restore point names are at most 63 bytes (MAXFNAMELEN - 1). */
const MAX_RESTORE_POINT_NAME_BYTES = 63;
const MAX_XID = 0xffffffffffffffffn;

/**
 * The recovery target the restore flags ask for: at most one flag, each value validated. Times
 * must carry an explicit UTC offset or 'Z': a 3 a.m. restore must not depend on the TZ of the
 * shell it runs in. Malformed values are ConfigErrors naming the flag.
 */
export function parseRecoveryTarget(flags: RecoveryTargetFlags): RecoveryTarget {
  const given = (Object.entries(flags) as [keyof RecoveryTargetFlags, string | undefined][]).filter(([, value]) => value !== undefined);
  if (given.length > 1) {
    const names = given.map(([key]) => flagName(key));
    throw new ConfigError(`only one recovery target may be given, got ${names.join(' and ')}`, names);
  }
  if (given.length === 0) return { kind: 'latest' };
  const [key, value] = given[0] as [keyof RecoveryTargetFlags, string];
  switch (key) {
    case 'targetTime':
      return { kind: 'time', time: parseRecoveryTime(value) };
    case 'targetLsn':
      return { kind: 'lsn', lsn: parseTargetLsn(value) };
    case 'targetXid':
      return { kind: 'xid', xid: parseTargetXid(value) };
    case 'targetName':
      return { kind: 'name', name: parseTargetName(value) };
  }
}

export function parseRecoveryTime(value: string): RecoveryTime {
  const match = TIME_PATTERN.exec(value.trim());
  const invalid = (why: string) =>
    new ConfigError(`--target-time '${value}' is ${why}`, ['--target-time'], {
      hint: 'use ISO 8601 with an explicit offset, e.g. 2026-11-26T02:00:00Z or 2026-11-26 03:00:00.123456+01:00',
    });
  if (!match) throw invalid('not an ISO 8601 time with a UTC offset or Z');
  const [, year, month, day, hour, minute, second = '00', fraction = '', zone] = match;
  const fields = [year, month, day, hour, minute, second].map(Number);
  const utcMillis = Date.UTC(fields[0], fields[1] - 1, fields[2], fields[3], fields[4], fields[5]);
  const check = new Date(utcMillis);
  // Date.UTC rolls 2026-02-30 over to March: a round trip tells a real date from a typo.
  if (
    check.getUTCFullYear() !== fields[0] ||
    check.getUTCMonth() !== fields[1] - 1 ||
    check.getUTCDate() !== fields[2] ||
    fields[3] > 23 ||
    fields[4] > 59 ||
    fields[5] > 59
  ) {
    throw invalid('not a valid date and time');
  }
  const offsetMinutes = parseOffset(zone);
  if (offsetMinutes === null) throw invalid('given with an invalid UTC offset');
  const micros = BigInt(fraction.padEnd(6, '0'));
  const epochMicros = BigInt(utcMillis - offsetMinutes * 60_000) * 1000n + micros;
  return { epochMicros, text: formatRecoveryTime(epochMicros) };
}

/** '2026-11-26 02:00:00.123456+00': what recovery_target_time is set to (always UTC). */
export function formatRecoveryTime(epochMicros: bigint): string {
  const millis = Number(epochMicros / 1000n);
  const micros = (epochMicros % 1_000_000n).toString().padStart(6, '0');
  const iso = new Date(millis).toISOString(); // 2026-11-26T02:00:00.123Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros}+00`;
}

/** Microseconds since the epoch of an ISO time from a manifest or a store listing. */
export function epochMicrosOf(date: Date | string): bigint {
  return BigInt(new Date(date).getTime()) * 1000n;
}

function parseOffset(zone: string): number | null {
  if (zone.toUpperCase() === 'Z') return 0;
  const match = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone);
  if (!match) return null;
  const hours = Number(match[2]);
  const minutes = Number(match[3] ?? '0');
  if (hours > 15 || minutes > 59) return null;
  return (match[1] === '-' ? -1 : 1) * (hours * 60 + minutes);
}

function parseTargetLsn(value: string): bigint {
  try {
    return parseLsn(value);
  } catch {
    throw new ConfigError(`--target-lsn '${value}' is not an LSN`, ['--target-lsn'], {
      hint: 'an LSN is two hexadecimal numbers separated by a slash, as pg_current_wal_lsn() prints it: 0/3000148',
    });
  }
}

function parseTargetXid(value: string): bigint {
  const trimmed = value.trim();
  if (!/^\d{1,20}$/.test(trimmed) || BigInt(trimmed) > MAX_XID || BigInt(trimmed) < 3n) {
    throw new ConfigError(`--target-xid '${value}' is not a transaction id`, ['--target-xid'], {
      hint: 'a transaction id is a decimal integer of at least 3, as txid_current() or pg_current_xact_id() prints it',
    });
  }
  return BigInt(trimmed);
}

function parseTargetName(value: string): string {
  if (value.trim() === '') {
    throw new ConfigError('--target-name must not be empty', ['--target-name'], {
      hint: 'give the name passed to pg_create_restore_point()',
    });
  }
  if (Buffer.byteLength(value, 'utf8') > MAX_RESTORE_POINT_NAME_BYTES) {
    throw new ConfigError(`--target-name '${value}' is longer than PostgreSQL's 63-byte restore point names`, ['--target-name']);
  }
  return value;
}

function flagName(key: keyof RecoveryTargetFlags): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

/** The target as an operator reads it: "time 2026-11-26 02:00:00.000000+00", "lsn 0/3000148". */
export function describeRecoveryTarget(target: RecoveryTarget): string {
  switch (target.kind) {
    case 'latest':
      return 'the end of the archived WAL';
    case 'time':
      return `time ${target.time.text}`;
    case 'lsn':
      return `LSN ${formatLsn(target.lsn)}`;
    case 'xid':
      return `transaction ${target.xid}`;
    case 'name':
      return `restore point '${target.name}'`;
  }
}
