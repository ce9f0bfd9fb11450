import { z } from 'zod';
import { TIER_NAMES } from '@rookery/core';

/**
 * Every event rookery publishes, with the schema of its `data` and the topic it goes to
 * (DESIGN §7: one topic per family, keyed by tier). Schemas are versioned: a change that breaks
 * consumers gets a new version (the envelope's `dataschema` names it) and both are accepted
 * while consumers move; additions of optional fields keep the version.
 */
export const TOPICS = {
  backup: 'rookery.backup',
  wal: 'rookery.wal',
  validation: 'rookery.validation',
  restore: 'rookery.restore',
  retention: 'rookery.retention',
  replication: 'rookery.replication',
  audit: 'rookery.audit',
} as const;
export type Topic = (typeof TOPICS)[keyof typeof TOPICS];
export const ALL_TOPICS: readonly Topic[] = Object.values(TOPICS);
/** Where consumers put messages that are not valid rookery events, with the reason in headers. */
export const DEAD_LETTER_TOPIC = 'rookery.dead-letter';

const tier = z.enum(TIER_NAMES);
const isoTime = z.string().datetime({ offset: true });
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const lsn = z.string().regex(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i);
const backupId = z.string().min(1);
const failure = z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).strict();

const artifact = z
  .object({
    name: z.string(),
    kind: z.string(),
    bytes: z.number().int().nonnegative(),
    storedBytes: z.number().int().nonnegative(),
    sha256,
    /** A tablespace archive's tablespace: where a restore puts it by default. */
    tablespace: z.object({ oid: z.number().int().positive(), name: z.string(), location: z.string() }).strict().optional(),
  })
  .strict();

const backupStarted = z
  .object({
    backupId,
    tier,
    type: z.enum(['full', 'incremental', 'snapshot']),
    method: z.enum(['physical', 'logical']),
    startedAt: isoTime,
    actor: z.string(),
  })
  .strict();

const backupCompleted = backupStarted
  .extend({
    finishedAt: isoTime,
    durationMs: z.number().nonnegative(),
    bytes: z.number().int().nonnegative(),
    storedBytes: z.number().int().nonnegative(),
    timeline: z.number().int().positive().nullable(),
    startLsn: lsn.nullable(),
    stopLsn: lsn.nullable(),
    walRange: z.object({ start: z.string(), stop: z.string() }).strict().nullable(),
    parent: z.string().nullable(),
    retentionUntil: isoTime,
    storageClass: z.string(),
    regions: z.array(z.string()),
    repository: z.string(),
    manifestChecksum: sha256,
    artifacts: z.array(artifact),
  })
  .strict();

const backupFailed = backupStarted.extend({ failedAt: isoTime, error: failure }).strict();

const walArchived = z
  .object({
    tier,
    timeline: z.number().int().positive(),
    /** Segments archived in this batch, oldest first. */
    segments: z.array(z.object({ name: z.string(), sha256, bytes: z.number().int().nonnegative(), archivedAt: isoTime }).strict()).min(1),
    lastLsn: lsn.nullable(),
  })
  .strict();

/**
 * Where the synchronous WAL stream stands (queue-wal, every report interval and on a change): the
 * primary's current LSN and what the stream confirmed flushed. While `inSync` every acknowledged
 * commit is on the stream's disk (RPO exposure 0) until `validForSeconds` after `at`.
 */
const walStreamed = z
  .object({
    tier,
    applicationName: z.string(),
    inSync: z.boolean(),
    /** pg_stat_replication.sync_state of the stream; null when it is not connected. */
    syncState: z.string().nullable(),
    flushLsn: lsn.nullable(),
    currentLsn: lsn.nullable(),
    /** Bytes of WAL the primary wrote that the stream has not confirmed flushed; null when unknown. */
    lagBytes: z.number().int().nonnegative().nullable(),
    at: isoTime,
    validForSeconds: z.number().positive(),
  })
  .strict();

const validationResult = z
  .object({
    backupId,
    tier,
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() }).strict()),
    validatedAt: isoTime,
    /** validation.failed only: set when the validation could not run to the end (a crash, a timeout), with the reason. */
    error: failure.optional(),
  })
  .strict();

