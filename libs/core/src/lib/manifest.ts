import { createHash } from 'node:crypto';
import type { RecordSignature, SigningKey, SigningKeyring } from './record-signature';
import { signRecord, signatureProblem } from './record-signature';
import { BackupMethod, BackupType, StorageClass, TierName } from './tier';

export const MANIFEST_FORMAT_VERSION = 1;
export const MANIFEST_FILE_NAME = 'manifest.json';

export type CompressionCodec = 'none' | 'gzip' | 'zstd' | 'lz4';
export const COMPRESSION_CODECS: readonly CompressionCodec[] = ['none', 'gzip', 'zstd', 'lz4'];

export interface CompressionSpec {
  codec: CompressionCodec;
  level: number;
  /**
   * Who compressed: absent for rookery's own compression (independent frames from its workers),
   * 'server' for a base backup the PostgreSQL server compressed while sending it (one standard
   * stream of the codec; decoded the same way).
   */
  location?: 'server';
}

export type EncryptionAlgorithm = 'none' | 'aes-256-gcm';

export interface EncryptionSpec {
  algorithm: EncryptionAlgorithm;
  /** Fingerprint of the key (never the key): lets restore say "wrong key" before reading data. */
  keyId?: string;
  /**
   * true: stored in the format RKYENC02, whose AES-GCM associated data binds the artifact to its
   * backup's tier and id and to its name. Absent on artifacts encrypted before (RKYENC01, unbound).
   */
  bound?: boolean;
}

/**
 * One stored file of a backup. `sha256` and `storedBytes` describe the bytes in the store
 * (after compression and encryption); `bytes` and `logicalSha256` the bytes before them, so a
 * restore checks both what it fetched and what it produced.
 *
 * A base tar the server compressed (`compression.location` 'server') never passed through rookery
 * uncompressed: it has no `logicalSha256`, and `bytes` is the server's count of the tar's bytes.
 * Its content is covered by the stored sha256 (exactly what the server sent) and by the
 * per-file CRC32C of PostgreSQL's backup_manifest, stored beside it (kind 'pg-manifest').
 */
/**
 * A user tablespace of a physical backup (one artifact each, kind 'tablespace-tar': its files
 * relative to its directory, PG_<version>_<catversion>/…, as PostgreSQL sends them).
 */
export interface TablespaceRecord {
  oid: number;
  /** pg_tablespace.spcname at the backup (for people; the OID is what the cluster uses). */
  name: string;
  /** Its directory on the backed-up server: the target of pg_tblspc/<oid>. */
  location: string;
}

/**
 * What an artifact holds. Block-level incrementals of physical tiers (issue 17; formats in the
 * engine's block-incremental/README.md):
 *  - page-index: one per tar (data directory, each tablespace) of a physical backup on a tier that
 *    takes incrementals: a digest per 8 KiB page of every relation file, what the next incremental
 *    is compared against (an incremental's: by default a delta against its parent's, `pageIndex`);
 *  - base-incremental / tablespace-incremental: in place of base-tar / tablespace-tar in an
 *    incremental backup: the pages changed since the same tar of the parent backup, plus block maps.
 */
export type ArtifactKind =
  | 'base-tar'
  | 'tablespace-tar'
  | 'base-incremental'
  | 'tablespace-incremental'
  | 'page-index'
  | 'pg-manifest'
  | 'dump'
  | 'changeset'
  | 'wal';

/** The artifact kinds that carry a physical backup's files (a full tar, or an incremental of one). */
export const PHYSICAL_DATA_KINDS: readonly ArtifactKind[] = ['base-tar', 'tablespace-tar', 'base-incremental', 'tablespace-incremental'];

