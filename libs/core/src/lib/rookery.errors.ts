/**
 * One flat error taxonomy. Every error rookery raises on purpose is a RookeryError with a stable
 * `code` (scripts and transports map on it, never on the message), a `retryable` flag, an optional
 * operator `hint`, and the underlying `cause`. Messages are lowercase and name the object involved.
 */
export type ErrorFamily = 'config' | 'source' | 'storage' | 'backup' | 'restore' | 'event' | 'auth' | 'invariant';

/**
 * Every code a RookeryError carries, one line each: a new code is added here, and the compiler
 * then asks each transport mapping (CLI exit status, HTTP status) what it means there.
 */
export type ErrorCode =
  | 'CONFIG_INVALID' // a configuration file, flag or environment value is wrong
  | 'TIER_UNKNOWN' // a tier name no configuration defines
  | 'ENCRYPTION_KEY' // the encryption key is missing, unreadable or not the one the data needs
  | 'REPORT_NOT_WRITTEN' // the disaster recovery report could not be written where asked
  | 'SOURCE_UNAVAILABLE' // the database being backed up cannot be reached or answered unexpectedly
  | 'TOOL_FAILED' // an external tool (pg_basebackup, pg_ctl, …) exited non-zero
  | 'ARCHIVE_CHECK' // rookery check: the server does not archive WAL into this repository
  | 'WAL_INVALID' // wal-push was handed a file that is not the WAL segment its name says
  | 'STORAGE_NOT_FOUND' // the object is not in the store
  | 'STORAGE_UNAVAILABLE' // the store cannot be reached or failed the request
  | 'STORAGE_ACCESS_DENIED' // the store refused the credentials or the request
  | 'STORAGE_CONFLICT' // an object exists where the caller required absence
  | 'STORAGE_UNSUPPORTED' // the store lacks the capability asked for (storage classes, object lock, restore)
  | 'INTEGRITY' // stored bytes are not what the manifest says (checksum, size, authentication, signature)
  | 'WAL_CONFLICT' // a WAL file is already archived under the same name with different content
  | 'WAL_PUSH_FAILED' // the background archiver failed the WAL file an asynchronous wal-push waited for
  | 'REPOSITORY_NOT_FOUND' // no rookery repository where --repo (or the config) points
  | 'CATALOG_UNAVAILABLE' // the catalog database cannot be opened or migrated
  | 'REPLICATION_FAILED' // copying to a replica store failed for a reason outside the taxonomy
  | 'REGION_UNREACHABLE' // the store of the region chosen for disaster recovery did not answer
  | 'LOCK_HELD' // another backup of the tier holds the repository lock
  | 'INCREMENTAL_CHAIN' // an incremental has no usable parent: take a full backup
  | 'BACKUP_NOT_FOUND' // no backup with that id in the tier
  | 'RESTORE_NOT_FOUND' // no restore with that id in this service
  | 'NOT_RUNNING' // the backup or restore to cancel is not running in this service
  | 'RESTORE_TARGET' // the restore target (directory, server, recovery target) is unusable
  | 'WAL_NOT_FOUND' // the WAL file is not in the archive (how recovery finds its end)
  | 'OBJECT_ARCHIVED' // objects a restore needs are archived and not readable yet
  | 'DRILL_FAILED' // a restore drill's restore or data checks failed
  | 'EVENT_INVALID' // an event does not match its envelope or data schema
  | 'EVENT_UNAUTHENTIC' // an event's authenticity proof is missing, from an unknown key or does not match
  | 'EVENT_BUS_UNAVAILABLE' // the Kafka cluster cannot be reached or refused a request
  | 'UNAUTHENTICATED' // a service call without a valid bearer token (missing, expired, bad signature, unknown)
  | 'FORBIDDEN' // the caller is authenticated but its roles or tiers do not cover the call
  | 'INVARIANT'; // a bug: an internal invariant does not hold

export interface RookeryErrorOptions {
  hint?: string;
  cause?: unknown;
  retryable?: boolean;
}

export class RookeryError extends Error {
  readonly hint?: string;
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    readonly family: ErrorFamily,
    message: string,
    options: RookeryErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.retryable = options.retryable ?? false;
  }
}

/** A configuration file, flag or environment value is wrong; `issues` lists every bad key. */
export class ConfigError extends RookeryError {
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
    options: RookeryErrorOptions = {},
  ) {
    super('CONFIG_INVALID', 'config', message, options);
  }
}

