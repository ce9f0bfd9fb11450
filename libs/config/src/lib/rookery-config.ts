import { join } from 'node:path';
import { CompressionSpec, DEFAULT_POLICIES, Secret, TIER_NAMES, TierName, TierPolicy, UnknownTierError, isTierName } from '@rookery/core';

/** The validated, frozen configuration every command and service receives. */
/**
 * Keys that authenticate what rookery writes to the repository (manifests, holds, copy markers).
 * `signingKey`: integrity.keyFile/keyEnv, for a repository without encryption; absent, the
 * encryption key signs. `verifyKeys`: older keys (integrity.verifyKeyFiles) still accepted on read
 * during a rotation. With any key, unsigned records are refused.
 */
export interface IntegrityConfig {
  signingKey: Secret<Buffer> | null;
  verifyKeys: readonly Secret<Buffer>[];
}

export interface RookeryConfig {
  /** Where the config came from, for messages: a file path or 'built-in defaults'. */
  source: string;
  /** Store URLs; the first is the primary. Empty when none was configured. */
  repositories: readonly string[];
  repository: RepositoryConfig;
  /**
   * location (physical base backups): 'server' has PostgreSQL 15+ compress the tar while sending
   * it (zstd threads in the walsender, only compressed bytes on the wire), 'client' compresses in
   * rookery's workers. Servers before 15 and logical dumps always use the client.
   */
  compression: Omit<CompressionSpec, 'location'> & { workers: number; chunkSize: number; location: 'server' | 'client' };
  /** Client-side encryption key material (file content or env value), parsed by the pipeline. */
  encryptionKey: Secret<Buffer> | null;
  /**
   * The environment variable the key was read from (encryption.keyEnv or ROOKERY_ENCRYPTION_KEY),
   * so a restored server's restore_command can be handed it through a private file, never its env.
   */
  encryptionKeyEnv?: string;
  /**
   * encryption.required (default: true when a key is configured): an artifact or WAL file that is
   * not encrypted is refused on read, whatever its manifest or name says. false only to read
   * backups and WAL taken before encryption was turned on.
   */
  encryptionRequired: boolean;
  integrity: IntegrityConfig;
  postgres: PostgresConfig;
  catalog: { url: string };
  service: ServiceHttpConfig;
  auth: AuthConfig;
  tiers: Readonly<Record<TierName, TierConfig>>;
  walStream: WalStreamConfig;
  wal: WalArchiveConfig;
  events: EventsConfig;
  validator: ValidatorConfig;
  restore: RestoreConfig;
  restores: ServiceRestoresConfig;
  backup: BackupConfig;
}

/** A service's HTTP listener and what it accepts before any route runs. */
export interface ServiceHttpConfig {
  host: string;
  port: number;
  /** The largest request body (JSON) a service reads; a larger one is answered 413. Default 64 KiB. */
  bodyLimitBytes: number;
  /** Origins (scheme://host[:port]) whose browser requests are accepted; any other Origin is refused. Default none. */
  allowedOrigins: readonly string[];
  /** The gRPC listener beside HTTP (same tokens, same roles); null: none. */
  grpc: ServiceGrpcConfig | null;
}

/** A service's gRPC listener. Without tls it is plaintext (for a loopback or a mesh that encrypts). */
export interface ServiceGrpcConfig {
  /** Default: service.host. */
  host: string;
  port: number;
  tls: {
    /** PEM certificate (chain) and key the server presents; absolute paths, read at start. */
    certFile: string;
    keyFile: string;
    /** PEM CA that client certificates must chain to; with it a client may present one. */
    clientCaFile: string | null;
    /** Mutual TLS: a client without a certificate from clientCaFile is refused. */
    requireClientCert: boolean;
  } | null;
}

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;

/**
 * How services authenticate callers. required: every route but GET /health needs a bearer token
 * that the token file or the JWT issuer's keys verify (a service with neither refuses to start).
 * none: no authentication at all, every call anonymous (the service logs a warning at start).
 */
