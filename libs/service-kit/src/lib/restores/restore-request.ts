import { isAbsolute, normalize, relative, sep } from 'node:path';
import { z } from 'zod';
import { ConfigError, RecoveryTarget, TierName, TierPolicy, parseRecoveryTarget } from '@rookery/core';
import type { LogicalRestoreRequest, PhysicalRestoreRequest } from '@rookery/engine';
import type { RookeryConfig } from '@rookery/config';
import { PgConnection, connectionFromUrl } from '@rookery/postgres';

/** Where a physical restore through a service stops replaying WAL: one of these at most. */
const recoveryTargetSchema = z
  .object({
    time: z.string().min(1).optional(),
    lsn: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
    xid: z.string().min(1).optional(),
  })
  .strict();

/**
 * What a caller asks a service to restore (POST /restores, StartRestore), checked strictly: an
 * unknown field is refused, never ignored. `start` is false or absent: a service leaves the
 * restored directory for the operator to start.
 */
export const restoreRequestSchema = z
  .object({
    backup: z.string().min(1),
    target: z.discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('logical'),
          url: z.string().min(1),
          clean: z.boolean().optional(),
          table: z.string().min(1).optional(),
          schema: z.string().min(1).optional(),
        })
        .strict(),
      z
        .object({
          kind: z.literal('physical'),
          directory: z.string().min(1),
          recoveryTarget: recoveryTargetSchema.optional(),
          start: z.literal(false).optional(),
        })
        .strict(),
    ]),
  })
  .strict();

export type RestoreRequest = z.infer<typeof restoreRequestSchema>;
export type LogicalRestoreTarget = Extract<RestoreRequest['target'], { kind: 'logical' }>;
export type PhysicalRestoreTarget = Extract<RestoreRequest['target'], { kind: 'physical' }>;

/** The engine's request for a restore a service runs, after every check of the caller's request. */
export type EngineRestoreRequest =
  | { kind: 'logical'; request: Omit<LogicalRestoreRequest, 'signal' | 'onProgress'>; target: string }
  | { kind: 'physical'; request: Omit<PhysicalRestoreRequest, 'signal' | 'onProgress'>; target: string };

/**
 * Where a service may restore: physical restores under `directoryRoot` (none: refused), logical
 * ones into the servers `logicalTargetHosts` lists (host or host:port, port 5432 by default).
 */
export interface RestoreLimits {
  directoryRoot: string | null;
  logicalTargetHosts: readonly string[];
}

/**
 * The limits of a tier service's restores from its config: the directory root, and the servers
 * restores.logicalTargetHosts lists or else the tier's own database server.
 */
export function restoreLimits(config: Pick<RookeryConfig, 'restores' | 'tiers'>, tier: TierName): RestoreLimits {
  const pgUrl = config.tiers[tier].pgUrl;
  const own = pgUrl ? [connectionFromUrl(pgUrl.reveal()).target.split('/')[0]] : [];
  return { directoryRoot: config.restores.directoryRoot, logicalTargetHosts: config.restores.logicalTargetHosts ?? own };
}

/**
 * Turns a caller's restore request into the engine's, refusing what a service must not do: a
 * restore of the other method than the tier's, a target URL carrying a password or naming a
 * server the limits do not list, a directory outside `directoryRoot` (or any directory when none
 * is configured). ConfigErrors name the field.
 */
export function engineRestoreRequest(
  tier: TierName,
  policy: Pick<TierPolicy, 'method'>,
  request: RestoreRequest,
  limits: RestoreLimits,
): EngineRestoreRequest {
  const { target } = request;
  if (target.kind !== policy.method) {
    throw new ConfigError(`tier '${tier}' is backed up ${policy.method}ly: a ${target.kind} restore is not possible`, ['target.kind'], {
      hint:
        policy.method === 'logical'
          ? 'restore into a database: target { kind: logical, url }'
          : 'restore into a directory: target { kind: physical, directory }',
    });
  }
  if (target.kind === 'logical') {
    const described = refusePassword(target.url);
    refuseUnlistedServer(target.url, limits.logicalTargetHosts);
    return {
      kind: 'logical',
      target: described,
      request: { tier, backup: request.backup, targetUrl: target.url, clean: target.clean, table: target.table, schema: target.schema },
    };
  }
  const directory = directoryUnderRoot(target.directory, limits.directoryRoot);
  const recovery = target.recoveryTarget;
  return {
    kind: 'physical',
    target: directory,
    request: {
      tier,
      backup: request.backup,
      to: directory,
      start: false,
      ...(recovery && hasTarget(recovery) ? { target: recoveryTargetOf(recovery) } : {}),
    },
  };
}

