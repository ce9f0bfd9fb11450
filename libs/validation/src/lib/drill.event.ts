import { DrillFailedError, TierName } from '@rookery/core';
import { CloudEvent, EventData, createEvent } from '@rookery/events';
import { eventFailure } from './failure.event';
import { DrillOptions, DrillReport, RestoreDrill } from './restore.drill';
import { failureSummary } from './validation-check';

export type DrillFailure = EventData<'dev.rookery.drill.failed'>;

/**
 * A drill as evidence: a drill that passed is recorded as drill.completed; one whose restore or
 * data checks failed, or that could not run to the end (no backup to drill, a crash), as
 * drill.failed with the reason. `error` is what a failed drill answers with: DrillFailedError
 * naming the failed checks, or what stopped the drill.
 */
export type DrillOutcome =
  | { ok: true; report: DrillReport; event: CloudEvent<'dev.rookery.drill.completed'> }
  | { ok: false; report: DrillReport | null; event: CloudEvent<'dev.rookery.drill.failed'>; error: unknown };

/** Runs a drill and builds the event recording it, whatever its end: the service and `rookery drill` publish the same. */
export async function runRecordedDrill(drill: RestoreDrill, tier: TierName, options: DrillOptions, source: string): Promise<DrillOutcome> {
  const startedAt = new Date();
  let report: DrillReport;
  try {
    report = await drill.run(tier, options);
  } catch (error) {
    const backupId = options.backup && options.backup !== 'latest' ? options.backup : null;
    const failure = drillFailure(
      { backupId, tier, startedAt, failedAt: new Date(), rtoSeconds: drill.rtoSeconds(tier), checks: [] },
      error,
    );
    return { ok: false, report: null, event: createEvent('dev.rookery.drill.failed', tier, failure, { source }), error };
  }
  if (report.ok)
    return { ok: true, report, event: createEvent('dev.rookery.drill.completed', tier, drillCompletedData(report), { source }) };
  const error = new DrillFailedError(report, failureSummary(report.checks));
  const facts = { ...report, startedAt: new Date(report.startedAt), failedAt: new Date(report.finishedAt) };
  return { ok: false, report, event: createEvent('dev.rookery.drill.failed', tier, drillFailure(facts, error), { source }), error };
}

export function drillCompletedData(report: DrillReport): EventData<'dev.rookery.drill.completed'> {
  return {
    backupId: report.backupId,
    tier: report.tier,
    ok: report.ok,
    restoreMs: report.restoreMs,
    rtoSeconds: eventRtoSeconds(report.rtoSeconds),
    withinRto: report.withinRto,
    checks: report.checks,
    finishedAt: report.finishedAt,
  };
}

interface DrillFacts {
  backupId: string | null;
  tier: TierName;
  startedAt: Date;
  failedAt: Date;
  rtoSeconds: number;
  checks: DrillReport['checks'];
}

function drillFailure(facts: DrillFacts, error: unknown): DrillFailure {
  return {
    backupId: facts.backupId,
    tier: facts.tier,
    startedAt: facts.startedAt.toISOString(),
    failedAt: facts.failedAt.toISOString(),
    durationMs: Math.max(0, facts.failedAt.getTime() - facts.startedAt.getTime()),
    rtoSeconds: eventRtoSeconds(facts.rtoSeconds),
    checks: facts.checks,
    error: eventFailure(error),
  };
}

/** Events carry the RTO in whole seconds: a policy's fraction of a second is rounded up. */
function eventRtoSeconds(rtoSeconds: number): number {
  return Math.max(1, Math.ceil(rtoSeconds));
}
