import { RookeryError, ToolFailedError } from './rookery.errors';

/** Node's codes for a stream torn down because something else failed or was aborted. */
const KNOCK_ON_CODES = new Set(['ABORT_ERR', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED']);

/**
 * An Error by shape: errors Node makes (fs, net) can come from another realm than the caller's
 * Error (jest's sandbox), where instanceof says no.
 */
function isErrorLike(error: unknown): error is Error {
  return typeof error === 'object' && error !== null && typeof (error as Error).message === 'string';
}

function isAbortLike(error: unknown): error is Error {
  if (!isErrorLike(error)) return false;
  return error.name === 'AbortError' || KNOCK_ON_CODES.has((error as NodeJS.ErrnoException).code ?? '');
}

function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * An error that only reports that something else failed first: a stream destroyed or aborted
 * because another stage, the store, or our own teardown stopped it ("The operation was
 * aborted", "Premature close"), also when a store wrapped it into an error of its own.
 */
export function isKnockOnError(error: unknown): boolean {
  if (isAbortLike(error)) return true;
  if (!isErrorLike(error) || error.cause === undefined || errnoOf(error)) return false;
  return isKnockOnError(error.cause);
}

/** The reason an abort carries (an AbortError made from a signal keeps it as its cause), else the error. */
function withoutAbort(error: unknown): unknown {
  let current = error;
  while (isAbortLike(current) && current.cause !== undefined && current.cause !== current) current = current.cause;
  return current;
}

/**
 * The error that explains a failure, given the errors of its parts in the order they arrived: the
 * first that is not a knock-on of another (an abort's reason counts as the reason), else the
 * first. When a store's ENOSPC tears down a pipeline, the pipeline's "The operation was aborted"
 * may arrive first: it is not what the user needs to read.
 */
export function rootCauseOf(errors: readonly unknown[]): unknown {
  const candidates = errors.map(withoutAbort);
  const real = candidates.filter((error) => !isKnockOnError(error));
  // A write into a pipe whose reader died (tar's stdin after tar failed on ENOSPC) only tells
  // that the reader failed: its own failure, when it is among them, explains it.
  return real.find((error) => !isBrokenPipe(error)) ?? real[0] ?? candidates[0];
}

/** EPIPE anywhere in the cause chain: the other end of a pipe or socket went away. */
function isBrokenPipe(error: unknown): boolean {
  const seen = new Set<unknown>();
  for (let current = error; isErrorLike(current) && !seen.has(current); current = current.cause) {
    seen.add(current);
    if (errnoOf(current) === 'EPIPE') return true;
  }
  return false;
}

/**
 * A system error anywhere in the cause chain as words and code: 'no space left on device
 * (ENOSPC)', 'connection reset by peer (ECONNRESET)', also one a failed tool printed ('tar:
 * base/5/1249: Cannot write: No space left on device'); null when there is none.
 */
export function systemErrorDetail(error: unknown): string | null {
  const seen = new Set<unknown>();
  for (let current = error; isErrorLike(current) && !seen.has(current); current = current.cause) {
    seen.add(current);
    if (current instanceof ToolFailedError) {
      const reported = TOOL_REPORTED_CODES.find((code) => current.stderrTail.toLowerCase().includes(SYSTEM_ERROR_WORDS[code]));
      if (reported) return `${SYSTEM_ERROR_WORDS[reported]} (${reported})`;
    }
    const code = errnoOf(current);
    if (!code || current instanceof RookeryError) continue;
    // Node's own wording: 'ENOSPC: no space left on device, write'.
    const words = new RegExp(`^${code}: ([^,]+)`).exec(current.message)?.[1] ?? SYSTEM_ERROR_WORDS[code];
    return words ? `${words} (${code})` : code;
  }
  return null;
}

/** Words for codes whose errors carry none (network errors say 'read ECONNRESET', 'aborted'). */
const SYSTEM_ERROR_WORDS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'input/output error',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  ECONNRESET: 'connection reset by peer',
  ECONNREFUSED: 'connection refused',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'broken pipe',
  ENOTFOUND: 'host not found',
};

/**
 * Codes recognised in a failed tool's stderr by their strerror words: those of a file system that
 * cannot take the data (never EACCES: 'permission denied' is also what SQL says of a table).
 */
const TOOL_REPORTED_CODES = ['ENOSPC', 'EDQUOT', 'EROFS', 'EIO'];