export class UnknownTierError extends RookeryError {
  constructor(tier: string, known: readonly string[]) {
    super('TIER_UNKNOWN', 'config', `unknown tier '${tier}'`, {
      hint: `known tiers: ${known.join(', ')}`,
    });
  }
}

/** The database being backed up cannot be reached or answered unexpectedly. */
export class SourceUnavailableError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('SOURCE_UNAVAILABLE', 'source', message, { retryable: true, ...options });
  }
}

/** An external tool (pg_basebackup, pg_ctl, …) exited non-zero. */
export class ToolFailedError extends RookeryError {
  constructor(
    readonly tool: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
    options: RookeryErrorOptions = {},
  ) {
    const detail = stderrTail.trim().split('\n').slice(-3).join(' | ');
    super('TOOL_FAILED', 'source', `${tool} failed with exit code ${exitCode ?? 'signal'}${detail ? `: ${detail}` : ''}`, options);
  }
}

export class StorageNotFoundError extends RookeryError {
  constructor(
    readonly key: string,
    options: RookeryErrorOptions = {},
  ) {
    super('STORAGE_NOT_FOUND', 'storage', `object '${key}' not found in store`, options);
  }
}

/** The store cannot be reached or refused the request (network, permissions, credentials). */
export class StorageUnavailableError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('STORAGE_UNAVAILABLE', 'storage', message, { retryable: true, ...options });
  }
}

export class StorageAccessDeniedError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('STORAGE_ACCESS_DENIED', 'storage', message, {
      hint: 'check the store credentials (AWS SDK default chain) and bucket policy',
      ...options,
    });
  }
}

/** An object exists where the caller required absence (conditional create lost a race). */
export class StorageConflictError extends RookeryError {
  constructor(
    readonly key: string,
    options: RookeryErrorOptions = {},
  ) {
    super('STORAGE_CONFLICT', 'storage', `object '${key}' already exists`, options);
  }
}

/** Stored bytes are not what the manifest says they should be (checksum, size, authentication). */
export class IntegrityError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('INTEGRITY', 'storage', message, options);
  }
}

/** A call to a service without a token it accepts; the message says why (never the token). */
export class UnauthenticatedError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('UNAUTHENTICATED', 'auth', message, options);
  }
}

/** An authenticated caller asked for something its roles or tier scope do not allow. */
export class ForbiddenError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('FORBIDDEN', 'auth', message, options);
  }
}

/** Another backup of the same tier holds the repository lock. */
export class LockHeldError extends RookeryError {
  constructor(tier: string, holder: string) {
    super('LOCK_HELD', 'backup', `a backup of tier '${tier}' is already running (${holder})`, {
      retryable: true,
      hint: 'wait for it to finish; a lock whose holder died is broken automatically',
    });
  }
}

/** A restore of the tier is already running in this service: one at a time per tier. */
export class RestoreRunningError extends RookeryError {
  constructor(tier: string, running: string) {
    super('LOCK_HELD', 'restore', `a restore of tier '${tier}' is already running in this service (${running})`, {
      retryable: true,
      hint: 'wait for it to finish, or cancel it',
    });
  }
}

export class BackupNotFoundError extends RookeryError {
  constructor(tier: string, id: string) {
    super('BACKUP_NOT_FOUND', 'restore', `backup '${id}' of tier '${tier}' not found`, {
      hint: `list backups with: rookery info --tier ${tier}`,
    });
  }
}

/** A restore a service was asked about that it does not know (it keeps its newest 100 in memory). */
export class RestoreNotFoundError extends RookeryError {
  constructor(id: string) {
    super('RESTORE_NOT_FOUND', 'restore', `restore '${id}' not found in this service`, {
      hint: 'list the restores it knows with GET /restores (a restarted service forgets earlier ones)',
    });
  }
}

/** A cancel of something this process is not running (finished already, or run by another process). */
export class NotRunningError extends RookeryError {
  constructor(family: 'backup' | 'restore', what: string, status: string) {
    super('NOT_RUNNING', family, `${what} is not running in this service (${status}); nothing to cancel`);
  }
}

export class RestoreTargetError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('RESTORE_TARGET', 'restore', message, options);
  }
}

export class EncryptionKeyError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('ENCRYPTION_KEY', 'config', message, options);
  }
}

/** A bug: an internal invariant does not hold. */
export class InvariantError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('INVARIANT', 'invariant', message, options);
  }
}

export function isRookeryError(error: unknown): error is RookeryError {
  return error instanceof RookeryError;
}

/**
 * A WAL file is already archived under the same name with different content. Never overwritten:
 * two servers archiving into one repository, or a restored copy promoted without a new timeline.
 */
