import { StorageUnavailableError, ToolFailedError } from './rookery.errors';
import { isKnockOnError, rootCauseOf, systemErrorDetail } from './root-cause';

function errno(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

/** What node:stream/promises' pipeline rejects with when its signal aborts (the reason as cause). */
function abortError(cause?: unknown): Error {
  return Object.assign(new Error('The operation was aborted', cause === undefined ? undefined : { cause }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
  });
}

const enospc = errno('ENOSPC', 'ENOSPC: no space left on device, write');
const storeFull = new StorageUnavailableError("write of object 'oltp/backups/2026-12-06/x/base.tar.zst' failed: ENOSPC", {
  cause: enospc,
  retryable: false,
});
const prematureClose = errno('ERR_STREAM_PREMATURE_CLOSE', 'Premature close');
const reset = errno('ECONNRESET', 'aborted');
const toolFailed = new ToolFailedError('pg_basebackup', 1, 'pg_basebackup: error: could not read COPY data');
const shuttingDown = new Error('the service is shutting down');
const brokenPipe = errno('EPIPE', 'write EPIPE');
const tarFull = new ToolFailedError(
  'tar',
  2,
  'tar: base/5/1249: Cannot write: No space left on device\ntar: Exiting with failure status due to previous errors',
);

describe('isKnockOnError', () => {
  it.each([
    ['an AbortError', abortError(), true],
    ['a premature close', prematureClose, true],
    ['a destroyed stream', errno('ERR_STREAM_DESTROYED', 'Cannot call write after a stream was destroyed'), true],
    ['a store error wrapping an abort', new StorageUnavailableError('write failed: ABORT_ERR', { cause: abortError() }), true],
    ['ENOSPC', enospc, false],
    ['a store error wrapping ENOSPC', storeFull, false],
    ['a reset connection ("aborted", ECONNRESET)', reset, false],
    ['a failed tool', toolFailed, false],
    ['not an error', 'boom', false],
  ])('%s: %s', (_name, error, expected) => {
    expect(isKnockOnError(error)).toBe(expected);
  });
});

describe('rootCauseOf', () => {
  it.each([
    ["the store's ENOSPC behind the pipeline's abort", [abortError(), storeFull], storeFull],
    ["the store's ENOSPC behind a premature close", [prematureClose, storeFull], storeFull],
    ['the first real error when two are real', [toolFailed, storeFull], toolFailed],
    ['the reason an abort carries', [abortError(shuttingDown), prematureClose], shuttingDown],
    ['a reset behind the abort it caused', [abortError(), reset], reset],
    ['the first error when every one is a knock-on', [prematureClose, abortError()], prematureClose],
    ["tar's failure behind the broken pipe of its stdin", [brokenPipe, abortError(), tarFull], tarFull],
    ['a broken pipe when nothing else is real', [abortError(), brokenPipe], brokenPipe],
    ['a broken pipe before the abort it caused', [brokenPipe, abortError()], brokenPipe],
  ])('%s', (_name, errors, expected) => {
    expect(rootCauseOf(errors)).toBe(expected);
  });
});

describe('systemErrorDetail', () => {
  it.each([
    ['Node wording', enospc, 'no space left on device (ENOSPC)'],
    ['through the causes of a store error', storeFull, 'no space left on device (ENOSPC)'],
    ['a code whose message has no words', reset, 'connection reset by peer (ECONNRESET)'],
    ['a code without known words', errno('EWEIRD', 'odd'), 'EWEIRD'],
    ['no system error', toolFailed, null],
    ["a tool's stderr in strerror words", tarFull, 'no space left on device (ENOSPC)'],
    ["a tool's 'permission denied' (SQL says it too)", new ToolFailedError('pg_dump', 1, 'ERROR:  permission denied for table t'), null],
    ['not an error', undefined, null],
  ])('%s', (_name, error, expected) => {
    expect(systemErrorDetail(error)).toBe(expected);
  });
});
