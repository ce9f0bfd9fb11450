import type { ReplicationBaseBackup, ReplicationBaseBackupOptions } from '@rookery/postgres';
import type { TarExtraction } from './tar-extraction.factory';

/** The server facts a backup records. */
export interface ServerFacts {
  version: string;
  versionNum: number;
  systemIdentifier: string;
  /** wal_segment_size in bytes (recorded as the WAL archive's at the tier's first backup). */
  walSegmentSize?: number;
  /** The server's data directory, when the role may read it (a tablespace inside it is refused). */
  dataDirectory?: string;
  /** The library settings the role may read (recorded in a physical backup's manifest). */
  librarySettings?: Record<string, string>;
  /** summarize_wal on (PostgreSQL 17+): the server can send block-level incrementals itself. */
  summarizeWal?: boolean;
}

/**
 * What the engine needs from PostgreSQL and the OS, built by createEngine() on libs/postgres.
 * Kept as a small interface so the backup and restore flows read as orchestration.
 */
export interface PostgresTools {
  control: {
    serverInfo(url: string): Promise<ServerFacts>;
    /** Total size of every database of the cluster, for progress bars. */
    clusterSize(url: string): Promise<number>;
    /** The next transaction id to be assigned (xid8, decimal): recorded when a backup ends. */
    nextXid(url: string): Promise<string>;
    /** The user tablespaces: OID, name, directory (pg_tablespace_location). */
    tablespaces(url: string): Promise<{ oid: number; name: string; location: string }[]>;
  };
  basebackup: {
    start(options: { url: string; label: string; checkpoint: 'fast' | 'spread'; signal?: AbortSignal }): {
      stream: NodeJS.ReadableStream & import('node:stream').Readable;
      result: Promise<{ startLsn: string; stopLsn: string; timeline: number }>;
    };
    /**
     * BASE_BACKUP over the replication protocol (PostgreSQL 15+): with the server compressing, or
     * without compression for a cluster with tablespaces (pg_basebackup writes one archive to a pipe).
     */
    startServerCompressed(options: ReplicationBaseBackupOptions): ReplicationBaseBackup;
  };
  /** The `postgres` OS account when running as root (restored files are given to it), else null. */
  osUser(): Promise<{ uid: number; gid: number } | null>;
  /**
   * Extracts a tar stream into `directory` with GNU tar (as the postgres account when running as
   * root, so files get the right owner), renaming the member `rename.from` to `rename.to`; the big
   * regular files bypass tar and are written with O_DIRECT in this process (DirectTarSplitter)
   * unless restore.directWrites is off,
   * given to `owner` when running as root. The caller writes the tar to `sink`; `done` settles
   * when tar exited and every direct write landed; `abort()` stops both; `stats()` says how
   * many files and bytes took the direct path (restore.directWrites). `onMember` hears each
   * member tar extracts (path relative to `directory`, after the rename) as tar starts it.
   */
  extractTar(
    directory: string,
    rename: { from: string; to: string },
    options?: { onMember?: (member: string) => void; label?: string; owner?: { uid: number; gid: number } | null },
  ): TarExtraction;
  /** Flushes every file of the file system holding `path` to disk. */
  syncFileSystem(path: string): Promise<void>;
  /**
   * Starts a restored data directory and waits until it accepts connections (read-only ones while
   * it still recovers); returns the port. The server logs to RESTORED_SERVER_LOG in the data
   * directory, in English (the restore reads its recovery messages there). Its environment holds
   * no secret (the restore_command reads RESTORE_ENV_FILE). `isolated` (drills, DR checks): no
   * TCP listener, socket in the data directory, and rookery's own pg_hba (ISOLATED_HBA_FILE) that
   * lets only that role in, locally.
   */
  startRestored(dataDirectory: string, options: { port?: number; timeoutMs?: number; isolated?: { user: string } }): Promise<number>;
  /** Stops a server started by startRestored (fast shutdown). */
  stopRestored(dataDirectory: string): Promise<void>;
  /** True while a server runs on the data directory. */
  isRunning(dataDirectory: string): Promise<boolean>;
  /** Restore points in a directory of WAL segments of one timeline (pg_waldump). */
  restorePoints(walDir: string, options: { timeline: number; startLsn: string; endLsn: string }): Promise<{ name: string; lsn: string }[]>;
}

/** Where restored servers log and keep their isolated pg_hba: the postgres toolkit's restored-server driver decides. */
export { ISOLATED_HBA_FILE, RESTORED_SERVER_LOG } from '@rookery/postgres';
