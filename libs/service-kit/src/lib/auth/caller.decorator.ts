import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { AuditedRequest } from '../events/audit.interceptor';
import { rpcRequestOf } from './rpc-request';

/** Who made a call, as the audit trail names it: the principal AuthGuard verified. */
export function callerName(request: AuditedRequest): string {
  return request.principal?.name ?? `unauthenticated@${request.ip ?? 'unknown'}`;
}

/**
 * A handler parameter holding the caller's name (callerName), for what a service records as
 * requested, placed or cancelled by someone: the same name as the call's audit event.
 */
export const CallerName = createParamDecorator((_data: unknown, context: ExecutionContext): string =>
  callerName(context.getType() === 'rpc' ? rpcRequestOf(context) : context.switchToHttp().getRequest<AuditedRequest>()),
);
