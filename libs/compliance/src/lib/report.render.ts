import { LintFinding, TierCompliance } from './tier-compliance';

/**
 * The exported evidence (`rookery report`, GET /report.md, /report.csv): what an auditor files for
 * GDPR/SOX. Markdown for people, CSV (one row per tier, RFC 4180 quoting) for spreadsheets.
 */
export function renderMarkdown(
  tiers: readonly TierCompliance[],
  options: { generatedAt?: Date; period?: { since?: string; until?: string } } = {},
): string {
  const generatedAt = (options.generatedAt ?? new Date()).toISOString();
  const lines: string[] = [
    '# rookery compliance report',
    '',
    `Generated ${generatedAt}${periodText(options.period)}. Source: the compliance ledger (every backup, WAL, validation, drill, retention and replication event, recorded once per event id).`,
    '',
    '| tier | status | last good full | recovery point | RPO exposure / objective | last drill / RTO | validation coverage | retention |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...tiers.map(
      (tier) =>
        `| ${[
          tier.tier,
          tier.status.toUpperCase(),
          tier.lastGoodFull ? `${tier.lastGoodFull.backupId} (${tier.lastGoodFull.finishedAt})` : 'none',
          tier.recoveryPoint ? `${tier.recoveryPoint.at} (${tier.recoveryPoint.source})` : 'none',
          `${seconds(tier.rpoExposureSeconds)} / ${seconds(tier.objectives.rpoSeconds)}${tier.rpoMet === false ? ' **MISSED**' : ''}`,
          drillText(tier, (text) => `**${text.toUpperCase()}**`),
          coverageText(tier),
          tier.retention.ok
            ? 'ok'
            : `**${tier.retention.expiredEarly.length} expired early, ${tier.retention.keptPastPolicy.length} kept past policy**`,
        ].join(' | ')} |`,
    ),
    '',
  ];
  for (const tier of tiers) {
    lines.push(`## ${tier.tier}`, '');
    lines.push(
      `Objectives: RPO ${seconds(tier.objectives.rpoSeconds)}, RTO ${seconds(tier.objectives.rtoSeconds)}, retention ${tier.objectives.retentionDays} d.`,
      '',
    );
    const completed = tier.series.backups.filter((backup) => backup.status === 'completed').length;
    const failed = tier.series.backups.length - completed;
    lines.push(
      `- Backups: ${completed} completed, ${failed} failed; validation ${coverageText(tier)}${tier.validation.openFailures.length ? `, open failures: ${tier.validation.openFailures.join(', ')}` : ''}.`,
    );
    lines.push(`- Drills: ${tier.series.drills.length}${tier.lastDrill ? `, last ${tier.lastDrill.finishedAt}: ${drillText(tier)}` : ''}.`);
    if (tier.lastValidation && !tier.lastValidation.ok)
      lines.push(`- Last validation (${tier.lastValidation.backupId}, ${tier.lastValidation.at}) failed: ${tier.lastValidation.error}.`);
    if (tier.missing.length) lines.push(`- Missing evidence: ${tier.missing.join(', ')}.`);
    lines.push(
      `- Cross-region copies: ${tier.replication.copies}, failures ${tier.replication.failures}${tier.replication.lastCopyAt ? `, last ${tier.replication.lastCopyAt}` : ''}.`,
    );
    for (const early of tier.retention.expiredEarly)
      lines.push(`- Retention: ${early.backupId} expired ${early.expiredAt}, before its retention date ${early.retentionUntil}.`);
    for (const kept of tier.retention.keptPastPolicy)
      lines.push(`- Retention: ${kept.backupId} kept past its retention date ${kept.retentionUntil}.`);
    for (const finding of tier.lint) lines.push(`- Policy lint: ${findingText(finding)}.`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

export const CSV_COLUMNS = [
  'tier',
  'status',
  'last_good_full_id',
  'last_good_full_at',
  'recovery_point_at',
  'rpo_exposure_s',
  'rpo_objective_s',
  'rpo_met',
  'last_drill_at',
  'last_drill_restore_s',
  'rto_objective_s',
  'rto_met',
  'backups_completed',
  'backups_validated',
  'validation_open_failures',
  'expired_early',
  'kept_past_policy',
  'copies',
  'copy_failures',
  'lint_findings',
  'missing_evidence',
] as const;

export function renderCsv(tiers: readonly TierCompliance[]): string {
  const rows = tiers.map((tier) => [
    tier.tier,
    tier.status,
    tier.lastGoodFull?.backupId ?? '',
    tier.lastGoodFull?.finishedAt ?? '',
    tier.recoveryPoint?.at ?? '',
    tier.rpoExposureSeconds === null ? '' : Math.round(tier.rpoExposureSeconds).toString(),
    tier.objectives.rpoSeconds.toString(),
    tier.rpoMet === null ? '' : String(tier.rpoMet),
    tier.lastDrill?.finishedAt ?? '',
    tier.lastDrill ? tier.lastDrill.restoreSeconds.toFixed(1) : '',
    tier.objectives.rtoSeconds.toString(),
    tier.lastDrill ? String(tier.lastDrill.withinRto && tier.lastDrill.ok) : '',
    tier.validation.completed.toString(),
    tier.validation.validated.toString(),
    tier.validation.openFailures.join(' '),
    tier.retention.expiredEarly.map((entry) => entry.backupId).join(' '),
    tier.retention.keptPastPolicy.map((entry) => entry.backupId).join(' '),
    tier.replication.copies.toString(),
    tier.replication.failures.toString(),
    tier.lint.map(findingText).join('; '),
    tier.missing.join('; '),
  ]);
  return [CSV_COLUMNS as readonly string[], ...rows].map((row) => row.map(csvField).join(',')).join('\r\n') + '\r\n';
}

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function coverageText(tier: TierCompliance): string {
  const { validated, completed, coverage } = tier.validation;
  if (coverage === null) return 'no backup recorded';
  if (!tier.lastValidation) return `no validation recorded (0/${completed})`;
  return `${validated}/${completed} (${Math.round(coverage * 100)} %)`;
}

/** The last drill against the RTO; a failed drill with its reason; 'no drill recorded' when there is none. */
export function drillText(tier: TierCompliance, emphasize: (text: string) => string = (text) => text): string {
  const drill = tier.lastDrill;
  if (!drill) return 'no drill recorded';
  if (drill.error !== null) return `${emphasize('failed')} after ${seconds(drill.restoreSeconds)}: ${drill.error}`;
  return `${seconds(drill.restoreSeconds)} against an RTO of ${seconds(drill.rtoSeconds)}${drill.withinRto && drill.ok ? '' : ` — ${emphasize('missed')}`}`;
}

/** `warning rpo-schedule: … (acknowledged: …)`: a finding with its rule, and the operator's reason once acknowledged. */
export function findingText(finding: LintFinding): string {
  return `${finding.severity} ${finding.rule}: ${finding.message}${finding.acknowledged === null ? '' : ` (acknowledged: ${finding.acknowledged})`}`;
}

function periodText(period?: { since?: string; until?: string }): string {
  if (!period?.since && !period?.until) return '';
  return ` for ${period.since ?? 'the beginning'} to ${period.until ?? 'now'}`;
}

export function seconds(value: number | null): string {
  if (value === null) return 'n/a';
  if (value < 120) return `${Math.round(value * 10) / 10} s`;
  if (value < 7_200) return `${Math.round(value / 60)} min`;
  if (value < 172_800) return `${Math.round((value / 3_600) * 10) / 10} h`;
  return `${Math.round((value / 86_400) * 10) / 10} d`;
}
