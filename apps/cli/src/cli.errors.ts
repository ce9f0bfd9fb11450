import { RookeryError } from '@rookery/core';

/** Exit statuses scripts can rely on. */
export const EXIT = { ok: 0, failure: 1, usage: 2, busy: 75 } as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof RookeryError) {
    if (error.family === 'config') return EXIT.usage;
    if (error.code === 'LOCK_HELD') return EXIT.busy;
  }
  return EXIT.failure;
}

/** One clear line on stderr: what failed, on what, and a hint when there is one. */
export function errorLine(error: unknown): string {
  if (error instanceof RookeryError) {
    return `rookery: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return `rookery: unexpected error: ${message.split('\n')[0]}`;
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
