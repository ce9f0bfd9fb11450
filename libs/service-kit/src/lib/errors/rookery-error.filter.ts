import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import { Observable, throwError } from 'rxjs';
import { ErrorCode, RookeryError, isRookeryError } from '@rookery/core';
import { grpcError, grpcErrorFor, grpcErrorForHttpException } from '../grpc/grpc-status';

/** The JSON body of every error answer that is not a plain Nest HTTP exception. */
export interface ErrorBody {
  code: string;
  message: string;
  hint?: string;
}

/**
 * The HTTP status of each error code: 400 for a request the caller must correct, 404 for what is
 * not there, 409 for the tier's state (another backup holds the lock; an incremental with no
 * usable parent), 503 for a dependency that did not answer (Retry-After when retryable), 500 for
 * the rest.
 */
const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  CONFIG_INVALID: HttpStatus.BAD_REQUEST,
  TIER_UNKNOWN: HttpStatus.BAD_REQUEST,
  ENCRYPTION_KEY: HttpStatus.INTERNAL_SERVER_ERROR,
  REPORT_NOT_WRITTEN: HttpStatus.INTERNAL_SERVER_ERROR,
  SOURCE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  TOOL_FAILED: HttpStatus.INTERNAL_SERVER_ERROR,
  ARCHIVE_CHECK: HttpStatus.INTERNAL_SERVER_ERROR,
  WAL_INVALID: HttpStatus.INTERNAL_SERVER_ERROR,
  STORAGE_NOT_FOUND: HttpStatus.INTERNAL_SERVER_ERROR,
  STORAGE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  STORAGE_ACCESS_DENIED: HttpStatus.INTERNAL_SERVER_ERROR,
  STORAGE_CONFLICT: HttpStatus.INTERNAL_SERVER_ERROR,
  STORAGE_UNSUPPORTED: HttpStatus.INTERNAL_SERVER_ERROR,
  INTEGRITY: HttpStatus.INTERNAL_SERVER_ERROR,
  WAL_CONFLICT: HttpStatus.INTERNAL_SERVER_ERROR,
  WAL_PUSH_FAILED: HttpStatus.INTERNAL_SERVER_ERROR,
  REPOSITORY_NOT_FOUND: HttpStatus.INTERNAL_SERVER_ERROR,
  CATALOG_UNAVAILABLE: HttpStatus.INTERNAL_SERVER_ERROR,
  REPLICATION_FAILED: HttpStatus.INTERNAL_SERVER_ERROR,
  REGION_UNREACHABLE: HttpStatus.INTERNAL_SERVER_ERROR,
  LOCK_HELD: HttpStatus.CONFLICT,
  INCREMENTAL_CHAIN: HttpStatus.CONFLICT,
  BACKUP_NOT_FOUND: HttpStatus.NOT_FOUND,
  RESTORE_NOT_FOUND: HttpStatus.NOT_FOUND,
  NOT_RUNNING: HttpStatus.CONFLICT,
  RESTORE_TARGET: HttpStatus.INTERNAL_SERVER_ERROR,
  WAL_NOT_FOUND: HttpStatus.INTERNAL_SERVER_ERROR,
  OBJECT_ARCHIVED: HttpStatus.INTERNAL_SERVER_ERROR,
  DRILL_FAILED: HttpStatus.INTERNAL_SERVER_ERROR,
  EVENT_INVALID: HttpStatus.INTERNAL_SERVER_ERROR,
  EVENT_UNAUTHENTIC: HttpStatus.INTERNAL_SERVER_ERROR,
  EVENT_BUS_UNAVAILABLE: HttpStatus.INTERNAL_SERVER_ERROR,
  UNAUTHENTICATED: HttpStatus.UNAUTHORIZED,
  FORBIDDEN: HttpStatus.FORBIDDEN,
  INVARIANT: HttpStatus.INTERNAL_SERVER_ERROR,
};

/**
 * HTTP status for an error code: the one place the taxonomy meets HTTP. A code this build does
 * not know (a drill record written by another version) is a 500, or a 400 when it names a config
 * problem.
 */
