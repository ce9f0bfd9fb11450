import { SetMetadata, applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiForbiddenResponse, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Role } from '@rookery/auth';
import { ErrorBodyDto } from '../backups/backup-record.dto';

/** Metadata key of a route's access rule; a route without one is refused (deny by default). */
export const ROUTE_ACCESS = 'rookery:route-access';

/** The OpenAPI security scheme every protected route names. */
export const BEARER_SCHEME = 'bearer';

export type RouteAccess = { kind: 'public' } | { kind: 'roles'; roles: readonly Role[] };

/** Who may read: backups, status, compliance, reports, metrics. */
export const READ_ROLES: readonly Role[] = ['auditor', 'operator', 'service'];
/** Who may start or change something: backups, drills, replication, restores, holds. */
export const OPERATE_ROLES: readonly Role[] = ['operator', 'service'];

/**
 * The roles a route needs (any one of them), on the tier the request names (`:tier`, `?tier=`,
 * the body's `tier`) or else the service's own; a call naming no tier on a fleet-wide service
 * needs a principal not scoped to tiers. Adds the bearer scheme and 401/403 to the OpenAPI document.
 */
export function RequiresRole(...roles: Role[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    SetMetadata(ROUTE_ACCESS, { kind: 'roles', roles } satisfies RouteAccess),
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
