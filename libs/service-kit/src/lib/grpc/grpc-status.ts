import { HttpException, HttpStatus } from '@nestjs/common';
import { Metadata, status } from '@grpc/grpc-js';
import { RookeryError } from '@rookery/core';
import { httpStatusForCode } from '../errors/rookery-error.filter';

/**
 * The gRPC status of each HTTP status the REST surface answers: one table, so a RookeryError
 * means the same on both transports. 409 is FAILED_PRECONDITION (the tier's state) except
 * LOCK_HELD, which is ALREADY_EXISTS (a backup of the tier already runs); 422 (a drill that ran
 * and failed its checks) is ABORTED.
 */
const GRPC_BY_HTTP: Readonly<Record<number, status>> = {
  [HttpStatus.BAD_REQUEST]: status.INVALID_ARGUMENT,
  [HttpStatus.UNAUTHORIZED]: status.UNAUTHENTICATED,
  [HttpStatus.FORBIDDEN]: status.PERMISSION_DENIED,
  [HttpStatus.NOT_FOUND]: status.NOT_FOUND,
  [HttpStatus.CONFLICT]: status.FAILED_PRECONDITION,
  [HttpStatus.PAYLOAD_TOO_LARGE]: status.RESOURCE_EXHAUSTED,
  [HttpStatus.UNPROCESSABLE_ENTITY]: status.ABORTED,
  [HttpStatus.TOO_MANY_REQUESTS]: status.RESOURCE_EXHAUSTED,
  [HttpStatus.SERVICE_UNAVAILABLE]: status.UNAVAILABLE,
  [HttpStatus.INTERNAL_SERVER_ERROR]: status.INTERNAL,
};

/** What grpc-js sends for an error a handler ends with: its code, message and trailing metadata. */
export interface GrpcStatusError {
  code: status;
  details: string;
  message: string;
  metadata: Metadata;
}

/** The gRPC status for an HTTP status (UNKNOWN for one the table does not name). */
export function grpcStatusForHttp(httpStatus: number): status {
  return GRPC_BY_HTTP[httpStatus] ?? (httpStatus >= 500 ? status.INTERNAL : status.UNKNOWN);
}

/** The gRPC status for an error code of the taxonomy. */
export function grpcStatusForCode(code: string): status {
  if (code === 'LOCK_HELD') return status.ALREADY_EXISTS;
  return grpcStatusForHttp(httpStatusForCode(code));
}

/**
 * A RookeryError as a gRPC status: its message, and its code (and hint) in the trailing metadata
 * (`rookery-code`, `rookery-hint`) for clients that branch on it. Never its stack.
 */
export function grpcErrorFor(error: RookeryError): GrpcStatusError {
  return grpcError(grpcStatusForCode(error.code), error.message, error.code, error.hint);
}

/** A Nest HTTP exception (validation, a drill that failed) as a gRPC status, with its body's message and code. */
export function grpcErrorForHttpException(exception: HttpException): GrpcStatusError {
  const body = exception.getResponse();
  const fields = typeof body === 'object' && body !== null ? (body as { code?: unknown; message?: unknown; hint?: unknown }) : {};
  const message =
    typeof body === 'string'
      ? body
      : Array.isArray(fields.message)
        ? fields.message.join('; ')
        : String(fields.message ?? exception.message);
  const code = typeof fields.code === 'string' ? fields.code : `HTTP_${exception.getStatus()}`;
  return grpcError(grpcStatusForHttp(exception.getStatus()), message, code, typeof fields.hint === 'string' ? fields.hint : undefined);
}

export function grpcError(code: status, message: string, rookeryCode: string, hint?: string): GrpcStatusError {
  const metadata = new Metadata();
  metadata.set('rookery-code', rookeryCode);
  if (hint) metadata.set('rookery-hint', hint.replace(/[^\x20-\x7e]/g, ' '));
  return { code, details: message, message, metadata };
}
