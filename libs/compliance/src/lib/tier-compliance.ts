import { PolicyFacts, PolicyFinding, TierName, TierPolicy, lintPolicy } from '@rookery/core';

/**
 * Compliance of one tier computed from the ledger (DESIGN §9): pure, so the service, the dashboard,
 * `rookery report` and the tests all derive the same figures from the same events.
 */
export interface LedgerEvent {
  eventId: string;
  type: string;
  subject: string;
  time: string;
  data: Record<string, unknown>;
}

export interface BackupPoint {
  backupId: string;
  type: string;
  status: 'completed' | 'failed';
  finishedAt: string;
  durationMs: number | null;
  storedBytes: number | null;
  retentionUntil: string | null;
}

export interface DrillPoint {
  /** Null for a drill that failed before a backup was chosen. */
  backupId: string | null;
  finishedAt: string;
  /** How long the restore (or, for a failed drill, the attempt) took. */
  restoreSeconds: number;
  rtoSeconds: number;
  withinRto: boolean;
  ok: boolean;
  /** Why a drill failed or could not finish (dev.rookery.drill.failed); null for a completed one. */
  error: string | null;
}

export interface ValidationPoint {
  backupId: string;
  at: string;
  ok: boolean;
  /** The reason a validation could not run to the end, or the checks that failed. */
  error: string | null;
}

/** A policy-lint finding with the operator's acknowledgement (policy.acknowledge), if any. */
export interface LintFinding extends PolicyFinding {
  acknowledged: string | null;
}

export interface ExposurePoint {
  /** The moment just before a new recovery point landed (or now). */
  at: string;
  /** Seconds of data that would have been lost at that moment. */
  exposureSeconds: number;
}

export interface TierCompliance {
  tier: TierName;
  generatedAt: string;
  objectives: { rpoSeconds: number; rtoSeconds: number; retentionDays: number };
  lastGoodFull: { backupId: string; finishedAt: string; validated: boolean } | null;
  recoveryPoint: { at: string; source: 'wal' | 'backup' | 'stream' } | null;
  /** The synchronous WAL stream's last report (dev.rookery.wal.streamed); null when the tier has none. */
  stream: { inSync: boolean; at: string; current: boolean; lagBytes: number | null } | null;
  rpoExposureSeconds: number | null;
  rpoMet: boolean | null;
  lastDrill: DrillPoint | null;
  lastValidation: ValidationPoint | null;
  /** Evidence the ledger does not hold ("no backup recorded", "no validation recorded", "no drill recorded"). */
  missing: string[];
  validation: { completed: number; validated: number; coverage: number | null; openFailures: string[] };
  retention: {
    expiredEarly: { backupId: string; retentionUntil: string; expiredAt: string }[];
    keptPastPolicy: { backupId: string; retentionUntil: string }[];
    ok: boolean;
  };
  replication: { copies: number; failures: number; lastCopyAt: string | null };
  lint: LintFinding[];
  /** unknown: no backup recorded, so nothing can be said (backfill the ledger: rookery catalog rebuild). */
  status: 'ok' | 'attention' | 'failing' | 'unknown';
  series: { backups: BackupPoint[]; exposure: ExposurePoint[]; drills: DrillPoint[] };
}

/** A backup kept this long past its retention date counts as kept past policy (expiry runs daily). */
const RETENTION_GRACE_MS = 36 * 3_600_000;

