import { coverageText, drillText, findingText, seconds } from './report.render';
import { TierCompliance } from './tier-compliance';

/**
 * The compliance dashboard (GET /dashboard): one self-contained HTML page, charts drawn as inline
 * SVG on the server, no script and no external asset, so it renders the same in any browser, in
 * a printed PDF, and offline. Per tier: status and figures, the backup timeline, RPO exposure over
 * time against the objective, and drill durations against the RTO.
 */
export function renderDashboard(tiers: readonly TierCompliance[], options: { generatedAt?: Date; title?: string } = {}): string {
  const title = options.title ?? 'rookery compliance';
  const generatedAt = (options.generatedAt ?? new Date()).toISOString();
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2733; background: #f6f7f9; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #5b6675; margin-bottom: 16px; }
.tiers { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
.tier { background: #fff; border: 1px solid #d9dee5; border-radius: 8px; padding: 16px; }
.tier h2 { font-size: 17px; margin: 0 0 8px; display: flex; gap: 8px; align-items: center; }
.badge { font-size: 12px; padding: 2px 8px; border-radius: 10px; color: #fff; }
.ok { background: #2e7d32; } .attention { background: #b26a00; } .failing { background: #c62828; } .unknown { background: #5b6675; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
dt { color: #5b6675; } dd { margin: 0; }
.chart h3 { font-size: 13px; margin: 12px 0 4px; color: #3a4554; }
svg { width: 100%; height: auto; background: #fbfcfd; border: 1px solid #eef0f3; }
.lint { margin: 4px 0 0; padding-left: 18px; }
.lint .error { color: #c62828; } .lint .warning { color: #b26a00; } .lint .info, .lint .acknowledged, .missing { color: #5b6675; }
</style>
</head>
<body>
<h1>${escape(title)}</h1>
<div class="meta">generated ${escape(generatedAt)} from the event ledger</div>
<div class="tiers">
${tiers.map(tierCard).join('\n')}
</div>
</body>
</html>
`;
}

function tierCard(tier: TierCompliance): string {
  return `<section class="tier" data-tier="${escape(tier.tier)}">
<h2>${escape(tier.tier)} <span class="badge ${tier.status}" data-testid="status">${tier.status}</span></h2>
<dl>
<dt>last good full</dt><dd>${tier.lastGoodFull ? `${escape(tier.lastGoodFull.backupId)}${tier.lastGoodFull.validated ? ' (validated)' : ''}` : 'none'}</dd>
<dt>recovery point</dt><dd>${tier.recoveryPoint ? `${escape(tier.recoveryPoint.at)} (${tier.recoveryPoint.source})` : 'none'}</dd>
<dt>RPO exposure</dt><dd data-testid="rpo">${seconds(tier.rpoExposureSeconds)} of ${seconds(tier.objectives.rpoSeconds)}${tier.rpoMet === false ? ' — missed' : ''}</dd>
<dt>last drill</dt><dd data-testid="drill">${escape(drillText(tier))}</dd>
<dt>validation</dt><dd data-testid="validation">${escape(coverageText(tier))}${tier.validation.openFailures.length ? `, ${tier.validation.openFailures.length} failed` : ''}</dd>
<dt>retention</dt><dd>${tier.retention.ok ? 'as policy says' : `${tier.retention.expiredEarly.length} expired early, ${tier.retention.keptPastPolicy.length} kept past policy`}</dd>
</dl>
${tier.missing.length ? `<div class="missing" data-testid="missing">${escape(tier.missing.join(', '))}</div>` : ''}
${tier.lint.length ? `<ul class="lint">${tier.lint.map((finding) => `<li class="${finding.acknowledged === null ? finding.severity : 'acknowledged'}" data-rule="${finding.rule}">${escape(findingText(finding))}</li>`).join('')}</ul>` : ''}
<div class="chart"><h3>backup timeline (stored size)</h3>${backupTimeline(tier)}</div>
<div class="chart"><h3>RPO exposure over time (dashed: objective)</h3>${exposureChart(tier)}</div>
<div class="chart"><h3>drill restore time (dashed: RTO)</h3>${drillChart(tier)}</div>
</section>`;
}

const WIDTH = 520;
const HEIGHT = 120;
const PAD = { left: 64, right: 8, top: 8, bottom: 20 };

interface Point {
  t: number;
  v: number;
  /** Sawtooth only: when this tooth started rising (the previous recovery point). */
  from?: number;
  color?: string;
  label: string;
}

function backupTimeline(tier: TierCompliance): string {
  const points = tier.series.backups.map((backup) => ({
    t: Date.parse(backup.finishedAt),
    v: backup.storedBytes ?? 0,
    color: backup.status === 'completed' ? '#2e7d32' : '#c62828',
    label: `${backup.backupId} ${backup.type} ${backup.status}`,
  }));
  return chart('backups', points, { kind: 'bars', format: bytes });
}

function exposureChart(tier: TierCompliance): string {
  const points = tier.series.exposure.map((point) => ({
    t: Date.parse(point.at),
    v: point.exposureSeconds,
    from: Date.parse(point.at) - point.exposureSeconds * 1000,
    label: `${point.at}: ${seconds(point.exposureSeconds)}`,
  }));
  return chart('exposure', points, { kind: 'sawtooth', format: (value) => seconds(value), reference: tier.objectives.rpoSeconds });
}

function drillChart(tier: TierCompliance): string {
  const points = tier.series.drills.map((drill) => ({
    t: Date.parse(drill.finishedAt),
    v: drill.restoreSeconds,
    color: drill.withinRto && drill.ok ? '#1565c0' : '#c62828',
    label: `${drill.backupId ?? 'no backup'}: ${seconds(drill.restoreSeconds)}`,
  }));
  return chart('drills', points, { kind: 'bars', format: (value) => seconds(value), reference: tier.objectives.rtoSeconds });
}

function chart(
  name: string,
  points: Point[],
  options: { kind: 'bars' | 'sawtooth'; format: (value: number) => string; reference?: number },
): string {
  const open = `<svg data-chart="${name}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${name}">`;
  if (points.length === 0)
    return `${open}<text x="${WIDTH / 2}" y="${HEIGHT / 2}" text-anchor="middle" fill="#8a94a3">no data yet</text></svg>`;
  const tMin = Math.min(...points.map((point) => point.from ?? point.t));
  const tMax = Math.max(...points.map((point) => point.t));
  const vMax = Math.max(...points.map((point) => point.v), options.reference ?? 0) * 1.1 || 1;
  const x = (t: number) =>
    PAD.left + (tMax === tMin ? (WIDTH - PAD.left - PAD.right) / 2 : ((t - tMin) / (tMax - tMin)) * (WIDTH - PAD.left - PAD.right));
  const y = (v: number) => HEIGHT - PAD.bottom - (v / vMax) * (HEIGHT - PAD.top - PAD.bottom);
  const parts: string[] = [
    `<line x1="${PAD.left}" y1="${y(0)}" x2="${WIDTH - PAD.right}" y2="${y(0)}" stroke="#b9c1cc"/>`,
    `<text x="${PAD.left - 4}" y="${y(vMax / 1.1) + 4}" text-anchor="end" font-size="10" fill="#5b6675">${escape(options.format(vMax / 1.1))}</text>`,
    `<text x="${PAD.left}" y="${HEIGHT - 4}" font-size="10" fill="#5b6675">${new Date(tMin).toISOString().slice(0, 16).replace('T', ' ')}</text>`,
    `<text x="${WIDTH - PAD.right}" y="${HEIGHT - 4}" text-anchor="end" font-size="10" fill="#5b6675">${new Date(tMax).toISOString().slice(0, 16).replace('T', ' ')}</text>`,
  ];
  if (options.kind === 'bars') {
    for (const point of points) {
      parts.push(
        `<rect data-point x="${(x(point.t) - 3).toFixed(1)}" y="${y(point.v).toFixed(1)}" width="6" height="${(y(0) - y(point.v)).toFixed(1)}" fill="${point.color ?? '#1565c0'}"><title>${escape(point.label)}</title></rect>`,
      );
    }
  } else {
    // Each tooth rises from zero (a recovery point landed) to its height (just before the next one).
    let path = '';
    for (const point of points) {
      const from = point.from ?? point.t;
      path += `M${x(from).toFixed(1)},${y(0).toFixed(1)} L${x(point.t).toFixed(1)},${y(point.v).toFixed(1)} L${x(point.t).toFixed(1)},${y(0).toFixed(1)} `;
    }
    parts.push(`<path data-point d="${path.trim()}" fill="none" stroke="#1565c0" stroke-width="1.5"/>`);
  }
  if (options.reference !== undefined) {
    parts.push(
      `<line x1="${PAD.left}" y1="${y(options.reference).toFixed(1)}" x2="${WIDTH - PAD.right}" y2="${y(options.reference).toFixed(1)}" stroke="#c62828" stroke-dasharray="4 3"/>`,
    );
  }
  return `${open}${parts.join('')}</svg>`;
}

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${value.toFixed(index === 0 ? 0 : 1)} ${units[index]}`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}
