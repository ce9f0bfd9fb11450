import { z } from 'zod';
import { COMPRESSION_CODECS, POLICY_LINT_RULES, TIER_NAMES, TierName } from '@rookery/core';

/**
 * The YAML file's schema (rookery.yaml). Every key is optional: what is absent comes from the
 * built-in defaults (DESIGN §2 policies, zstd compression, no client-side encryption).
 * Unknown keys are errors, so a typo never silently falls back to a default.
 */
/** The JWT signature algorithms a service may accept (asymmetric only; libs/auth verifies them). */
export const JWT_ALGORITHM_NAMES = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const cron = z
  .string()
  .regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields')
  .or(z.literal('continuous'));

const policyOverrides = z
  .object({
    database: z.string().min(1),
    fullSchedule: cron,
    incrementalSchedule: cron,
    retentionDays: z.number().int().positive(),
    snapshotRetentionDays: z.number().int().positive(),
    storageClass: z.enum(['STANDARD', 'STANDARD_IA', 'GLACIER', 'GLACIER_IR', 'DEEP_ARCHIVE']),
    transitions: z
      .array(
        z
          .object({
            afterDays: z.number().int().positive(),
            storageClass: z.enum(['STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE']),
          })
          .strict(),
      )
      .max(4),
    regions: z.array(z.string().min(1)).min(1),
    rpoSeconds: z.number().int().nonnegative(),
    rtoSeconds: z.number().positive(),
    localCopyDays: z.number().int().nonnegative(),
    drillSchedule: z.string().regex(/^(\S+\s+){4,5}\S+$/, 'must be a cron expression with 5 or 6 fields'),
    acknowledge: z.array(
      z.object({ rule: z.enum(POLICY_LINT_RULES), reason: z.string().min(1, 'say why the finding is accepted') }).strict(),
    ),
    logical: z
      .object({
        splitTable: z.string().min(1).nullable(),
        excludeTableData: z.array(z.string().min(1)),
        format: z.enum(['custom', 'directory']),
        jobs: z.number().int().positive().max(64),
        compression: z
          .object({ codec: z.enum(COMPRESSION_CODECS as [string, ...string[]]), level: z.number().int().min(0).max(22) })
          .strict(),
        incremental: z.boolean(),
      })
      .strict()
      .partial(),
    physical: z
      .object({
        incremental: z
          .object({
            fullEveryDays: z.number().positive(),
            maxChainFraction: z.number().positive().max(10),
            deltaIndex: z.boolean(),
          })
          .strict()
          .partial()
          .nullable(),
      })
      .strict()
      .partial(),
  })
  .strict()
  .partial();

const tierSection = z
  .object({
    pgUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    checkpoint: z.enum(['fast', 'spread']),
    policy: policyOverrides,
  })
  .strict()
  .partial();

/**
 * How services authenticate callers (issue 16). mode required (the default) needs a token file,
 * a JWT issuer, or both; none turns authentication off and must be written out.
 */
const authSection = z
  .object({
    mode: z.enum(['required', 'none']),
    tokenFile: z.string().min(1),
    jwt: z
      .object({
        issuer: z.string().url('must be the issuer URL the tokens carry in iss'),
        audience: z.string().min(1),
        jwksUrl: z.string().url(),
        jwksFile: z.string().min(1),
        algorithms: z.array(z.enum(JWT_ALGORITHM_NAMES)).min(1),
        rolesClaim: z.string().min(1),
        tiersClaim: z.string().min(1),
        principalClaim: z.string().min(1),
        clockToleranceSeconds: z.number().int().nonnegative().max(600),
      })
      .strict()
      .partial({
        jwksUrl: true,
        jwksFile: true,
        algorithms: true,
        rolesClaim: true,
        tiersClaim: true,
        principalClaim: true,
        clockToleranceSeconds: true,
      })
      .refine(
        (value) => !(value.jwksUrl && value.jwksFile),
        'set jwksUrl or jwksFile (or neither: OpenID discovery from the issuer), not both',
      ),
  })
  .strict()
  .partial();

