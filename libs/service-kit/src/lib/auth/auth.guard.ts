import { CanActivate, ExecutionContext, Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ModuleRef, Reflector } from '@nestjs/core';
import { BearerAuthenticator, Principal, anonymousPrincipal, authorize } from '@rookery/auth';
import { ForbiddenError, TierName, isRookeryError, isTierName } from '@rookery/core';
import { AuditInterceptor, AuditedRequest } from '../events/audit.interceptor';
import { serviceTierOf } from '../service-kit.constants';
import { ROUTE_ACCESS, RouteAccess, TierSource } from './auth.decorator';
import { rpcRequestOf } from './rpc-request';

/** The authenticator a service uses; null when `auth.mode: none`. */
export const AUTHENTICATOR = Symbol('AUTHENTICATOR');

interface GuardedRequest extends AuditedRequest {
  params?: Record<string, string | undefined>;
  query?: Record<string, unknown>;
  route?: { path?: string };
}

/**
 * Every route's gate (registered globally): a route that declares no access rule is refused, a
 * public one passes, any other needs a bearer token whose principal holds one of the route's
 * roles on the tier the call acts on. The principal is left on the request for the audit trail;
 * a refused privileged call is audited as denied.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly logger = new Logger(AuthGuard.name);
  private tierOfService: TierName | null | undefined;

  constructor(
    private readonly reflector: Reflector,
    @Inject(AUTHENTICATOR) private readonly authenticator: BearerAuthenticator | null,
    private readonly moduleRef: ModuleRef,
    @Optional() private readonly audit?: AuditInterceptor,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    // REST and gRPC: another transport must bring its own check before this guard lets it pass.
    const type = context.getType();
    if (type !== 'http' && type !== 'rpc') throw new ForbiddenError(`no authentication for ${type} calls; refused`);
    const request: GuardedRequest = type === 'http' ? context.switchToHttp().getRequest<GuardedRequest>() : rpcRequestOf(context);
    const access = this.reflector.getAllAndOverride<RouteAccess | undefined>(ROUTE_ACCESS, [context.getHandler(), context.getClass()]);
    const action = `${request.method} ${request.route?.path ?? request.url.split('?')[0]}`;
    if (!access) {
      this.logger.error(`${action} declares no access rule (@RequiresRole or @PublicRoute): refused`);
      throw new ForbiddenError(`${action} declares no access rule; refused (deny by default)`);
    }
    if (access.kind === 'public') return true;
    let principal: Principal | undefined;
    try {
      principal = this.authenticator
        ? await this.authenticator.authenticate(header(request, 'authorization'))
        : anonymousPrincipal(request.ip);
      authorize(principal, { roles: access.roles, tiers: this.tiersOf(request, access.tierFrom) }, action);
    } catch (error) {
      const refusal = isRookeryError(error) && (error.code === 'UNAUTHENTICATED' || error.code === 'FORBIDDEN');
      if (!refusal) this.logger.error(`cannot authenticate ${action}: ${String(error)}`);
      this.logger.warn(
        `refused ${action} from ${principal?.name ?? `unauthenticated@${request.ip ?? 'unknown'}`}: ${(error as Error).message}`,
      );
      this.audit?.recordDenied(request, principal, isRookeryError(error) ? error.code : 'UNEXPECTED');
      throw refusal ? error : new ForbiddenError(`cannot authenticate the call (${action}); refused`, { cause: error });
    }
    request.principal = principal;
    return true;
  }

  /**
   * The tiers the call acts on: the service's own, and the one the request names where the route
   * says it reads it (a gRPC method: its request message's `tier`, as the body). null for a
   * fleet-wide call (no tier at all), or when the named tier is missing or not a tier (the route
   * answers TIER_UNKNOWN to an unscoped principal).
   */
  private tiersOf(request: GuardedRequest, tierFrom: TierSource | null): TierName[] | null {
    const own = this.serviceTier();
    if (tierFrom === null) return own ? [own] : null;
    const source =
      tierFrom === 'param' ? request.params : tierFrom === 'query' ? request.query : (request.body as Record<string, unknown> | undefined);
    const named = source?.['tier'];
    if (typeof named !== 'string' || !isTierName(named)) return null;
    return own && own !== named ? [own, named] : [named];
  }

  private serviceTier(): TierName | null {
    if (this.tierOfService === undefined) {
      this.tierOfService = serviceTierOf(this.moduleRef);
    }
    return this.tierOfService;
  }
}

function header(request: GuardedRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