export function computeTierCompliance(
  policy: TierPolicy,
  events: readonly LedgerEvent[],
  options: { now?: Date; facts?: PolicyFacts } = {},
): TierCompliance {
  const now = options.now ?? new Date();
  const mine = events.filter((event) => event.subject === policy.tier).sort((a, b) => a.time.localeCompare(b.time));
  const ofType = (...types: string[]) => mine.filter((event) => types.some((type) => event.type === `dev.rookery.${type}`));

  const backups = backupPoints(ofType('backup.completed', 'backup.failed'));
  const completed = backups.filter((backup) => backup.status === 'completed');

  // The latest validation verdict per backup decides whether it is good.
  const validations = ofType('validation.passed', 'validation.failed').map(validationPoint);
  const verdicts = new Map(validations.map((validation) => [validation.backupId, validation.ok]));
  const expiredAt = new Map<string, string>();
  for (const event of ofType('retention.expired')) {
    if (event.data['dryRun'] === true) continue;
    for (const backup of (event.data['backups'] as { backupId: string }[] | undefined) ?? []) expiredAt.set(backup.backupId, event.time);
  }

  const goodFull = [...completed]
    .reverse()
    .find((backup) => backup.type === 'full' && verdicts.get(backup.backupId) !== false && !expiredAt.has(backup.backupId));
  const stream = streamState(ofType('wal.streamed'), now);
  const recoveryPoints = [
    ...completed.map((backup) => ({ at: backup.finishedAt, source: 'backup' as const })),
    ...ofType('wal.archived').flatMap((event) =>
      ((event.data['segments'] as { archivedAt: string }[] | undefined) ?? []).map((segment) => ({
        at: segment.archivedAt,
        source: 'wal' as const,
      })),
    ),
    ...stream.inSyncAt.map((at) => ({ at, source: 'stream' as const })),
  ].sort((a, b) => a.at.localeCompare(b.at));
  // While the synchronous stream confirms every commit flushed, nothing acknowledged is at risk.
  if (stream.last?.current) recoveryPoints.push({ at: now.toISOString(), source: 'stream' });
  const recoveryPoint = recoveryPoints.at(-1) ?? null;
  const rpoExposureSeconds = recoveryPoint ? Math.max(0, (now.getTime() - Date.parse(recoveryPoint.at)) / 1000) : null;

  const drills = uniqueBy(
    [...ofType('drill.completed').map(completedDrill), ...ofType('drill.failed').map(failedDrill)].sort((a, b) =>
      a.finishedAt.localeCompare(b.finishedAt),
    ),
    (drill) => `${drill.backupId}@${drill.finishedAt}`,
  );

  const validated = completed.filter((backup) => verdicts.has(backup.backupId)).length;
  const openFailures = completed
    .filter((backup) => verdicts.get(backup.backupId) === false && !expiredAt.has(backup.backupId))
    .map((backup) => backup.backupId);

  const expiredEarly = completed.flatMap((backup) => {
    const at = expiredAt.get(backup.backupId);
    return at && backup.retentionUntil && at < backup.retentionUntil
      ? [{ backupId: backup.backupId, retentionUntil: backup.retentionUntil, expiredAt: at }]
      : [];
  });
  const pastPolicy = (backup: BackupPoint) =>
    backup.retentionUntil !== null &&
    !expiredAt.has(backup.backupId) &&
    Date.parse(backup.retentionUntil) + RETENTION_GRACE_MS < now.getTime() &&
    backup !== goodFull;
  // A parent of a retained incremental is kept past its date by rule (expire keeps the chain).
  const chainParents = parentsOfRetained(
    ofType('backup.completed'),
    completed.filter((backup) => !expiredAt.has(backup.backupId) && !pastPolicy(backup)).map((backup) => backup.backupId),
  );
  const keptPastPolicy = completed.flatMap((backup) =>
    pastPolicy(backup) && !chainParents.has(backup.backupId)
      ? [{ backupId: backup.backupId, retentionUntil: backup.retentionUntil as string }]
      : [],
  );

  const copies = ofType('replication.copied');
  const lastDrill = drills.at(-1) ?? null;
  // An RPO of 0 is met only while the synchronous stream confirms every commit (exposure 0).
  const rpoMet = rpoExposureSeconds === null ? null : rpoExposureSeconds <= policy.rpoSeconds;

  const result: TierCompliance = {
    tier: policy.tier,
    generatedAt: now.toISOString(),
    objectives: { rpoSeconds: policy.rpoSeconds, rtoSeconds: policy.rtoSeconds, retentionDays: policy.retentionDays },
    lastGoodFull: goodFull
      ? { backupId: goodFull.backupId, finishedAt: goodFull.finishedAt, validated: verdicts.get(goodFull.backupId) === true }
      : null,
    recoveryPoint,
    stream: stream.last,
    rpoExposureSeconds,
    rpoMet,
    lastDrill,
    lastValidation: validations.at(-1) ?? null,
    missing: [
      ...(backups.length === 0 ? ['no backup recorded'] : []),
      ...(validations.length === 0 ? ['no validation recorded'] : []),
      ...(drills.length === 0 ? ['no drill recorded'] : []),
    ],
    validation: { completed: completed.length, validated, coverage: completed.length ? validated / completed.length : null, openFailures },
    retention: { expiredEarly, keptPastPolicy, ok: expiredEarly.length === 0 && keptPastPolicy.length === 0 },
    replication: { copies: copies.length, failures: ofType('replication.failed').length, lastCopyAt: copies.at(-1)?.time ?? null },
    lint: lintFindings(policy, options.facts),
    status: 'ok',
    series: {
      backups,
      exposure: exposureSeries(
        recoveryPoints.map((point) => point.at),
        now,
      ),
      drills,
    },
  };
  result.status = statusOf(result);
  return result;
}

