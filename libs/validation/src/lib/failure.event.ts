import { isRookeryError } from '@rookery/core';
import { EventData } from '@rookery/events';

export type EventFailure = EventData<'dev.rookery.drill.failed'>['error'];

/**
 * An error as the `error` of a *.failed event: its stable code, its message (bounded, and without
 * the password of any URL it quotes: events are evidence kept for audits), whether a retry may help.
 */
export function eventFailure(error: unknown): EventFailure {
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: isRookeryError(error) ? error.code : 'UNEXPECTED',
    message: message.replace(/\/\/([^:/@\s]+):[^@/\s]*@/g, '//$1:***@').slice(0, 2000),
    retryable: isRookeryError(error) && error.retryable,
  };
}
