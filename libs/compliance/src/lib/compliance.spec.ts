import { DEFAULT_POLICIES } from '@rookery/core';
import { renderDashboard } from './dashboard.render';
import { CSV_COLUMNS, renderCsv, renderMarkdown } from './report.render';
import { LedgerEvent, computeTierCompliance, exposureSeries } from './tier-compliance';

let sequence = 0;
function event(type: string, subject: string, time: string, data: Record<string, unknown>): LedgerEvent {
  return { eventId: `e${++sequence}`, type: `dev.rookery.${type}`, subject, time, data };
}
const completed = (tier: string, backupId: string, type: string, finishedAt: string, retentionUntil = '2027-06-01T00:00:00.000Z') =>
  event('backup.completed', tier, finishedAt, { backupId, tier, type, finishedAt, durationMs: 60_000, storedBytes: 1_000_000, retentionUntil });

const now = new Date('2026-11-26T12:00:00.000Z');

describe('computeTierCompliance', () => {
  const oltp = [
    completed('oltp', 'f1', 'full', '2026-11-24T02:05:00.000Z', '2026-11-25T00:00:00.000Z'),
    completed('oltp', 'f2', 'full', '2026-11-25T02:05:00.000Z'),
    completed('oltp', 'f3', 'full', '2026-11-26T02:05:00.000Z'),
    event('backup.failed', 'oltp', '2026-11-26T03:00:00.000Z', { backupId: 'x1', tier: 'oltp', type: 'full', failedAt: '2026-11-26T03:00:00.000Z' }),
    event('validation.passed', 'oltp', '2026-11-25T02:10:00.000Z', { backupId: 'f2' }),
    event('validation.failed', 'oltp', '2026-11-26T02:10:00.000Z', { backupId: 'f3' }),
    event('wal.archived', 'oltp', '2026-11-26T11:55:00.000Z', {
      segments: [
        { name: 'A', archivedAt: '2026-11-26T11:50:00.000Z' },
        { name: 'B', archivedAt: '2026-11-26T11:55:00.000Z' },
      ],
    }),
    event('drill.completed', 'oltp', '2026-11-25T04:00:00.000Z', { backupId: 'f2', restoreMs: 300_000, rtoSeconds: 900, withinRto: true, ok: true, finishedAt: '2026-11-25T04:00:00.000Z' }),
    event('retention.expired', 'oltp', '2026-11-25T06:00:00.000Z', { backups: [{ backupId: 'f1', reason: 'older than 90 d' }], dryRun: false }),
    event('replication.copied', 'oltp', '2026-11-26T02:20:00.000Z', {}),
    // Another tier's events are not this tier's evidence.
    completed('queue', 'q1', 'full', '2026-11-26T11:59:00.000Z'),
  ];

  it('derives the last good full, recovery point, exposure, drill, validation, retention and copies', () => {
    const result = computeTierCompliance(DEFAULT_POLICIES.oltp, oltp, { now, facts: { archiveTimeoutSeconds: 60 } });
    // f3 failed validation: the last good full is f2.
    expect(result.lastGoodFull).toEqual({ backupId: 'f2', finishedAt: '2026-11-25T02:05:00.000Z', validated: true });
    expect(result.recoveryPoint).toEqual({ at: '2026-11-26T11:55:00.000Z', source: 'wal' });
    expect(result.rpoExposureSeconds).toBe(300);
    expect(result.rpoMet).toBe(true);
    expect(result.lastDrill).toMatchObject({ restoreSeconds: 300, rtoSeconds: 900, withinRto: true });
    expect(result.validation).toEqual({ completed: 3, validated: 2, coverage: 2 / 3, openFailures: ['f3'] });
    expect(result.retention).toEqual({ ok: true, expiredEarly: [], keptPastPolicy: [] });
    expect(result.replication).toEqual({ copies: 1, failures: 0, lastCopyAt: '2026-11-26T02:20:00.000Z' });
    expect(result.lint).toEqual([]);
    expect(result.status).toBe('failing');
    expect(result.series.backups.map((backup) => `${backup.backupId}:${backup.status}`)).toEqual(['f1:completed', 'f2:completed', 'f3:completed', 'x1:failed']);
  });

  it('reports an early expiry, a backup kept past policy, a missed RPO and a missed drill', () => {
    const history = [
      completed('olap', 'o1', 'full', '2026-11-20T04:05:00.000Z', '2026-12-20T00:00:00.000Z'),
      completed('olap', 'o2', 'full', '2026-11-21T04:05:00.000Z', '2026-11-22T00:00:00.000Z'),
      completed('olap', 'o3', 'full', '2026-11-23T04:05:00.000Z'),
      event('retention.expired', 'olap', '2026-11-22T06:00:00.000Z', { backups: [{ backupId: 'o1', reason: 'manual' }], dryRun: false }),
      event('retention.expired', 'olap', '2026-11-22T06:00:00.000Z', { backups: [{ backupId: 'o3', reason: 'dry run only' }], dryRun: true }),
      event('drill.completed', 'olap', '2026-11-24T00:00:00.000Z', { backupId: 'o3', restoreMs: 9_000_000, rtoSeconds: 7200, withinRto: false, ok: true, finishedAt: '2026-11-24T00:00:00.000Z' }),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, history, { now });
    expect(result.retention.expiredEarly).toEqual([{ backupId: 'o1', retentionUntil: '2026-12-20T00:00:00.000Z', expiredAt: '2026-11-22T06:00:00.000Z' }]);
    expect(result.retention.keptPastPolicy).toEqual([{ backupId: 'o2', retentionUntil: '2026-11-22T00:00:00.000Z' }]);
    expect(result.rpoExposureSeconds).toBe((now.getTime() - Date.parse('2026-11-23T04:05:00.000Z')) / 1000);
    expect(result.rpoMet).toBe(false);
    expect(result.lastDrill?.withinRto).toBe(false);
    expect(result.lastGoodFull?.backupId).toBe('o3');
    expect(result.status).toBe('failing');
  });

  it('has no good full, no recovery point and a failing status for a tier with no events', () => {
    const result = computeTierCompliance(DEFAULT_POLICIES.queue, [], { now, facts: { synchronousStreaming: true } });
    expect(result).toMatchObject({ lastGoodFull: null, recoveryPoint: null, rpoExposureSeconds: null, rpoMet: null, lastDrill: null, status: 'failing' });
    expect(result.validation.coverage).toBeNull();
  });

  it('draws the exposure sawtooth from recovery points to now', () => {
    expect(exposureSeries(['2026-11-26T10:00:00.000Z', '2026-11-26T11:00:00.000Z', '2026-11-26T11:00:00.000Z'], now)).toEqual([
      { at: '2026-11-26T11:00:00.000Z', exposureSeconds: 3600 },
      { at: '2026-11-26T12:00:00.000Z', exposureSeconds: 3600 },
    ]);
  });
});