export interface AuthConfig {
  mode: 'required' | 'none';
  /** Static tokens, hashed (`rookery auth token create`); resolved against the working directory. */
  tokenFile: string | null;
  jwt: {
    issuer: string;
    audience: string;
    jwksUrl: string | null;
    jwksFile: string | null;
    algorithms: readonly JwtAlgorithmName[];
    rolesClaim: string;
    tiersClaim: string;
    principalClaim: string;
    clockToleranceSeconds: number;
  } | null;
}

export type JwtAlgorithmName = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/**
 * Filesystem (file://) repositories belong to one account: the owner of the repository's root
 * directory. owner: the account rookery, run as root, hands what it creates to when that root does
 * not exist yet or is root's own (default 'postgres', the account the clusters and their
 * archive_command / restore_command run as). Run as any other account, rookery creates as itself.
 * group: a group the accounts that use the repository share (null: none); what rookery creates
 * gets it, directories setgid and group-writable.
 */
export interface RepositoryConfig {
  owner: string;
  group: string | null;
}

export const DEFAULT_REPOSITORY_OWNER = 'postgres';

/**
 * How rookery talks to PostgreSQL. idleTimeoutSeconds: a base backup fails when the server sends
 * nothing for this long while rookery reads (a stalled server or network; time a slower store
 * holds the connection paused does not count). The server is legitimately silent during the start
 * checkpoint BASE_BACKUP waits for (minutes with checkpoint 'spread'), hence a generous default of
 * 600 s (pgBackRest's db-timeout: 1800 s).
 */
export interface PostgresConfig {
  binDir?: string;
  idleTimeoutSeconds: number;
}

export const DEFAULT_PG_IDLE_TIMEOUT_SECONDS = 600;

/**
 * How a physical base backup handles memory. reuseBuffers (default true): with server-side
 * compression, the replication client gathers the archive into 1 MiB slabs and takes back each
 * slab the store has written (a store with write-completion hooks: CompletingWriteOptions.onWritten)
 * for later bytes instead of allocating fresh memory. Turn it off (every slab is fresh memory, left
 * to the garbage collector) to rule the fast path out while diagnosing a damaged backup, or with a
 * store driver that may hand back chunks it still holds.
 */
export interface BackupConfig {
  reuseBuffers: boolean;
}

/**
 * How a physical restore writes files. directWrites (default true): the big files of a base
 * backup are written by rookery with O_DIRECT, bypassing the page cache, and GNU tar extracts the
 * rest. Turn it off (GNU tar writes everything, through the page cache) on a file system or kernel
 * where O_DIRECT misbehaves, or to rule the fast path out while diagnosing a restore.
 */
export interface RestoreConfig {
  directWrites: boolean;
  /**
   * Restoring an incremental (default true): the digests of the full backup's pages in a file the
   * chain changed are taken from the full's page index for the check of the rebuilt file, instead
   * of hashing every such page again as it streams (the plain path, false).
   */
  chainDigestsFromIndex: boolean;
  /**
   * Restoring an incremental (default true): the full's tar is extracted as a full restore
   * extracts it while the incrementals are read, then the newest version of each changed page is
   * written in place. False: the full's tar streams through the chain combiner with the newest
   * pages in it (the plain path; always the way of a --delta restore).
   */
  chainInPlace: boolean;
  /**
   * `restore --delta` (default true): each existing file is read ahead in big windows (several
   * reads in flight) while the backup's bytes are compared as the decoded stream holds them, and
   * the decoder's buffers go back to it once compared. False: one window read, then compared page
   * by page (the plain path), to rule the fast path out while diagnosing a delta restore.
   */
  deltaReadAhead: boolean;
  /**
   * `restore --start` (default true): the WAL prefetcher of the server's restore_command runs in
   * the restore process while it waits for recovery, instead of in a process of its own that the
   * server's first miss starts: one node process fewer beside the server during replay. False: the
   * prefetcher process as without --start (the plain path).
   */
  prefetchInProcess: boolean;
}