export interface ArtifactRecord {
  name: string;
  /**
   * changeset: a content incremental's SQL script (see the engine's logical-changeset);
   * pg-manifest: PostgreSQL's backup_manifest of a physical backup whose tar does not hold it.
   */
  kind: ArtifactKind;
  /**
   * A tablespace-tar's tablespace: restored to its location, or where --tablespace-map says. Also
   * set on the tablespace's page-index and tablespace-incremental artifacts (absent on those of the
   * data directory).
   */
  tablespace?: TablespaceRecord;
  /**
   * A base-incremental / tablespace-incremental's pages: how many the tar it was compared from
   * held (read, one digest each) and how many changed (stored), with the files stored whole; from
   * PostgreSQL 17 (BASE_BACKUP INCREMENTAL) also how many the server did not send (skipped).
   */
  incremental?: { pagesRead: number; pagesStored: number; wholeFiles: number; removed: number; pagesSkipped?: number };
  /**
   * A page-index stored as a delta against the same tar's page index of backup `deltaOf` (the
   * parent of this incremental; its index header says the same): the index is that chain's indexes
   * read oldest first. Absent: a full index (every full backup's, and an incremental's taken with
   * `physical.incremental.deltaIndex: false` or before deltas existed).
   */
  pageIndex?: { deltaOf: string };
  bytes: number;
  storedBytes: number;
  sha256: string;
  logicalSha256?: string;
  compression: CompressionSpec;
  encryption: EncryptionSpec;
}

export interface PostgresIdentity {
  version: string;
  versionNum: number;
  systemIdentifier: string;
}

/**
 * The description of one backup, written to the store after every artifact is durable: a backup
 * without a manifest does not exist. `checksum` is the sha256 of the canonical JSON of every other
 * field, so a damaged or hand-edited manifest is detected on read.
 */
export interface BackupManifest {
  formatVersion: number;
  id: string;
  tier: TierName;
  database: string;
  type: BackupType;
  method: BackupMethod;
  startedAt: string;
  finishedAt: string;
  postgres: PostgresIdentity;
  timeline: number | null;
  startLsn: string | null;
  stopLsn: string | null;
  /** WAL segments (first, last) a physical backup needs to become consistent. */
  walRange: { start: string; stop: string } | null;
  /**
   * Physical backups: the next transaction id (xid8, decimal) read right after the backup stopped.
   * Every transaction with a smaller id was assigned before the backup ended, so a recovery to a
   * target xid can start from this backup only when target ≥ nextXid. Absent in older manifests.
   */
  nextXid?: string;
  /**
   * Physical backups: the server's settings that load code (shared_preload_libraries,
   * local_preload_libraries, session_preload_libraries, dynamic_library_path) as it ran them when
   * the backup started, those the backup role could read. A restore keeps a restored configuration's
   * library setting only when it matches this record. Absent in older manifests.
   */
  librarySettings?: Record<string, string>;
  parent: string | null;
  retentionUntil: string;
  storageClass: StorageClass;
  regions: string[];
  bytes: number;
  storedBytes: number;
  artifacts: ArtifactRecord[];
  tool: { name: 'rookery'; version: string };
  /** Logical backups: how their dumps are applied (absent for physical backups). */
  logical?: LogicalBackupInfo;
  /**
   * HMAC of every other field but `checksum`, under the repository's signing key (absent when the
   * repository was written without one). `checksum` covers it too, so a reader without the key
   * still detects damage.
   */
  signature?: RecordSignature;
  checksum: string;
}

/** What a logical restore needs beyond the artifacts: the order to apply them in. */
export interface LogicalBackupInfo {
  format: 'custom' | 'directory';
  /**
   * Applied in order, each restoring some sections of one artifact: a split dump's big table is
   * loaded between the other tables' data and the constraints and indexes (post-data) that need it.
   */
  steps: { artifact: string; sections: ('pre-data' | 'data' | 'post-data')[] }[];
  /** pg_dump patterns whose rows were left out by policy (definitions kept). */
  excludedTableData: string[];
  /** Materialized views dumped without contents: a restore refreshes them. */
  materializedViews: string[];
  /** The exported snapshot every dump of the backup read, so they agree with each other. */
  snapshot: string | null;
  /** Tiers with incrementals: where this backup stands in the database's change tracking. */
  changeTracking?: ChangeTrackingPoint;
  /** Incrementals: the changeset artifact applied on top of the parent (steps is then empty). */
  changes?: ChangesetInfo;
}

/**
 * The point a full or incremental read the database at, which the next incremental starts from:
 * it carries every change of a transaction visible in its own snapshot and not in this one.
 */
