import { isRookeryError } from '@rookery/core';

/** A job's error for logs and records: `CODE: message` for a RookeryError, else the message. */
export function describeError(error: unknown): string {
  if (isRookeryError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

/** A wait that never keeps the process alive (bounded waits of start and shutdown). */
export function unrefDelay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