/** A service's gRPC listener (absent: none); TLS from PEM files, mutual TLS with a client CA. */
const grpcSection = z
  .object({
    port: z.number().int().min(0).max(65535),
    host: z.string().min(1).optional(),
    tls: z
      .object({
        certFile: z.string().min(1),
        keyFile: z.string().min(1),
        clientCaFile: z.string().min(1).optional(),
        requireClientCert: z.boolean().optional(),
      })
      .strict()
      .refine((tls) => !tls.requireClientCert || tls.clientCaFile, {
        message: 'requireClientCert needs clientCaFile (the CA client certificates are checked against)',
        path: ['clientCaFile'],
      })
      .optional(),
  })
  .strict();

/** The queue-wal service's synchronous pg_receivewal (DESIGN §5: queue tier, RPO 0). */
const walStreamSection = z
  .object({
    tier: z.enum([...TIER_NAMES] as [TierName, ...TierName[]]),
    slot: z.string().regex(/^[a-z0-9_]{1,63}$/, 'must be a replication slot name: lower-case letters, digits, underscores'),
    applicationName: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,63}$/, 'must be letters, digits and underscores (it is listed in synchronous_standby_names)'),
    spoolDir: z.string().min(1),
    onDown: z.enum(['blocking', 'degrade']),
    manageSynchronousStandbyNames: z.boolean(),
    restartBackoffMs: z.object({ initial: z.number().int().positive(), max: z.number().int().positive() }).strict(),
  })
  .strict()
  .partial()
  .refine((value) => value.onDown !== 'degrade' || value.manageSynchronousStandbyNames !== false, {
    message: 'degrade needs manageSynchronousStandbyNames (the service removes its name when it stops)',
    path: ['onDown'],
  });

/** WAL archiving (archive_command = rookery wal-push): per-segment or batched ahead ("async"). */
const walArchiveSection = z
  .object({
    archiveAsync: z.boolean(),
    spoolPath: z.string().min(1),
    processMax: z.number().int().positive().max(32),
    batchMax: z.number().int().positive().max(1024),
    archiveTimeoutSeconds: z.number().positive().max(3600),
    archiverIdleSeconds: z.number().positive().max(3600),
    prefetchSegments: z.number().int().nonnegative().max(1024),
    reuseBuffers: z.boolean(),
  })
  .strict()
  .partial()
  .refine((value) => !value.archiveAsync || value.spoolPath, { message: 'archiveAsync needs spoolPath', path: ['spoolPath'] });

const osName = (what: string) => z.string().regex(/^[a-z_][a-z0-9_.-]*$/i, `must be ${what} name`);

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name');

/** An event signing key's name: the producing service, as consumers list it in events.verifyKeys. */
const keyId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'lowercase letters, digits, dot, underscore, dash (at most 63)');

const keySource = z.object({
  keyFile: z.string().min(1).optional(),
  keyEnv: envName.optional(),
  allowReadableKeyFile: z.boolean().optional(),
});

const oneKeySource = (value: { keyFile?: string; keyEnv?: string }) => Boolean(value.keyFile) !== Boolean(value.keyEnv);