export interface ChangeTrackingPoint {
  /** pg_current_snapshot() of the backup's transaction, `xmin:xmax:xip,…` (xid8). */
  snapshot: string;
  /** The id of the change tracking installation: a reinstall (changes not logged) breaks chains. */
  installation: string;
  /** sha256 of the schema's definitions (pg_dump --schema-only): an incremental needs the same. */
  schemaFingerprint: string;
  /**
   * The same definitions as a sha256 per table (everything that belongs to it) and one for the
   * rest: what tells a partition layout change (which an incremental follows) from any other.
   */
  schemaParts?: SchemaParts;
  /** The tables the next incremental follows (leaf partitions among them), quoted, sorted. */
  tracked?: string[];
  /** Partitioned tables (no rows of their own) and their partitions: what a layout change is named against. */
  partitioned?: PartitionedTableLayout[];
  /** What the next incremental cannot follow, and why. */
  untracked?: { table: string; reason: string }[];
}

/** A schema as hashes: one per table (quoted, schema-qualified), one for every other definition. */
export interface SchemaParts {
  rest: string;
  tables: Record<string, string>;
}

/** A partitioned table and its direct partitions, each with its bound (`FOR VALUES …` or `DEFAULT`). */
export interface PartitionedTableLayout {
  table: string;
  partitions: { table: string; bound: string }[];
}

/** What an incremental's changeset holds, table by table. */
export interface ChangesetInfo {
  artifact: string;
  tables: {
    /** Schema-qualified, quoted as in SQL. */
    table: string;
    /** 'keys': the changed primary keys are deleted, then their current rows copied in; 'whole': all rows replace the table's. */
    mode: 'keys' | 'whole';
    /** Changed keys (mode 'keys'); rows - keys of them were deleted. */
    keys: number;
    rows: number;
  }[];
  /** Sequences set to their value at the incremental's time. */
  sequences: number;
  /**
   * The partition layout changes the changeset follows (partitions attached, detached, created,
   * dropped), applied before the rows: the tables recreated from their definition at the
   * incremental's snapshot (their rows carried whole, mode 'whole'), and the tables dropped.
   */
  layout?: { changes: string[]; recreated: string[]; dropped: string[] };
}

export type UnsignedManifest = Omit<BackupManifest, 'checksum'>;

/** JSON with object keys sorted at every depth: the same manifest always hashes the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

export function manifestChecksum(manifest: UnsignedManifest): string {
  return createHash('sha256').update(canonicalJson(manifest)).digest('hex');
}

export function signManifest(manifest: UnsignedManifest): BackupManifest {
  return { ...manifest, checksum: manifestChecksum(manifest) };
}

/** True when the manifest's own checksum matches its content. */
export function isManifestIntact(manifest: BackupManifest): boolean {
  const { checksum, ...rest } = manifest;
  return typeof checksum === 'string' && manifestChecksum(rest) === checksum;
}

/** The manifest signed with `key`, its checksum recomputed over the signature too. */
export function sealManifest(manifest: UnsignedManifest, key: SigningKey): BackupManifest {
  const body = manifestBody(manifest);
  return signManifest({ ...body, signature: signRecord('backup-manifest', body, key) });
}

/** Why the manifest's signature does not authenticate it under the keyring, or null when it does. */
export function manifestSignatureProblem(manifest: BackupManifest, keyring: SigningKeyring): string | null {
  return signatureProblem('backup-manifest', manifestBody(manifest), manifest.signature, keyring);
}

/** What a manifest's signature covers: every field but the signature and the checksum. */
function manifestBody(manifest: UnsignedManifest): Omit<BackupManifest, 'checksum' | 'signature'> {
  const body: Partial<BackupManifest> = { ...manifest };
  delete body.signature;
  delete body.checksum;
  return body as Omit<BackupManifest, 'checksum' | 'signature'>;
}

/** Artifact file extension for a codec: base.tar + '.zst'. */
export function codecExtension(codec: CompressionCodec): string {
  return { none: '', gzip: '.gz', zstd: '.zst', lz4: '.lz4' }[codec];
}
