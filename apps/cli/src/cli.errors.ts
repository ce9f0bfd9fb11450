import { ErrorCode, RookeryError } from '@rookery/core';

/** Exit statuses scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2, busy: 75 } as const;

export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/**
 * The exit status of each error code: usage for what the operator must correct (the config
 * family), busy for a lock another run holds (try again later), failure for the rest.
 */
const EXIT_BY_CODE: Readonly<Record<ErrorCode, ExitStatus>> = {
  CONFIG_INVALID: EXIT.usage,
  TIER_UNKNOWN: EXIT.usage,
  ENCRYPTION_KEY: EXIT.usage,
  REPORT_NOT_WRITTEN: EXIT.usage,
  SOURCE_UNAVAILABLE: EXIT.failure,
  TOOL_FAILED: EXIT.failure,
  ARCHIVE_CHECK: EXIT.failure,
  WAL_INVALID: EXIT.failure,
  STORAGE_NOT_FOUND: EXIT.failure,
  STORAGE_UNAVAILABLE: EXIT.failure,
  STORAGE_ACCESS_DENIED: EXIT.failure,
  STORAGE_CONFLICT: EXIT.failure,
  STORAGE_UNSUPPORTED: EXIT.failure,
  INTEGRITY: EXIT.failure,
  WAL_CONFLICT: EXIT.failure,
  WAL_PUSH_FAILED: EXIT.failure,
  REPOSITORY_NOT_FOUND: EXIT.failure,
  CATALOG_UNAVAILABLE: EXIT.failure,
  REPLICATION_FAILED: EXIT.failure,
  REGION_UNREACHABLE: EXIT.failure,
  LOCK_HELD: EXIT.busy,
  INCREMENTAL_CHAIN: EXIT.failure,
  BACKUP_NOT_FOUND: EXIT.failure,
  RESTORE_NOT_FOUND: EXIT.failure,
  NOT_RUNNING: EXIT.failure,
  RESTORE_TARGET: EXIT.failure,
  WAL_NOT_FOUND: EXIT.failure,
  OBJECT_ARCHIVED: EXIT.failure,
  DRILL_FAILED: EXIT.failure,
  EVENT_INVALID: EXIT.failure,
  EVENT_UNAUTHENTIC: EXIT.failure,
  EVENT_BUS_UNAVAILABLE: EXIT.failure,
  UNAUTHENTICATED: EXIT.failure,
  FORBIDDEN: EXIT.failure,
  INVARIANT: EXIT.failure,
};

/**
 * A rookery service refused or failed a call the CLI made for `--service` (its `{ code, message,
 * hint }` answer, or no answer at all): exit 1 whatever the code, since the service, not this
 * host, judged the request.
 */
export class ServiceCallError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    /** The HTTP status, absent when the service did not answer. */
    readonly status?: number,
    /** The service's error code ('LOCK_HELD', 'UNAUTHENTICATED', …). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ServiceCallError';
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof RookeryError) return EXIT_BY_CODE[error.code] ?? EXIT.failure;
  return EXIT.failure;
}

/** One clear line on stderr: what failed, on what, and a hint when there is one. */
export function errorLine(error: unknown): string {
  if (error instanceof RookeryError || error instanceof ServiceCallError) {
    return `rookery: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `rookery: unexpected error: ${message.split('\n')[0]}`;
}
