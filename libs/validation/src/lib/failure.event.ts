import { isRookeryError } from '@rookery/core';
import { EventData } from '@rookery/events';

export type EventFailure = EventData<'dev.rookery.drill.failed'>['error'];

/** An error as the `error` of a *.failed event: its stable code, its message (bounded), whether a retry may help. */
export function eventFailure(error: unknown): EventFailure {
  return {
    code: isRookeryError(error) ? error.code : 'UNEXPECTED',
    message: (error instanceof Error ? error.message : String(error)).slice(0, 2000),
    retryable: isRookeryError(error) && error.retryable,
  };
}
