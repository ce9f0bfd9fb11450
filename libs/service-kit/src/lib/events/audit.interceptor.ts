import { CallHandler, ExecutionContext, HttpException, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Observable, tap } from 'rxjs';
import type { Principal } from '@rookery/auth';
import { TierName, isTierName } from '@rookery/core';
import { createEvent } from '@rookery/events';
import { rpcRequestOf } from '../auth/rpc-request';
import { serviceTierOf } from '../service-kit.constants';
import { ServiceEventsService } from './service-events.service';

/** What the audit trail reads of an HTTP request; AuthGuard leaves the verified principal on it. */
export interface AuditedRequest {
  body?: unknown;
  method: string;
  url: string;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
  principal?: Principal;
  /** Whether the call is audited; default: anything but GET/HEAD (a gRPC call says, see rpcRequestOf). */
  privileged?: boolean;
}

/**
 * Every privileged API call (anything but GET/HEAD) becomes a dev.rookery.audit event with its
 * actor, action and outcome (DESIGN §10), stored in the outbox like every other event. The actor
 * is the principal AuthGuard verified (the token line's or the JWT's name), with its roles;
 * with `auth.mode: none` it is the caller's address ("anonymous@127.0.0.1"). A call the guard
 * refused is recorded as denied, naming the principal when the token was valid.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  private readonly logger = new Logger(AuditInterceptor.name);

  private tierOfService: TierName | null | undefined;

  constructor(
    private readonly events: ServiceEventsService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** The tier the app serves (its SERVICE_TIER provider), null for services of no one tier. */
  private get tier(): TierName | null {
    if (this.tierOfService === undefined) {
      this.tierOfService = serviceTierOf(this.moduleRef);
    }
    return this.tierOfService;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const type = context.getType();
    if (type !== 'http' && type !== 'rpc') return next.handle();
    const request = type === 'http' ? context.switchToHttp().getRequest<AuditedRequest>() : rpcRequestOf(context);
    if (!privileged(request)) return next.handle();
    return next.handle().pipe(
      tap({
        next: () => this.record(request, request.principal, 'succeeded'),
        error: (error: unknown) => this.record(request, request.principal, 'failed', { code: failureCode(error) }),
      }),
    );
  }

  /** A privileged call AuthGuard refused: `principal` when the token was valid but not enough. */
  recordDenied(request: AuditedRequest, principal: Principal | undefined, code: string): void {
    if (privileged(request)) this.record(request, principal, 'denied', { code, address: request.ip ?? 'unknown' });
  }

  private record(
    request: AuditedRequest,
    principal: Principal | undefined,
    outcome: 'succeeded' | 'failed' | 'denied',
    detail?: Record<string, unknown>,
  ): void {
    // The tier acted on: the service's own, or the one a fleet-wide service (validator) was asked about.
    const body = request.body as { tier?: unknown } | undefined;
    const requested = typeof body?.tier === 'string' && isTierName(body.tier) ? body.tier : null;
    const tier = this.tier ?? requested;
    const event = createEvent(
      'dev.rookery.audit',
      tier ?? 'fleet',
      {
        actor: principal?.name ?? `unauthenticated@${request.ip ?? 'unknown'}`,
        ...(principal && principal.via !== 'anonymous' ? { role: principal.roles.join(',') } : {}),
        action: `${request.method} ${request.url.split('?')[0]}`,
        resource: tier ? `tier:${tier}` : 'service',
        outcome,
        at: new Date().toISOString(),
        ...(detail ? { detail } : {}),
      },
      { source: this.events.source },
    );
    this.events
      .publish(event)
      .catch((error: unknown) => this.logger.error(`cannot store the audit event of ${request.method} ${request.url}: ${String(error)}`));
  }
}

function privileged(request: AuditedRequest): boolean {
  if (request.privileged !== undefined) return request.privileged;
  return request.method !== 'GET' && request.method !== 'HEAD';
}

function failureCode(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return error instanceof HttpException ? `HTTP_${error.getStatus()}` : 'UNEXPECTED';
}