export class WalConflictError extends RookeryError {
  constructor(name: string, tier: string, options: RookeryErrorOptions = {}) {
    super('WAL_CONFLICT', 'storage', `WAL file '${name}' of tier '${tier}' is already archived with different content`, {
      hint: 'another server may be archiving into this repository; check archive_command on every server of the tier',
      ...options,
    });
  }
}

/** The WAL file is not in the repository (how recovery finds the end of the archive). */
export class WalNotFoundError extends RookeryError {
  constructor(name: string, tier: string, options: RookeryErrorOptions = {}) {
    super('WAL_NOT_FOUND', 'restore', `WAL file '${name}' of tier '${tier}' is not in the archive`, options);
  }
}

/** `rookery check`: the server does not archive into this repository (setting, command, or timeout). */
export class ArchiveCheckError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('ARCHIVE_CHECK', 'source', message, options);
  }
}

/**
 * A content incremental cannot be taken or applied as a chain: no full to chain to, the schema
 * changed since the parent, or the change tracking no longer covers the time since the parent.
 * The way out is always a full backup, which the hint says.
 */
export class IncrementalChainError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('INCREMENTAL_CHAIN', 'backup', message, options);
  }
}

/**
 * wal-push was handed a file that is not the WAL segment its name says (too short, no WAL page
 * header, another segment's or another database system's): nothing is stored.
 */
export class InvalidWalFileError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('WAL_INVALID', 'source', message, {
      hint: "archive_command must pass %p of this server's pg_wal, and the tier's repository must be this server's",
      ...options,
    });
  }
}

/** The store cannot do what was asked (no storage classes, no Object Lock, no restore API). */
export class StorageUnsupportedError extends RookeryError {
  constructor(message: string, options: RookeryErrorOptions = {}) {
    super('STORAGE_UNSUPPORTED', 'storage', message, options);
  }
}

/** Objects needed for a restore are archived and not readable yet; a restore of them was asked for. */
export class ArchivedObjectError extends RookeryError {
  constructor(
    readonly keys: readonly string[],
    message: string,
    options: RookeryErrorOptions = {},
  ) {
    super('OBJECT_ARCHIVED', 'restore', message, { retryable: true, ...options });
  }
}

/** An event that does not match its envelope or data schema: never published, never consumed. */
export class EventSchemaError extends RookeryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EVENT_INVALID', 'event', message, options);
  }
}

/**
 * An event whose authenticity proof (the producing service's HMAC) is missing, names a key this
 * consumer does not hold, or does not match: set aside (dead-lettered), never handled, never retried.
 */
export class EventUnauthenticError extends RookeryError {
  constructor(message: string) {
    super('EVENT_UNAUTHENTIC', 'event', message, {
      hint: 'every producing service needs events.signing, and every consumer its key in events.verifyKeys',
    });
  }
}

/** The Kafka cluster cannot be reached or refused a request; the outbox keeps the events. */
export class EventBusUnavailableError extends RookeryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('EVENT_BUS_UNAVAILABLE', 'event', message, {
      retryable: true,
      hint: 'events stay in the outbox and are relayed when Kafka is back',
      ...options,
    });
  }
}

/** A drill whose restore or data checks failed (the RTO is a figure, not a failure); `failures` summarises the failed checks. */
export class DrillFailedError extends RookeryError {
  constructor(drill: { backupId: string; tier: string }, failures: string) {
    super('DRILL_FAILED', 'restore', `restore drill of backup '${drill.backupId}' (tier ${drill.tier}) failed: ${failures}`, {
      hint: 'the backup did not restore to usable data: run rookery verify on it and look at the failed check',
    });
  }
}

/** The chosen region's store did not answer: nothing was planned or written. */
export class RegionUnreachableError extends RookeryError {
  constructor(region: string, store: string, cause: unknown) {
    super(
      'REGION_UNREACHABLE',
      'storage',
      `region '${region}' is not reachable (${store}): ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
        retryable: true,
        hint: 'check the network path and credentials to that store, or choose another region with --region',
      },
    );
  }
}

/**
 * The repository named by --repo (or the config) is not there, or holds something that is not a
 * rookery repository: a mistyped path or bucket must not read as "no backups".
 */
export class RepositoryNotFoundError extends RookeryError {
  constructor(repository: string, why: string) {
    super('REPOSITORY_NOT_FOUND', 'storage', `no rookery repository at ${repository}: ${why}`, {
      hint: 'check --repo (or repositories in the config file); a new repository is created by its first backup',
    });
  }
}