export function httpStatusForCode(code: string): number {
  if (Object.hasOwn(STATUS_BY_CODE, code)) return STATUS_BY_CODE[code as ErrorCode];
  return code.startsWith('CONFIG_') ? HttpStatus.BAD_REQUEST : HttpStatus.INTERNAL_SERVER_ERROR;
}

interface HttpReply {
  status(code: number): HttpReply;
  setHeader(name: string, value: string): void;
  json(body: unknown): void;
}

/**
 * Maps RookeryErrors to HTTP with `{ code, message, hint }`. Nest HTTP exceptions (validation,
 * 404 routes, terminus' 503) keep their own status and body. Anything else is a bug: logged with
 * its stack, answered with a generic 500 so no internal detail (or secret) leaves the service.
 * A gRPC call's error becomes the gRPC status of the same HTTP status (see grpc-status), with the
 * message and the code in the trailing metadata.
 */
@Catch()
export class RookeryErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(RookeryErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void | Observable<never> {
    if (host.getType() === 'rpc') return throwError(() => this.grpcStatus(exception));
    const reply = host.switchToHttp().getResponse<HttpReply>();
    if (exception instanceof HttpException) {
      const body = exception.getResponse();
      reply.status(exception.getStatus()).json(typeof body === 'string' ? { code: `HTTP_${exception.getStatus()}`, message: body } : body);
      return;
    }
    const rejected = rejectedBody(exception);
    if (rejected) {
      reply.status(rejected.status).json(rejected.body);
      return;
    }
    if (isRookeryError(exception)) {
      const status = httpStatusForCode(exception.code);
      if (exception.code === 'UNAUTHENTICATED') reply.setHeader('WWW-Authenticate', 'Bearer realm="rookery", error="invalid_token"');
      if (status >= 500) this.logger.error(describe(exception), exception.stack);
      if (exception.retryable && status === HttpStatus.SERVICE_UNAVAILABLE) reply.setHeader('Retry-After', '30');
      reply.status(status).json(errorBody(exception));
      return;
    }
    this.logger.error(
      exception instanceof Error ? exception.message : String(exception),
      exception instanceof Error ? exception.stack : undefined,
    );
    reply.status(HttpStatus.INTERNAL_SERVER_ERROR).json({ code: 'INTERNAL', message: 'internal error' } satisfies ErrorBody);
  }

  private grpcStatus(exception: unknown) {
    if (exception instanceof HttpException) return grpcErrorForHttpException(exception);
    if (isRookeryError(exception)) {
      if (httpStatusForCode(exception.code) >= 500) this.logger.error(describe(exception), exception.stack);
      return grpcErrorFor(exception);
    }
    this.logger.error(
      exception instanceof Error ? exception.message : String(exception),
      exception instanceof Error ? exception.stack : undefined,
    );
    return grpcError(status.INTERNAL, 'internal error', 'INTERNAL');
  }
}

const BODY_CODES: Readonly<Record<number, string>> = {
  400: 'REQUEST_INVALID',
  413: 'REQUEST_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * The body parser's refusals (too large, not JSON, bad charset) are the caller's to correct: their
 * own 4xx status, not a 500. They are http-errors with `expose` set and a `type` like
 * 'entity.too.large'.
 */
function rejectedBody(exception: unknown): { status: number; body: ErrorBody } | null {
  const error = exception as { status?: unknown; expose?: unknown; type?: unknown; message?: unknown } | null;
  if (typeof error !== 'object' || error === null || error.expose !== true || typeof error.type !== 'string') return null;
  if (typeof error.status !== 'number' || error.status < 400 || error.status > 499) return null;
  const message = error.status === 413 ? 'request body too large' : `request body rejected: ${String(error.message)}`;
  return { status: error.status, body: { code: BODY_CODES[error.status] ?? `HTTP_${error.status}`, message } };
}

export function errorBody(error: RookeryError): ErrorBody {
  return error.hint ? { code: error.code, message: error.message, hint: error.hint } : { code: error.code, message: error.message };
}

function describe(error: RookeryError): string {
  return `${error.code}: ${error.message}`;
}