describe('report rendering', () => {
  const tiers = [
    computeTierCompliance(DEFAULT_POLICIES.content, [completed('content', 'c1', 'full', '2026-11-26T03:05:00.000Z')], { now }),
    computeTierCompliance(DEFAULT_POLICIES.queue, [], { now }),
  ];

  it('writes Markdown with one summary row per tier and the policy lint', () => {
    const markdown = renderMarkdown(tiers, { generatedAt: now });
    expect(markdown).toContain('# rookery compliance report');
    expect(markdown).toMatch(/^\| content \| FAILING \| c1 \(2026-11-26T03:05:00.000Z\) \|/m);
    expect(markdown).toMatch(/^\| queue \| FAILING \| none \|/m);
    expect(markdown).toContain('- Policy lint (error): the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h.');
  });

  it('writes CSV with a header and quoted fields', () => {
    const [header, content, queue] = renderCsv(tiers).split('\r\n');
    expect(header.split(',')).toEqual([...CSV_COLUMNS]);
    const contentFields = content.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    expect(contentFields[0]).toBe('content');
    expect(contentFields[2]).toBe('c1');
    expect(contentFields.at(-1)).toBe('"error: the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h"');
    expect(queue.startsWith('queue,failing,,')).toBe(true);
  });

  it('renders the dashboard with a section and three charts per tier, text escaped', () => {
    const html = renderDashboard(tiers, { generatedAt: now, title: 'a <b>title</b>' });
    expect(html).toContain('<title>a &#60;b&#62;title&#60;/b&#62;</title>');
    expect(html.match(/<section class="tier"/g)).toHaveLength(2);
    expect(html.match(/<svg data-chart=/g)).toHaveLength(6);
    expect(html).toContain('data-chart="backups" viewBox');
    expect(html).not.toMatch(/<script/);
  });
});