/**
 * Restores a service runs for its callers (POST /restores, the RestoreService RPC). directoryRoot:
 * the one directory a physical restore through a service may write under (each restore into a
 * new directory below it). Null (the default): the service refuses physical restores, since a
 * caller must never choose where on the service's host files are written. logicalTargetHosts: the
 * database servers (host or host:port) a logical restore through a service may write into; null
 * (the default): only the tier's own server. The service connects with its own credentials, so a
 * server a caller picks freely could ask for them in clear text.
 */
export interface ServiceRestoresConfig {
  directoryRoot: string | null;
  logicalTargetHosts: readonly string[] | null;
}

/**
 * How wal-push archives. Per segment by default: PostgreSQL's archiver runs one archive_command
 * at a time. With archiveAsync, a background archiver (one per spool and tier, started by the
 * first wal-push that finds no acknowledgement) pushes the segments PostgreSQL has marked ready,
 * processMax at once and at most batchMax acknowledgements ahead, and records each one that is
 * durable in the store in spoolPath; wal-push only waits for that record (archiveTimeoutSeconds at
 * most). The archiver exits after archiverIdleSeconds without ready files.
 */
export interface WalArchiveConfig {
  archiveAsync: boolean;
  /** Absolute path of the directory for acknowledgements; null unless configured. */
  spoolPath: string | null;
  processMax: number;
  batchMax: number;
  archiveTimeoutSeconds: number;
  archiverIdleSeconds: number;
  /**
   * Segments the restore_command `rookery restore` writes prefetches ahead (wal-get --prefetch N,
   * through the shell fast path bin/rookery-wal-get, seeded by the restore). 0: a plain
   * `rookery wal-get` per file, nothing seeded, no spool, no "not archived" markers.
   */
  prefetchSegments: number;
  /**
   * wal-get and the prefetcher (default true): a zstd WAL file is decompressed into one reused
   * buffer, with decompression contexts reused from file to file, instead of a fresh buffer per
   * 128 KiB of output left to the garbage collector (what keeps a wal-get process at ~100 MiB
   * RSS). Turn it off (the plain stream pipeline) to rule the fast path out while diagnosing recovery.
   */
  reuseBuffers: boolean;
}

export const DEFAULT_WAL_ARCHIVE: WalArchiveConfig = Object.freeze({
  archiveAsync: false,
  spoolPath: null,
  processMax: 2,
  batchMax: 32,
  archiveTimeoutSeconds: 60,
  archiverIdleSeconds: 30,
  prefetchSegments: 32,
  reuseBuffers: true,
});

/**
 * Where events go (DESIGN §7): Kafka when brokers are configured (env ROOKERY_KAFKA_BROKERS or
 * events.brokers), else the in-process bus, the embedded default.
 */
