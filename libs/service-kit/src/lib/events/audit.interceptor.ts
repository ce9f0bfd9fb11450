import { CallHandler, ExecutionContext, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Observable, tap } from 'rxjs';
import { TierName, isTierName } from '@rookery/core';
import { createEvent } from '@rookery/events';
import { SERVICE_TIER } from '../service-kit.constants';
import { ServiceEventsService } from './service-events.service';

interface HttpRequestLike {
  body?: { tier?: unknown };
  method: string;
  url: string;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * Every privileged API call (anything but GET/HEAD) becomes a dev.rookery.audit event with its
 * actor, action and outcome (DESIGN §10), stored in the outbox like every other event. Until
 * bearer-token auth lands, the actor is the caller's address ("anonymous@127.0.0.1").
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
      try {
        this.tierOfService = this.moduleRef.get<TierName>(SERVICE_TIER, { strict: false });
      } catch {
        this.tierOfService = null;
      }
    }
    return this.tierOfService;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<HttpRequestLike>();
    if (request.method === 'GET' || request.method === 'HEAD') return next.handle();
    // The tier acted on: the service's own, or the one a fleet-wide service (validator) was asked about.
    const requested = typeof request.body?.tier === 'string' && isTierName(request.body.tier) ? request.body.tier : null;
    const tier = this.tier ?? requested;
    const record = (outcome: 'succeeded' | 'failed', detail?: Record<string, unknown>) => {
      const event = createEvent(
        'dev.rookery.audit',
        tier ?? 'fleet',
        {
          actor: `anonymous@${request.ip ?? 'unknown'}`,
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
    };
    return next.handle().pipe(
      tap({
        next: () => record('succeeded'),
        error: (error: unknown) => record('failed', { code: (error as { code?: string }).code ?? 'UNEXPECTED' }),
      }),
    );
  }
}