const repositoryEntry = z.string().regex(/^(file|s3):\/\//, 'must be a file:// or s3:// URL');

export const rookeryFileSchema = z
  .object({
    repositories: z.array(repositoryEntry).min(1),
    repository: z
      .object({ owner: osName('an os account'), group: osName('an os group') })
      .strict()
      .partial(),
    compression: z
      .object({
        codec: z.enum(COMPRESSION_CODECS as [string, ...string[]]),
        level: z.number().int().min(0).max(22),
        workers: z.number().int().positive().max(64),
        chunkSizeMb: z.number().positive().max(64),
        location: z.enum(['server', 'client']),
      })
      .strict()
      .partial(),
    encryption: z
      .object({
        keyFile: z.string().min(1),
        /** Accept a key file that group or others may read (refused by default). */
        allowReadableKeyFile: z.boolean(),
        keyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name'),
        required: z.boolean(),
      })
      .strict()
      .partial()
      .refine((value) => !(value.keyFile && value.keyEnv), 'set keyFile or keyEnv, not both'),
    integrity: z
      .object({
        keyFile: z.string().min(1),
        keyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name'),
        verifyKeyFiles: z.array(z.string().min(1)),
        allowReadableKeyFile: z.boolean(),
      })
      .strict()
      .partial()
      .refine((value) => !(value.keyFile && value.keyEnv), 'set keyFile or keyEnv, not both'),
    postgres: z
      .object({ binDir: z.string().min(1), idleTimeoutSeconds: z.number().int().positive().max(86_400) })
      .strict()
      .partial(),
    catalog: z
      .object({ url: z.string().regex(/^(sqlite|postgres(ql)?):\/\//, 'must be sqlite:// or postgres://') })
      .strict()
      .partial(),
    tiers: z
      .object(Object.fromEntries(TIER_NAMES.map((tier) => [tier, tierSection])))
      .strict()
      .partial(),
    service: z
      .object({
        host: z.string().min(1),
        port: z.number().int().min(0).max(65535),
        bodyLimitBytes: z
          .number()
          .int()
          .positive()
          .max(16 * 1024 * 1024),
        allowedOrigins: z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'must be an origin: scheme://host[:port]')),
        grpc: grpcSection,
      })
      .strict()
      .partial(),
    auth: authSection,
    walStream: walStreamSection,
    wal: walArchiveSection,
    restore: z
      .object({
        directWrites: z.boolean(),
        chainDigestsFromIndex: z.boolean(),
        chainInPlace: z.boolean(),
        deltaReadAhead: z.boolean(),
        prefetchInProcess: z.boolean(),
      })
      .strict()
      .partial(),
    restores: z
      .object({
        directoryRoot: z.string().regex(/^\//, 'must be an absolute path'),
        logicalTargetHosts: z.array(z.string().regex(/^[^\s/:,]+(:\d{1,5})?$/, 'must be host or host:port')).min(1),
      })
      .strict()
      .partial(),
    backup: z.object({ reuseBuffers: z.boolean() }).strict().partial(),
    events: z
      .object({
        brokers: z.array(z.string().regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port')).min(1),
        clientId: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dot, underscore, dash'),
        partitions: z.number().int().positive().max(1000),
        replicationFactor: z.number().int().positive().max(16),
        allowInProcess: z.boolean(),
        tls: z
          .object({
            /** CA certificates (PEM) the brokers' certificates are checked against; absent: the system's. */
            caFile: z.string().min(1).optional(),
            /** Client certificate and key (PEM) for mutual TLS. */
            certFile: z.string().min(1).optional(),
            keyFile: z.string().min(1).optional(),
            allowReadableKeyFile: z.boolean().optional(),
            rejectUnauthorized: z.boolean().optional(),
          })
          .strict()
          .refine((value) => Boolean(value.certFile) === Boolean(value.keyFile), 'certFile and keyFile go together (mutual TLS)'),
        sasl: z
          .object({
            mechanism: z.enum(['scram-sha-512', 'scram-sha-256', 'plain']),
            username: z.string().min(1),
            passwordFile: z.string().min(1).optional(),
            allowReadablePasswordFile: z.boolean().optional(),
            passwordEnv: envName.optional(),
          })
          .strict()
          .refine((value) => Boolean(value.passwordFile) !== Boolean(value.passwordEnv), 'set passwordFile or passwordEnv (one of them)'),
        /** This service's key: the events it publishes carry a proof under it, named keyId. */
        signing: keySource.extend({ keyId }).strict().refine(oneKeySource, 'set keyFile or keyEnv (one of them)'),
        /** The producing services' keys (by keyId) a consumer accepts events from. */
        verifyKeys: z.record(
          keyId,
          keySource
            .extend({
              /** The event types this key may sign: exact, or a prefix ending in `.*`; absent, any. */
              types: z.array(z.string().regex(/^dev\.rookery\.[a-z0-9.-]*[a-z0-9*]$/, 'an event type or a prefix ending in .*')).min(1),
            })
            .partial({ types: true })
            .strict()
            .refine(oneKeySource, 'set keyFile or keyEnv (one of them)'),
        ),
        allowUnsigned: z.boolean(),
      })
      .strict()
      .partial(),
    validator: z
      .object({
        /** At most one validation of a backup per this many seconds, however often its backup.completed arrives. */
        requestWindowSeconds: z
          .number()
          .int()
          .min(0)
          .max(7 * 86_400),
      })
      .strict()
      .partial(),
  })
  .strict()
  .partial();

export type RookeryFile = z.infer<typeof rookeryFileSchema>;

/** Turns zod issues into one line per bad key: "tiers.oltp.policy.retentionDays: expected number". */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.join('.') : '(root)';
    if (issue.code === 'unrecognized_keys') {
      return `${path === '(root)' ? '' : `${path}.`}${issue.keys.join(', ')}: unknown key`;
    }
    return `${path}: ${issue.message}`;
  });
}
