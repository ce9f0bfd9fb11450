import { ForbiddenError, TierName } from '@rookery/core';

/**
 * The roles a caller of a service can hold. operator: start and cancel work (backups, restores,
 * drills, replication, holds). auditor: read (backups, compliance, reports, the audit trail).
 * service: another rookery service or the platform's automation, allowed both.
 */
export const ROLES = ['operator', 'auditor', 'service'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Who made a call, as a verified token says. */
export interface Principal {
  /** The token line's principal or the JWT's subject claim: what the audit trail names. */
  readonly name: string;
  readonly roles: readonly Role[];
  /** The tiers the principal may act on; null: every tier (and fleet-wide calls). */
  readonly tiers: readonly TierName[] | null;
  /** How the principal was established. */
  readonly via: 'token-file' | 'jwt' | 'anonymous';
}

/**
 * What a call needs: one of `roles`, on every tier in `tiers` (the service's own and the one the
 * request names); null: a fleet-wide call, over every tier.
 */
export interface AccessRequirement {
  readonly roles: readonly Role[];
  readonly tiers: readonly TierName[] | null;
}

/**
 * Throws ForbiddenError unless the principal holds one of the roles and its tier scope covers the
 * call. A principal scoped to some tiers cannot make a fleet-wide call: it would read or act on
 * tiers outside its scope.
 */
export function authorize(principal: Principal, requirement: AccessRequirement, action: string): void {
  if (!principal.roles.some((role) => requirement.roles.includes(role))) {
    throw new ForbiddenError(
      `${principal.name} (${principal.roles.join(', ') || 'no role'}) may not ${action}: it needs the role ${requirement.roles.join(' or ')}`,
    );
  }
  if (principal.tiers === null) return;
  const scope = principal.tiers.join(', ');
  if (requirement.tiers === null) {
    throw new ForbiddenError(`${principal.name} is scoped to the tier(s) ${scope} and may not ${action} across every tier`, {
      hint: `name the tier (?tier=${principal.tiers[0]})`,
    });
  }
  const outside = requirement.tiers.filter((tier) => !principal.tiers?.includes(tier));
  if (outside.length) {
    throw new ForbiddenError(`${principal.name} is scoped to the tier(s) ${scope} and may not ${action} on the ${outside.join(', ')} tier`);
  }
}