/** What a target URL must not carry: a password, or the file to read one from on the service host. */
const SECRET_SETTINGS = ['PGPASSWORD', 'PGSSLPASSWORD', 'PGPASSFILE'];

/**
 * host:port/database of a logical target URL; a URL with a password is refused: the service
 * connects with its own credentials (its environment, its .pgpass), and a secret never travels in
 * a request body, where proxies and audit trails could keep it.
 */
export function refusePassword(url: string): string {
  let connection: PgConnection;
  try {
    connection = connectionFromUrl(url);
  } catch (error) {
    throw new ConfigError(`target.url: ${(error as Error).message}`, ['target.url'], {
      cause: error,
      hint: 'postgres://user@host:5432/database',
    });
  }
  if (SECRET_SETTINGS.some((setting) => setting in connection.env)) {
    throw new ConfigError('target.url carries a password: refused (a secret never travels in a request)', ['target.url'], {
      hint: "remove it; the service connects with its own credentials (PGPASSWORD or .pgpass of the service's account)",
    });
  }
  return connection.target;
}

/**
 * Refuses a logical target on a server the service may not restore into. The service connects
 * with its own credentials: a server the caller chooses could ask for its password in clear text
 * (password authentication) and keep it. `hostaddr` is refused outright, since it would send the
 * connection elsewhere than the host the check read.
 */
export function refuseUnlistedServer(url: string, allowed: readonly string[]): void {
  const { conninfo, target } = connectionFromUrl(url);
  if (/(^|\s)hostaddr=/.test(conninfo)) {
    throw new ConfigError('target.url sets hostaddr: refused (name the server by host)', ['target.url']);
  }
  const server = target.slice(0, target.indexOf('/'));
  const listed = allowed.some((entry) => (/:\d+$/.test(entry) ? entry : `${entry}:5432`) === server);
  if (!listed) {
    throw new ConfigError(`target.url names the server ${server}, which this service does not restore into`, ['target.url'], {
      hint: `restore into ${allowed.join(' or ')}, or list the server in restores.logicalTargetHosts`,
    });
  }
}

/**
 * The restore directory, normalised, when it is absolute and strictly below `root` (each restore
 * gets a directory of its own there); ConfigError otherwise, and always without a root: a caller
 * never chooses an arbitrary place on the service's host to write a data directory.
 */
export function directoryUnderRoot(directory: string, root: string | null): string {
  if (root === null) {
    throw new ConfigError('physical restores through this service are off: restores.directoryRoot is not set', ['restores.directoryRoot'], {
      hint: 'set restores.directoryRoot in the service config to the directory restores may be written under, or restore with the CLI on the host',
    });
  }
  if (!isAbsolute(directory)) {
    throw new ConfigError(`target.directory '${directory}' is not an absolute path`, ['target.directory'], {
      hint: `give a directory under ${root}`,
    });
  }
  const normalised = normalize(directory).replace(/(.)\/+$/, '$1');
  const below = relative(normalize(root), normalised);
  if (below === '' || below === '..' || below.startsWith(`..${sep}`) || isAbsolute(below)) {
    throw new ConfigError(`target.directory '${directory}' is not under restores.directoryRoot ${root}`, ['target.directory'], {
      hint: `give a new directory under ${root}`,
    });
  }
  return normalised;
}

function hasTarget(recovery: z.infer<typeof recoveryTargetSchema>): boolean {
  return [recovery.time, recovery.lsn, recovery.name, recovery.xid].some((value) => value !== undefined);
}

/** The recovery target as the CLI flags give it: the same parsing, the same messages. */
function recoveryTargetOf(recovery: z.infer<typeof recoveryTargetSchema>): RecoveryTarget {
  return parseRecoveryTarget({ targetTime: recovery.time, targetLsn: recovery.lsn, targetName: recovery.name, targetXid: recovery.xid });
}
