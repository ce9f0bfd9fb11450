import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { RookeryError, isRookeryError } from '@rookery/core';

/** The JSON body of every error answer that is not a plain Nest HTTP exception. */
export interface ErrorBody {
  code: string;
  message: string;
  hint?: string;
}

const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  LOCK_HELD: HttpStatus.CONFLICT,
  // An incremental with no usable parent (no full yet, schema changed): the tier's state, not the request.
  INCREMENTAL_CHAIN: HttpStatus.CONFLICT,
  BACKUP_NOT_FOUND: HttpStatus.NOT_FOUND,
  TIER_UNKNOWN: HttpStatus.BAD_REQUEST,
  STORAGE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  SOURCE_UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
};

/** HTTP status for a core error code: the one place the taxonomy meets HTTP. */
export function httpStatusForCode(code: string): number {
  if (code.startsWith('CONFIG_')) return HttpStatus.BAD_REQUEST;
  return STATUS_BY_CODE[code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
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
 */
@Catch()
export class RookeryErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger(RookeryErrorFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<HttpReply>();
    if (exception instanceof HttpException) {
      const body = exception.getResponse();
      reply.status(exception.getStatus()).json(typeof body === 'string' ? { code: `HTTP_${exception.getStatus()}`, message: body } : body);
      return;
    }
    if (isRookeryError(exception)) {
      const status = httpStatusForCode(exception.code);
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
}

export function errorBody(error: RookeryError): ErrorBody {
  return error.hint ? { code: error.code, message: error.message, hint: error.hint } : { code: error.code, message: error.message };
}

function describe(error: RookeryError): string {
  return `${error.code}: ${error.message}`;
}
