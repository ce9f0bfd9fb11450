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
  backupId: string;
  finishedAt: string;
  restoreSeconds: number;
  rtoSeconds: number;
  withinRto: boolean;
  ok: boolean;
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
  recoveryPoint: { at: string; source: 'wal' | 'backup' } | null;
  rpoExposureSeconds: number | null;
  rpoMet: boolean | null;
  lastDrill: DrillPoint | null;
  validation: { completed: number; validated: number; coverage: number | null; openFailures: string[] };
  retention: {
    expiredEarly: { backupId: string; retentionUntil: string; expiredAt: string }[];
    keptPastPolicy: { backupId: string; retentionUntil: string }[];
    ok: boolean;
  };
  replication: { copies: number; failures: number; lastCopyAt: string | null };
  lint: PolicyFinding[];
  status: 'ok' | 'attention' | 'failing';
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

  const backups: BackupPoint[] = ofType('backup.completed', 'backup.failed').map((event) => ({
    backupId: String(event.data['backupId']),
    type: String(event.data['type']),
    status: event.type.endsWith('completed') ? 'completed' : 'failed',
    finishedAt: String(event.data['finishedAt'] ?? event.data['failedAt'] ?? event.time),
    durationMs: typeof event.data['durationMs'] === 'number' ? event.data['durationMs'] : null,
    storedBytes: typeof event.data['storedBytes'] === 'number' ? event.data['storedBytes'] : null,
    retentionUntil: typeof event.data['retentionUntil'] === 'string' ? event.data['retentionUntil'] : null,
  }));
  const completed = backups.filter((backup) => backup.status === 'completed');

  // The latest validation verdict per backup decides whether it is good.
  const verdicts = new Map<string, boolean>();
  for (const event of ofType('validation.passed', 'validation.failed')) verdicts.set(String(event.data['backupId']), event.type.endsWith('passed'));
  const expiredAt = new Map<string, string>();
  for (const event of ofType('retention.expired')) {
    if (event.data['dryRun'] === true) continue;
    for (const backup of (event.data['backups'] as { backupId: string }[] | undefined) ?? []) expiredAt.set(backup.backupId, event.time);
  }

  const goodFull = [...completed].reverse().find((backup) => backup.type === 'full' && verdicts.get(backup.backupId) !== false && !expiredAt.has(backup.backupId));
  const recoveryPoints = [
    ...completed.map((backup) => ({ at: backup.finishedAt, source: 'backup' as const })),
    ...ofType('wal.archived').flatMap((event) =>
      ((event.data['segments'] as { archivedAt: string }[] | undefined) ?? []).map((segment) => ({ at: segment.archivedAt, source: 'wal' as const })),
    ),
  ].sort((a, b) => a.at.localeCompare(b.at));
  const recoveryPoint = recoveryPoints.at(-1) ?? null;
  const rpoExposureSeconds = recoveryPoint ? Math.max(0, (now.getTime() - Date.parse(recoveryPoint.at)) / 1000) : null;

  const drills: DrillPoint[] = ofType('drill.completed').map((event) => ({
    backupId: String(event.data['backupId']),
    finishedAt: String(event.data['finishedAt'] ?? event.time),
    restoreSeconds: Number(event.data['restoreMs']) / 1000,
    rtoSeconds: Number(event.data['rtoSeconds']),
    withinRto: event.data['withinRto'] === true,
    ok: event.data['ok'] === true,
  }));

  const validated = completed.filter((backup) => verdicts.has(backup.backupId)).length;
  const openFailures = completed.filter((backup) => verdicts.get(backup.backupId) === false && !expiredAt.has(backup.backupId)).map((backup) => backup.backupId);

  const expiredEarly = completed.flatMap((backup) => {
    const at = expiredAt.get(backup.backupId);
    return at && backup.retentionUntil && at < backup.retentionUntil ? [{ backupId: backup.backupId, retentionUntil: backup.retentionUntil, expiredAt: at }] : [];
  });
  const keptPastPolicy = completed.flatMap((backup) =>
    backup.retentionUntil && !expiredAt.has(backup.backupId) && Date.parse(backup.retentionUntil) + RETENTION_GRACE_MS < now.getTime() && backup !== goodFull
      ? [{ backupId: backup.backupId, retentionUntil: backup.retentionUntil }]
      : [],
  );

  const copies = ofType('replication.copied');
  const lint = lintPolicy(policy, options.facts);
  const lastDrill = drills.at(-1) ?? null;
  const rpoMet = rpoExposureSeconds === null ? null : policy.rpoSeconds === 0 ? rpoExposureSeconds <= 60 && recoveryPoint?.source === 'wal' : rpoExposureSeconds <= policy.rpoSeconds;

  const result: TierCompliance = {
    tier: policy.tier,
    generatedAt: now.toISOString(),
    objectives: { rpoSeconds: policy.rpoSeconds, rtoSeconds: policy.rtoSeconds, retentionDays: policy.retentionDays },
    lastGoodFull: goodFull ? { backupId: goodFull.backupId, finishedAt: goodFull.finishedAt, validated: verdicts.get(goodFull.backupId) === true } : null,
    recoveryPoint,
    rpoExposureSeconds,
    rpoMet,
    lastDrill,
    validation: { completed: completed.length, validated, coverage: completed.length ? validated / completed.length : null, openFailures },
    retention: { expiredEarly, keptPastPolicy, ok: expiredEarly.length === 0 && keptPastPolicy.length === 0 },
    replication: { copies: copies.length, failures: ofType('replication.failed').length, lastCopyAt: copies.at(-1)?.time ?? null },
    lint,
    status: 'ok',
    series: { backups, exposure: exposureSeries(recoveryPoints.map((point) => point.at), now), drills },
  };
  result.status = statusOf(result);
  return result;
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

function statusOf(compliance: TierCompliance): TierCompliance['status'] {
  const failing =
    compliance.lastGoodFull === null ||
    compliance.rpoMet === false ||
    compliance.validation.openFailures.length > 0 ||
    compliance.retention.expiredEarly.length > 0 ||
    (compliance.lastDrill !== null && (!compliance.lastDrill.ok || !compliance.lastDrill.withinRto)) ||
    compliance.lint.some((finding) => finding.severity === 'error');
  if (failing) return 'failing';
  const attention =
    compliance.lastDrill === null ||
    (compliance.validation.coverage ?? 0) < 1 ||
    compliance.retention.keptPastPolicy.length > 0 ||
    compliance.replication.failures > 0 ||
    compliance.lint.some((finding) => finding.severity === 'warning');
  return attention ? 'attention' : 'ok';
}
