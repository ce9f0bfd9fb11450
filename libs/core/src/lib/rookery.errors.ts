/**
 * One flat error taxonomy. Every error rookery raises on purpose is a RookeryError with a stable
 * `code` (scripts and transports map on it, never on the message), a `retryable` flag, an optional
 * operator `hint`, and the underlying `cause`. Messages are lowercase and name the object involved.
 */
export type ErrorFamily = 'config' | 'source' | 'storage' | 'backup' | 'restore' | 'event' | 'invariant';

export interface RookeryErrorOptions {
  hint?: string;
  cause?: unknown;
  retryable?: boolean;
}

export class RookeryError extends Error {
  readonly hint?: string;
  readonly retryable: boolean;

  constructor(
    readonly code: string,
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

/** Another backup of the same tier holds the repository lock. */
export class LockHeldError extends RookeryError {
  constructor(tier: string, holder: string) {
    super('LOCK_HELD', 'backup', `a backup of tier '${tier}' is already running (${holder})`, {
      retryable: true,
      hint: 'wait for it to finish; a lock whose holder died is broken automatically',
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