/** Every backup up the chains (backup.completed's `parent`) of the retained ones. */
function parentsOfRetained(completedEvents: readonly LedgerEvent[], retained: readonly string[]): Set<string> {
  const parentOf = new Map<string, string>();
  for (const event of completedEvents) {
    const parent = event.data['parent'];
    if (typeof parent === 'string' && parent) parentOf.set(String(event.data['backupId']), parent);
  }
  const parents = new Set<string>();
  for (const id of retained) {
    for (let parent = parentOf.get(id); parent && !parents.has(parent); parent = parentOf.get(parent)) parents.add(parent);
  }
  return parents;
}

/**
 * One point per backup and outcome: a backup recorded both by its event and by a backfill from
 * its manifest (rookery catalog rebuild) counts once.
 */
function backupPoints(events: readonly LedgerEvent[]): BackupPoint[] {
  const points = events.map(
    (event): BackupPoint => ({
      backupId: String(event.data['backupId']),
      type: String(event.data['type']),
      status: event.type.endsWith('completed') ? 'completed' : 'failed',
      finishedAt: String(event.data['finishedAt'] ?? event.data['failedAt'] ?? event.time),
      durationMs: typeof event.data['durationMs'] === 'number' ? event.data['durationMs'] : null,
      storedBytes: typeof event.data['storedBytes'] === 'number' ? event.data['storedBytes'] : null,
      retentionUntil: typeof event.data['retentionUntil'] === 'string' ? event.data['retentionUntil'] : null,
    }),
  );
  return uniqueBy(points, (point) => `${point.backupId}:${point.status}`);
}

function validationPoint(event: LedgerEvent): ValidationPoint {
  const ok = event.type.endsWith('passed');
  const checks = (event.data['checks'] as { name: string; ok: boolean }[] | undefined) ?? [];
  const failedChecks = checks.filter((check) => !check.ok).map((check) => check.name);
  return {
    backupId: String(event.data['backupId']),
    at: String(event.data['validatedAt'] ?? event.time),
    ok,
    error: ok
      ? null
      : (errorMessage(event.data['error']) ?? (failedChecks.length ? `failed checks: ${failedChecks.join(', ')}` : 'failed')),
  };
}

function completedDrill(event: LedgerEvent): DrillPoint {
  return {
    backupId: String(event.data['backupId']),
    finishedAt: String(event.data['finishedAt'] ?? event.time),
    restoreSeconds: Number(event.data['restoreMs']) / 1000,
    rtoSeconds: Number(event.data['rtoSeconds']),
    withinRto: event.data['withinRto'] === true,
    ok: event.data['ok'] === true,
    error: null,
  };
}

