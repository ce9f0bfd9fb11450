import { ArgumentsHost, Logger, NotFoundException } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import type { Observable } from 'rxjs';
import {
  BackupNotFoundError,
  ConfigError,
  ErrorCode,
  IntegrityError,
  InvariantError,
  LockHeldError,
  RookeryError,
  SourceUnavailableError,
  StorageAccessDeniedError,
  StorageUnavailableError,
  ToolFailedError,
  UnknownTierError,
} from '@rookery/core';
import { RookeryErrorFilter, httpStatusForCode } from './rookery-error.filter';

function fakeHost() {
  const reply = { statusCode: 0, body: undefined as unknown, headers: {} as Record<string, string> };
  const response = {
    status(code: number) {
      reply.statusCode = code;
      return response;
    },
    setHeader(name: string, value: string) {
      reply.headers[name] = value;
    },
    json(body: unknown) {
      reply.body = body;
    },
  };
  const host = { getType: () => 'http', switchToHttp: () => ({ getResponse: () => response }) } as unknown as ArgumentsHost;
  return { host, reply };
}

describe('RookeryErrorFilter', () => {
  const filter = new RookeryErrorFilter();

  beforeAll(() => Logger.overrideLogger(false));

  it.each<[string, RookeryError, number]>([
    ['LOCK_HELD', new LockHeldError('oltp', 'rookery backup (cli), pid 7 on db1'), 409],
    ['INCREMENTAL_CHAIN', new RookeryError('INCREMENTAL_CHAIN', 'backup', "no full backup of tier 'content' to chain to"), 409],
    ['BACKUP_NOT_FOUND', new BackupNotFoundError('oltp', '20261126T020000Z-oltp'), 404],
    ['CONFIG_INVALID', new ConfigError("no database URL for tier 'oltp'", ['tiers.oltp.pgUrl']), 400],
    // A code this build does not know (from another version's record), named as a config problem.
    ['CONFIG_* (any)', new RookeryError('CONFIG_MISSING' as ErrorCode, 'config', 'missing key'), 400],
    ['TIER_UNKNOWN', new UnknownTierError('mail', ['oltp']), 400],
    ['STORAGE_UNAVAILABLE', new StorageUnavailableError("write of object 'x' failed: EIO"), 503],
    ['SOURCE_UNAVAILABLE', new SourceUnavailableError('cannot connect to 127.0.0.1:5432'), 503],
    ['STORAGE_ACCESS_DENIED', new StorageAccessDeniedError('permission denied'), 500],
    ['TOOL_FAILED', new ToolFailedError('pg_basebackup', 1, 'FATAL: no pg_hba.conf entry'), 500],
    ['INTEGRITY', new IntegrityError("checksum mismatch for artifact 'base.tar.zst'"), 500],
    ['INVARIANT', new InvariantError('refusing to commit unsigned manifest'), 500],
  ])('%s → %i with { code, message, hint }', (_name, error, status) => {
    const { host, reply } = fakeHost();
    filter.catch(error, host);
    expect(reply.statusCode).toBe(status);
    expect(httpStatusForCode(error.code)).toBe(status);
    expect(reply.body).toEqual({ code: error.code, message: error.message, ...(error.hint ? { hint: error.hint } : {}) });
  });

  it('asks retryable 503s to come back later', () => {
    const { host, reply } = fakeHost();
    filter.catch(new StorageUnavailableError('timeout'), host);
    expect(reply.headers['Retry-After']).toBe('30');
  });

  it('keeps the status and body of Nest HTTP exceptions', () => {
    const { host, reply } = fakeHost();
    filter.catch(new NotFoundException('Cannot GET /nothing'), host);
    expect(reply.statusCode).toBe(404);
    expect(reply.body).toMatchObject({ statusCode: 404, message: 'Cannot GET /nothing' });
  });

  it('answers unknown errors with a generic 500 that leaks nothing', () => {
    const { host, reply } = fakeHost();
    filter.catch(new Error('connect postgres://app:hunter2@db/x failed'), host);
    expect(reply.statusCode).toBe(500);
    expect(reply.body).toEqual({ code: 'INTERNAL', message: 'internal error' });
  });

  it('answers a gRPC call with its status, message and code (no stack), and a bug with INTERNAL', async () => {
    const rpcHost = { getType: () => 'rpc' } as unknown as ArgumentsHost;
    const statusOf = (exception: unknown) =>
      new Promise<{ code: number; details: string; metadata: { get(key: string): unknown[] } }>((resolve) =>
        (filter.catch(exception, rpcHost) as Observable<never>).subscribe({ error: resolve }),
      );
    const locked = await statusOf(new LockHeldError('oltp', 'a backup requested by api'));
    expect(locked).toMatchObject({ code: status.ALREADY_EXISTS, details: expect.stringContaining("tier 'oltp' is already running") });
    expect(locked.metadata.get('rookery-code')).toEqual(['LOCK_HELD']);
    expect(await statusOf(new NotFoundException('no such route'))).toMatchObject({ code: status.NOT_FOUND, details: 'no such route' });
    const bug = await statusOf(new TypeError('cannot read properties of undefined (secret path /etc/x)'));
    expect(bug).toMatchObject({ code: status.INTERNAL, details: 'internal error' });
  });
});
