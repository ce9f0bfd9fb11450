import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictException, UnprocessableEntityException } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import {
  BackupNotFoundError,
  ConfigError,
  ForbiddenError,
  LockHeldError,
  NotRunningError,
  UnauthenticatedError,
  isRookeryError,
} from '@rookery/core';
import { makeTestCertificateAuthority } from '@rookery/testing';
import { grpcServerCredentials } from './grpc-server';
import { grpcErrorFor, grpcErrorForHttpException, grpcStatusForCode } from './grpc-status';

describe('gRPC statuses of rookery errors', () => {
  it.each([
    [new UnauthenticatedError('no token'), status.UNAUTHENTICATED],
    [new ForbiddenError('not an operator'), status.PERMISSION_DENIED],
    [new BackupNotFoundError('oltp', 'x'), status.NOT_FOUND],
    [new LockHeldError('oltp', 'a backup requested by api'), status.ALREADY_EXISTS],
    [new NotRunningError('backup', "backup 'x'", 'completed'), status.FAILED_PRECONDITION],
    [new ConfigError('type: no'), status.INVALID_ARGUMENT],
  ])('%s → %s', (error, expected) => {
    const answer = grpcErrorFor(error);
    expect(answer.code).toBe(expected);
    expect(answer.details).toBe(error.message);
    expect(answer.metadata.get('rookery-code')).toEqual([error.code]);
  });

  it('maps dependency and internal failures to UNAVAILABLE and INTERNAL', () => {
    expect(grpcStatusForCode('STORAGE_UNAVAILABLE')).toBe(status.UNAVAILABLE);
    expect(grpcStatusForCode('SOURCE_UNAVAILABLE')).toBe(status.UNAVAILABLE);
    expect(grpcStatusForCode('INTEGRITY')).toBe(status.INTERNAL);
    expect(grpcStatusForCode('CONFIG_SOMETHING_NEW')).toBe(status.INVALID_ARGUMENT);
  });

  it('maps Nest HTTP exceptions by their status, with the body message and code', () => {
    const conflict = grpcErrorForHttpException(new ConflictException("a restore drill of tier 'oltp' is already running"));
    expect(conflict).toMatchObject({ code: status.FAILED_PRECONDITION, details: "a restore drill of tier 'oltp' is already running" });
    const drill = grpcErrorForHttpException(new UnprocessableEntityException({ code: 'DRILL_FAILED', message: 'row counts differ' }));
    expect(drill).toMatchObject({ code: status.ABORTED, details: 'row counts differ' });
    expect(drill.metadata.get('rookery-code')).toEqual(['DRILL_FAILED']);
  });
});

describe('grpcServerCredentials', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rookery-grpc-tls-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const failure = (run: () => unknown): string => {
    try {
      run();
    } catch (error) {
      if (isRookeryError(error)) return error.message;
      throw error;
    }
    throw new Error('no error');
  };

  it('is plaintext without tls, and TLS from a certificate and its key', () => {
    expect(grpcServerCredentials({ host: '127.0.0.1', port: 0, tls: null })._isSecure()).toBe(false);
    const ca = makeTestCertificateAuthority(join(dir, 'ca'));
    const server = ca.issue('server', 'serverAuth');
    const tls = { ...server, clientCaFile: ca.caFile, requireClientCert: true };
    expect(grpcServerCredentials({ host: '127.0.0.1', port: 0, tls })._isSecure()).toBe(true);
  });

  it('names a missing file, and a key that does not belong to the certificate', () => {
    const missing = join(dir, 'missing.pem');
    const tls = { certFile: missing, keyFile: missing, clientCaFile: null, requireClientCert: false };
    expect(failure(() => grpcServerCredentials({ host: '127.0.0.1', port: 0, tls }))).toBe(
      `service.grpc.tls.certFile: cannot read ${missing}: ENOENT`,
    );
    const ca = makeTestCertificateAuthority(join(dir, 'mismatch'));
    const one = ca.issue('one', 'serverAuth');
    const other = ca.issue('other', 'serverAuth');
    const mismatched = { certFile: one.certFile, keyFile: other.keyFile, clientCaFile: null, requireClientCert: false };
    expect(failure(() => grpcServerCredentials({ host: '127.0.0.1', port: 0, tls: mismatched }))).toMatch(
      /^service\.grpc\.tls: .* is not usable: .*key values mismatch/,
    );
    const garbage = join(dir, 'garbage.pem');
    writeFileSync(garbage, 'not a certificate\n');
    const notPem = { certFile: garbage, keyFile: one.keyFile, clientCaFile: null, requireClientCert: false };
    expect(failure(() => grpcServerCredentials({ host: '127.0.0.1', port: 0, tls: notPem }))).toMatch(
      /^service\.grpc\.tls: .* is not usable/,
    );
  });
});
