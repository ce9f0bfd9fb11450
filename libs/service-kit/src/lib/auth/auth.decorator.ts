import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Role } from '@rookery/auth';
import { ErrorBodyDto } from '../backups/backup-record.dto';

/** Metadata key of a route's access rule; a route without one is refused (deny by default). */
export const ROUTE_ACCESS = 'rookery:route-access';

/** The OpenAPI security scheme every protected route names. */
export const BEARER_SCHEME = 'bearer';

/** Where a route reads the tier it acts on, beside the service's own: `:tier`, `?tier=` or the JSON body's `tier`. */
export type TierSource = 'param' | 'query' | 'body';

export type RouteAccess = { kind: 'public' } | { kind: 'roles'; roles: readonly Role[]; tierFrom: TierSource | null };

/** Who may read: backups, status, compliance, reports, metrics. */
export const READ_ROLES: readonly Role[] = ['auditor', 'operator', 'service'];
/** Who may start or change something: backups, drills, replication, restores, holds. */
export const OPERATE_ROLES: readonly Role[] = ['operator', 'service'];

/**
 * The roles a route needs (any one of them) and where it reads the tier it acts on. The tiers
 * checked against the principal's scope are the service's own (a tier service) and, with
 * `tierFrom`, the one the request names there; a route with neither acts on every tier and needs
 * a principal not scoped to tiers. Only a route that really acts on the named tier may declare
 * `tierFrom`: the guard trusts it. Adds the bearer scheme and 401/403 to the OpenAPI document.
 */
export function RequiresRole(roles: readonly Role[], options: { tierFrom?: TierSource } = {}): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(ROUTE_ACCESS, { kind: 'roles', roles, tierFrom: options.tierFrom ?? null } satisfies RouteAccess),
    ApiBearerAuth(BEARER_SCHEME),
    ApiUnauthorizedResponse({
      type: ErrorBodyDto,
      description: 'UNAUTHENTICATED: no token, or one expired, revoked or not signed by a trusted key',
    }),
    ApiForbiddenResponse({
      type: ErrorBodyDto,
      description: `FORBIDDEN: the token's roles (${roles.join(' or ')} needed) or tiers do not cover the call`,
    }),
  );
}

/** A route anyone may call without a token (GET /health only, so load balancers can probe). */
export function PublicRoute(): MethodDecorator & ClassDecorator {
  return SetMetadata(ROUTE_ACCESS, { kind: 'public' } satisfies RouteAccess);
}