const drillCompleted = z
  .object({
    backupId,
    tier,
    ok: z.boolean(),
    restoreMs: z.number().nonnegative(),
    rtoSeconds: z.number().int().positive(),
    withinRto: z.boolean(),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() }).strict()),
    finishedAt: isoTime,
  })
  .strict();

/** A drill that failed or could not run to the end: published and recorded like a completed one, so a failure is evidence too. */
const drillFailed = z
  .object({
    /** The backup drilled, or null when the drill failed before one was chosen. */
    backupId: backupId.nullable(),
    tier,
    startedAt: isoTime,
    failedAt: isoTime,
    durationMs: z.number().nonnegative(),
    rtoSeconds: z.number().int().positive(),
    checks: z.array(z.object({ name: z.string(), ok: z.boolean(), detail: z.string().optional() }).strict()),
    error: failure,
  })
  .strict();

const restoreEvent = z
  .object({
    backupId,
    tier,
    target: z.string(),
    destination: z.string(),
    actor: z.string(),
    at: isoTime,
    durationMs: z.number().nonnegative().optional(),
    recoveredTo: z.string().optional(),
    error: failure.optional(),
  })
  .strict();

const retentionExpired = z
  .object({
    tier,
    backups: z.array(z.object({ backupId, reason: z.string() }).strict()),
    walFiles: z.number().int().nonnegative(),
    bytesFreed: z.number().int().nonnegative(),
    dryRun: z.boolean(),
    at: isoTime,
  })
  .strict();

const replicationEvent = z
  .object({
    tier,
    object: z.string(),
    from: z.string(),
    to: z.string(),
    sha256: sha256.optional(),
    bytes: z.number().int().nonnegative().optional(),
    at: isoTime,
    error: failure.optional(),
  })
  .strict();

const auditEvent = z
  .object({
    actor: z.string(),
    role: z.string().optional(),
    action: z.string(),
    resource: z.string(),
    outcome: z.enum(['allowed', 'denied', 'succeeded', 'failed']),
    at: isoTime,
    detail: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export interface EventDefinition<T extends z.ZodTypeAny = z.ZodTypeAny> {
  topic: Topic;
  version: number;
  schema: T;
}

const define = <T extends z.ZodTypeAny>(topic: Topic, schema: T, version = 1): EventDefinition<T> => ({ topic, version, schema });

/** CloudEvents `type` → topic and data schema. Types are reverse-DNS as CloudEvents recommends. */
export const EVENT_TYPES = {
  'dev.rookery.backup.started': define(TOPICS.backup, backupStarted),
  'dev.rookery.backup.completed': define(TOPICS.backup, backupCompleted),
  'dev.rookery.backup.failed': define(TOPICS.backup, backupFailed),
  'dev.rookery.wal.archived': define(TOPICS.wal, walArchived),
  'dev.rookery.wal.streamed': define(TOPICS.wal, walStreamed),
  'dev.rookery.validation.passed': define(TOPICS.validation, validationResult),
  'dev.rookery.validation.failed': define(TOPICS.validation, validationResult),
  'dev.rookery.drill.completed': define(TOPICS.validation, drillCompleted),
  'dev.rookery.drill.failed': define(TOPICS.validation, drillFailed),
  'dev.rookery.restore.started': define(TOPICS.restore, restoreEvent),
  'dev.rookery.restore.completed': define(TOPICS.restore, restoreEvent),
  'dev.rookery.restore.failed': define(TOPICS.restore, restoreEvent),
  'dev.rookery.retention.expired': define(TOPICS.retention, retentionExpired),
  'dev.rookery.replication.copied': define(TOPICS.replication, replicationEvent),
  'dev.rookery.replication.failed': define(TOPICS.replication, replicationEvent),
  'dev.rookery.audit': define(TOPICS.audit, auditEvent),
} as const;

export type EventType = keyof typeof EVENT_TYPES;
export type EventData<K extends EventType> = z.infer<(typeof EVENT_TYPES)[K]['schema']>;

export function isEventType(value: string): value is EventType {
  return Object.prototype.hasOwnProperty.call(EVENT_TYPES, value);
}
