import { SourceUnavailableError } from '@rookery/core';
import { describePgUrl } from './pg-connection';
import { PgSqlClient } from './pg-sql.client';

/** What a backup records about the server it was taken from. */
export interface ServerInfo {
  /** server_version, e.g. '15.8 (Debian 15.8-1.pgdg120+1)'. */
  version: string;
  /** server_version_num, e.g. 150008. */
  versionNum: number;
  /** pg_control_system().system_identifier as a decimal string (it exceeds 2^53). */
  systemIdentifier: string;
  /** Timeline of the latest checkpoint (pg_control_checkpoint()). */
  timeline: number;
  /** Only visible to superusers and pg_read_all_settings members. */
  dataDirectory?: string;
  isInRecovery: boolean;
  /** wal_segment_size in bytes. */
  walSegmentSize: number;
  /**
   * The settings that load code into the server (shared_preload_libraries, …, dynamic_library_path)
   * the connecting role may read: a restore keeps these values and neutralises others. Settings
   * hidden from the role (shared_preload_libraries needs superuser or pg_read_all_settings) are absent.
   */
  librarySettings: Record<string, string>;
  /**
   * summarize_wal (PostgreSQL 17+): on, the server can send block-level incrementals itself
   * (BASE_BACKUP INCREMENTAL); false before 17 or when off.
   */
  summarizeWal: boolean;
}

/** The settings ServerInfo.librarySettings reads. */
export const LIBRARY_SETTINGS = [
  'shared_preload_libraries',
  'local_preload_libraries',
  'session_preload_libraries',
  'dynamic_library_path',
];

const SERVER_INFO_SQL = `
  select current_setting('server_version') as version,
         current_setting('server_version_num')::int as version_num,
         (select system_identifier::text from pg_control_system()) as system_identifier,
         (select timeline_id from pg_control_checkpoint()) as timeline,
         (select setting from pg_settings where name = 'data_directory') as data_directory,
         pg_is_in_recovery() as is_in_recovery,
         (select setting::bigint from pg_settings where name = 'wal_segment_size') as wal_segment_size,
         (select json_object_agg(name, setting) from pg_settings where name = any($1::text[])) as library_settings,
         coalesce((select setting = 'on' from pg_settings where name = 'summarize_wal'), false) as summarize_wal`;

interface ServerInfoRow extends Record<string, unknown> {
  version: string;
  version_num: number;
  system_identifier: string;
  timeline: number;
  data_directory: string | null;
  is_in_recovery: boolean;
  wal_segment_size: string | number | null;
  library_settings: Record<string, string> | null;
  summarize_wal: boolean;
}

/** Control queries against the database being backed up. */
export class PgControlClient {
  constructor(private readonly sql: PgSqlClient = new PgSqlClient()) {}

  async serverInfo(url: string): Promise<ServerInfo> {
    let rows: ServerInfoRow[];
    try {
      rows = await this.sql.query<ServerInfoRow>(url, SERVER_INFO_SQL, [LIBRARY_SETTINGS]);
    } catch (error) {
      if (error instanceof SourceUnavailableError) throw error;
      throw new SourceUnavailableError(`cannot read server information from postgres ${describePgUrl(url)}: ${(error as Error).message}`, {
        cause: error,
        retryable: false,
        hint: 'the backup role needs execute on pg_control_system() and pg_control_checkpoint() (superuser or granted)',
      });
    }
    const row = rows[0];
    return {
      version: row.version,
      versionNum: Number(row.version_num),
      systemIdentifier: String(row.system_identifier),
      timeline: Number(row.timeline),
      dataDirectory: row.data_directory ?? undefined,
      isInRecovery: row.is_in_recovery,
      walSegmentSize: Number(row.wal_segment_size),
      librarySettings: { ...(row.library_settings ?? {}) },
      summarizeWal: row.summarize_wal === true,
    };
  }

  /** Total size of every database of the cluster (bytes), for progress bars. */
  async clusterSize(url: string): Promise<number> {
    const rows = await this.sql.query<{ size: string }>(url, 'select sum(pg_database_size(oid))::text as size from pg_database');
    return Number(rows[0]?.size ?? 0);
  }

  /**
   * The user tablespaces (everything but pg_default and pg_global, which live in the data
   * directory): OID, name and directory. Names come from here, as BASE_BACKUP sends OIDs only.
   */
  async tablespaces(url: string): Promise<{ oid: number; name: string; location: string }[]> {
    const rows = await this.sql.query<{ oid: string; name: string; location: string }>(
      url,
      `select oid::text, spcname as name, pg_tablespace_location(oid) as location
         from pg_tablespace where spcname not in ('pg_default', 'pg_global') order by oid`,
    );
    return rows.map((row) => ({ oid: Number(row.oid), name: row.name, location: row.location }));
  }

  /** The next transaction id to be assigned (xid8, decimal): recorded when a backup ends. */
  async nextXid(url: string): Promise<string> {
    const rows = await this.sql.query<{ next: string }>(url, 'select pg_snapshot_xmax(pg_current_snapshot())::text as next');
    return String(rows[0]?.next);
  }
}
