/** The tiers of a PenguinMails fleet and the default policy of each (DESIGN §2, from the seed). */
export const TIER_NAMES = ['oltp', 'content', 'queue', 'olap'] as const;
export type TierName = (typeof TIER_NAMES)[number];

export type BackupMethod = 'physical' | 'logical';
export type BackupType = 'full' | 'incremental' | 'snapshot';
export type StorageClass = 'STANDARD' | 'STANDARD_IA' | 'GLACIER' | 'GLACIER_IR' | 'DEEP_ARCHIVE';

export interface TierPolicy {
  tier: TierName;
  database: string;
  method: BackupMethod;
  /** Cron expression (5 or 6 fields) for full backups. */
  fullSchedule: string;
  /** Cron expression for incrementals/snapshots, or 'continuous' for WAL-based tiers. */
  incrementalSchedule: string;
  retentionDays: number;
  /** Retention for `snapshot` backups where the tier takes them (OLAP weekly: 365 d). */
  snapshotRetentionDays?: number;
  /** How a logical tier's dumps are shaped (DESIGN §5); absent for physical tiers. */
  logical?: LogicalPolicy;
  /** A physical tier's block-level incrementals (issue 17); absent: fulls only, WAL covers the rest. */
  physical?: PhysicalPolicy;
  storageClass: StorageClass;
  /** Moves backup artifacts to colder classes by age (`rookery transition`); absent: they stay in storageClass. */
  transitions?: readonly { afterDays: number; storageClass: StorageClass }[];
  /**
   * Region names: the first is the primary repository (repositories[0]), each further name the
   * repository at the same position, to which backups and WAL are copied (`rookery replicate`).
   */
  regions: readonly string[];
  rpoSeconds: number;
  rtoSeconds: number;
  localCopyDays: number;
  /** Cron expression (UTC) for the validator's restore drills of the tier; absent: DEFAULT_DRILL_SCHEDULE. */
  drillSchedule?: string;
  /** Policy-lint findings the operator accepted, by rule, with the reason (shown beside the finding). */
  acknowledge?: readonly PolicyAcknowledgement[];
}

export interface PolicyAcknowledgement {
  rule: string;
  reason: string;
}

/** Restore drills run monthly unless a tier's policy says otherwise: 06:00 UTC on the 1st. */
export const DEFAULT_DRILL_SCHEDULE = '0 6 1 * *';

export interface LogicalPolicy {
  /**
   * A table whose rows go into an artifact of their own (content: content_objects), as a pg_dump
   * pattern; the other artifact holds everything else. Null: one artifact holds the whole dump.
   */
  splitTable: string | null;
  /** pg_dump patterns of tables whose rows are never dumped (their definitions are). */
  excludeTableData: readonly string[];
  /** custom: streamed straight into the store; directory: pg_dump -j workers, staged locally. */
  format: 'custom' | 'directory';
  /** pg_dump workers for the directory format. */
  jobs: number;
  /** The tier's own compression (content: maximum by policy); absent: the repository's. */
  compression?: { codec: 'none' | 'gzip' | 'zstd' | 'lz4'; level: number };
  /**
   * Incrementals (`--type incremental`, content every 4 h): each full installs rookery's change
   * tracking on the database (schema `rookery`: a change log fed by row triggers), and an
   * incremental carries the rows changed since its parent. Absent: fulls only.
   */
  incremental?: boolean;
}

export interface PhysicalPolicy {
  /**
   * Block-level incrementals (`--type incremental`, and on incrementalSchedule): only the pages
   * changed since the parent backup (full or incremental) are stored. WAL archiving goes on as
   * for any physical tier. Absent: fulls only.
   */
  incremental?: IncrementalChainPolicy;
}

/** When an incremental is taken as a full instead: chains stay short and cheap to restore. */
export interface IncrementalChainPolicy {
  /** Once the chain's full is this many days old (OLTP: 1, a new full every day). */
  fullEveryDays: number;
  /** Once the chain's incrementals together store more than this fraction of its full's stored bytes. */
  maxChainFraction: number;
  /**
   * An incremental's page index is stored as a delta against its parent's (the changed entries and
   * pages only; the next incremental reads the chain's indexes, oldest first). Absent: true. False:
   * every incremental stores its full page index (1.9 MiB per GiB of relation files, incompressible).
   */
  deltaIndex?: boolean;
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;

export const DEFAULT_POLICIES: Readonly<Record<TierName, TierPolicy>> = Object.freeze({
  oltp: {
    tier: 'oltp',
    database: 'penguinmails_oltp',
    method: 'physical',
    fullSchedule: '0 2 * * *',
    // Hourly block incrementals (the seed's "daily full, hourly incremental"), except at the
    // full's hour; WAL is archived continuously beside them, as on every physical tier.
    incrementalSchedule: '0 0,1,3-23 * * *',
    physical: { incremental: { fullEveryDays: 1, maxChainFraction: 0.5 } },
    retentionDays: 90,
    storageClass: 'STANDARD_IA',
    regions: ['primary', 'secondary'],
    rpoSeconds: 15 * MINUTE,
    rtoSeconds: 15 * MINUTE,
    localCopyDays: 7,
  },
  content: {
    tier: 'content',
    database: 'penguinmails_content',
    method: 'logical',
    logical: {
      splitTable: 'public.content_objects',
      excludeTableData: [],
      format: 'custom',
      jobs: 2,
      compression: { codec: 'zstd', level: 9 },
      incremental: true,
    },
    fullSchedule: '0 3 * * *',
    incrementalSchedule: '0 */4 * * *',
    retentionDays: 180,
    storageClass: 'GLACIER',
    regions: ['primary', 'archive'],
    rpoSeconds: HOUR,
    rtoSeconds: 30 * MINUTE,
    localCopyDays: 7,
  },
  queue: {
    tier: 'queue',
    database: 'penguinmails_queue',
    method: 'physical',
    fullSchedule: '0 1 * * *',
    incrementalSchedule: 'continuous',
    retentionDays: 30,
    storageClass: 'STANDARD',
    regions: ['primary', 'secondary'],
    rpoSeconds: 0,
    rtoSeconds: 5 * MINUTE,
    localCopyDays: 7,
  },
  olap: {
    tier: 'olap',
    database: 'penguinmails_olap',
    method: 'logical',
    logical: { splitTable: null, excludeTableData: ['*.admin_audit_log'], format: 'custom', jobs: 2 },
    fullSchedule: '0 4 * * *',
    incrementalSchedule: '0 5 * * 0',
    retentionDays: 365,
    snapshotRetentionDays: 365,
    storageClass: 'STANDARD_IA',
    regions: ['primary', 'analytics-archive'],
    rpoSeconds: 24 * HOUR,
    rtoSeconds: 2 * HOUR,
    localCopyDays: 7,
  },
});

export function isTierName(value: string): value is TierName {
  return (TIER_NAMES as readonly string[]).includes(value);
}