/** A drill that failed or could not finish is a failed drill: not ok, and not within the RTO. */
function failedDrill(event: LedgerEvent): DrillPoint {
  return {
    backupId: typeof event.data['backupId'] === 'string' ? event.data['backupId'] : null,
    finishedAt: String(event.data['failedAt'] ?? event.time),
    restoreSeconds: Number(event.data['durationMs'] ?? 0) / 1000,
    rtoSeconds: Number(event.data['rtoSeconds']),
    withinRto: false,
    ok: false,
    error: errorMessage(event.data['error']) ?? 'failed',
  };
}

/**
 * The synchronous stream's reports: the moments it confirmed every commit flushed, and whether its
 * last report still holds (in sync, and not older than the report's own validity).
 */
function streamState(events: readonly LedgerEvent[], now: Date): { inSyncAt: string[]; last: TierCompliance['stream'] } {
  const reports = events.map((event) => ({
    inSync: event.data['inSync'] === true,
    at: String(event.data['at'] ?? event.time),
    validForSeconds: Number(event.data['validForSeconds'] ?? 0),
    lagBytes: typeof event.data['lagBytes'] === 'number' ? event.data['lagBytes'] : null,
  }));
  const last = reports.at(-1);
  return {
    inSyncAt: reports.filter((report) => report.inSync).map((report) => report.at),
    last: last
      ? {
          inSync: last.inSync,
          at: last.at,
          lagBytes: last.lagBytes,
          current: last.inSync && now.getTime() - Date.parse(last.at) <= last.validForSeconds * 1000,
        }
      : null,
  };
}

/** The policy lint, each finding with the reason an operator acknowledged its rule with (policy.acknowledge). */
export function lintFindings(policy: TierPolicy, facts?: PolicyFacts): LintFinding[] {
  return lintPolicy(policy, facts).map((finding) => ({
    ...finding,
    acknowledged: policy.acknowledge?.find((acknowledgement) => acknowledgement.rule === finding.rule)?.reason ?? null,
  }));
}

function errorMessage(value: unknown): string | null {
  const message = (value as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : null;
}

function uniqueBy<T>(items: readonly T[], key: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(key(item)) && Boolean(seen.add(key(item))));
}

/**
 * The sawtooth of RPO exposure: just before each recovery point landed, the data since the
 * previous one was at risk; the last tooth is measured at `now`.
 */
export function exposureSeries(points: readonly string[], now: Date): ExposurePoint[] {
  const times = [...new Set(points)].sort();
  const series: ExposurePoint[] = [];
  for (let index = 1; index < times.length; index++) {
    series.push({ at: times[index], exposureSeconds: (Date.parse(times[index]) - Date.parse(times[index - 1])) / 1000 });
  }
  const last = times.at(-1);
  if (last) series.push({ at: now.toISOString(), exposureSeconds: Math.max(0, (now.getTime() - Date.parse(last)) / 1000) });
  return series;
}

/**
 * failing: the evidence shows an objective missed (no good full among recorded backups, RPO
 * exposure over the objective, a failed validation, a failed or slow drill, a backup expired early).
 * unknown: no backup recorded at all. attention: evidence missing, or a finding not acknowledged.
 * Policy-lint findings never make a tier failing by themselves: they are shown, with their rule.
 */
function statusOf(compliance: TierCompliance): TierCompliance['status'] {
  const failing =
    (compliance.series.backups.length > 0 && compliance.lastGoodFull === null) ||
    compliance.rpoMet === false ||
    compliance.validation.openFailures.length > 0 ||
    compliance.retention.expiredEarly.length > 0 ||
    (compliance.lastDrill !== null && (!compliance.lastDrill.ok || !compliance.lastDrill.withinRto));
  if (failing) return 'failing';
  if (compliance.series.backups.length === 0) return 'unknown';
  const attention =
    compliance.missing.length > 0 ||
    (compliance.validation.coverage ?? 0) < 1 ||
    compliance.retention.keptPastPolicy.length > 0 ||
    compliance.replication.failures > 0 ||
    compliance.lint.some((finding) => finding.severity !== 'info' && finding.acknowledged === null);
  return attention ? 'attention' : 'ok';
}