export interface EventsConfig {
  brokers: readonly string[];
  clientId: string;
  partitions: number;
  /** Replication factor of topics rookery creates; null = the broker's default. */
  replicationFactor: number | null;
  /**
   * A service that consumes other processes' events (validator, compliance-reporting) may run on
   * the in-process bus, where it only sees its own: set for an embedded single-process setup.
   */
  allowInProcess: boolean;
  /** TLS to the brokers (events.tls): CA certificates (PEM; none: the system's), and a client certificate and key for mutual TLS. */
  tls: { ca: readonly string[]; cert: string | null; key: Secret<string> | null; rejectUnauthorized: boolean } | null;
  /** SASL (events.sasl); the password read from passwordFile or passwordEnv, never written inline. */
  sasl: { mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain'; username: string; password: Secret<string> } | null;
  /**
   * This service's event signing key (events.signing): every event it publishes to Kafka carries
   * an HMAC under it (`rookerykeyid` = keyId, `rookerysig`). A key per producing service.
   */
  signing: EventKey | null;
  /**
   * The producing services' keys (events.verifyKeys) a consumer accepts events from, each limited
   * to the event types it lists (`types`: exact types or prefixes ending in `.*`; null: any).
   */
  verifyKeys: readonly (EventKey & { types: readonly string[] | null })[];
  /**
   * events.allowUnsigned: a consumer accepts events without a proof (or under a key it does not
   * hold). Without it a consumer on Kafka needs verifyKeys and dead-letters what they do not prove.
   */
  allowUnsigned: boolean;
}

export interface EventKey {
  keyId: string;
  key: Secret<Buffer>;
}

/** A signing key shorter than this is refused (openssl rand -hex 32 gives 64 characters). */
export const MIN_EVENT_KEY_BYTES = 32;

/**
 * The validator service. requestWindowSeconds: at most one validation of a backup per window,
 * however often a backup.completed naming it arrives (a redelivery with a new id, a replay, a
 * flood): each validation reads the whole backup. Default 3600 s; 0 turns the limit off.
 */
export interface ValidatorConfig {
  requestWindowSeconds: number;
}

export const DEFAULT_VALIDATION_REQUEST_WINDOW_SECONDS = 3600;

/** The queue-wal service's synchronous WAL stream (pg_receivewal into a spool, uploaded to the repository). */
export interface WalStreamConfig {
  /** The tier whose primary is streamed (its pgUrl) and whose wal/ the segments go to. */
  tier: TierName;
  /** The permanent physical replication slot. */
  slot: string;
  /** The name the primary sees and synchronous_standby_names lists. */
  applicationName: string;
  /** Absolute path of the directory pg_receivewal writes into. */
  spoolDir: string;
  /**
   * What the primary does while the service is down. blocking: our name stays in
   * synchronous_standby_names, commits wait (RPO 0). degrade: the service removes its name when it
   * stops gracefully and puts it back when it starts, so commits proceed meanwhile (RPO > 0).
   */
  onDown: 'blocking' | 'degrade';
  /** The service sets synchronous_standby_names itself (ALTER SYSTEM) instead of only checking it. */
  manageSynchronousStandbyNames: boolean;
  restartBackoffMs: { initial: number; max: number };
}

export function defaultWalStreamConfig(cwd: string): WalStreamConfig {
  return {
    tier: 'queue',
    slot: 'rookery_queue_wal',
    applicationName: 'rookery_queue_wal',
    spoolDir: join(cwd, 'queue-wal-spool'),
    onDown: 'blocking',
    manageSynchronousStandbyNames: false,
    restartBackoffMs: { initial: 1_000, max: 30_000 },
  };
}

export interface TierConfig {
  policy: TierPolicy;
  /** The tier's database; a password in it is a secret and is passed to libpq via env only. */
  pgUrl: Secret<string> | null;
  checkpoint: 'fast' | 'spread';
}

export const DEFAULT_COMPRESSION: RookeryConfig['compression'] = Object.freeze({
  codec: 'zstd',
  level: 1,
  workers: 0,
  chunkSize: 4 * 1024 * 1024,
  location: 'server',
});

export function tierConfig(config: RookeryConfig, tier: string): TierConfig {
  if (!isTierName(tier)) throw new UnknownTierError(tier, TIER_NAMES);
  return config.tiers[tier];
}

/** Every tier's policy, by tier name (compliance views, reports). */
export function tierPolicies(config: RookeryConfig): Record<TierName, TierPolicy> {
  return Object.fromEntries(TIER_NAMES.map((tier) => [tier, config.tiers[tier].policy])) as Record<TierName, TierPolicy>;
}

export function defaultTierConfigs(): Record<TierName, TierConfig> {
  return Object.fromEntries(
    TIER_NAMES.map((tier) => [tier, { policy: { ...DEFAULT_POLICIES[tier] }, pgUrl: null, checkpoint: 'fast' as const }]),
  ) as Record<TierName, TierConfig>;
}
