import { DEFAULT_POLICIES } from '@rookery/core';
import { renderDashboard } from './dashboard.render';
import { CSV_COLUMNS, renderCsv, renderMarkdown } from './report.render';
import { LedgerEvent, computeTierCompliance, exposureSeries } from './tier-compliance';

let sequence = 0;
function event(type: string, subject: string, time: string, data: Record<string, unknown>): LedgerEvent {
  return { eventId: `e${++sequence}`, type: `dev.rookery.${type}`, subject, time, data };
}
const completed = (tier: string, backupId: string, type: string, finishedAt: string, retentionUntil = '2027-06-01T00:00:00.000Z') =>
  event('backup.completed', tier, finishedAt, {
    backupId,
    tier,
    type,
    finishedAt,
    durationMs: 60_000,
    storedBytes: 1_000_000,
    retentionUntil,
  });

const now = new Date('2026-11-26T12:00:00.000Z');

describe('computeTierCompliance', () => {
  it('counts block incrementals as recovery points and does not report a parent kept for a retained incremental as kept past policy', () => {
    const incremental = (backupId: string, parent: string, finishedAt: string, retentionUntil = '2027-06-01T00:00:00.000Z') => {
      const made = completed('oltp', backupId, 'incremental', finishedAt, retentionUntil);
      made.data['parent'] = parent;
      return made;
    };
    const history = [
      completed('oltp', 'f1', 'full', '2026-11-20T02:05:00.000Z', '2026-11-21T00:00:00.000Z'),
      incremental('i1', 'f1', '2026-11-20T03:05:00.000Z', '2026-11-21T00:00:00.000Z'),
      incremental('i2', 'i1', '2026-11-26T11:05:00.000Z'),
      completed('oltp', 'f0', 'full', '2026-11-19T02:05:00.000Z', '2026-11-20T00:00:00.000Z'),
      completed('oltp', 'f2', 'full', '2026-11-26T02:05:00.000Z'),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.oltp, history, { now });
    expect(result.recoveryPoint).toEqual({ at: '2026-11-26T11:05:00.000Z', source: 'backup' });
    expect(result.retention.keptPastPolicy).toEqual([{ backupId: 'f0', retentionUntil: '2026-11-20T00:00:00.000Z' }]);
  });

  const oltp = [
    completed('oltp', 'f1', 'full', '2026-11-24T02:05:00.000Z', '2026-11-25T00:00:00.000Z'),
    completed('oltp', 'f2', 'full', '2026-11-25T02:05:00.000Z'),
    completed('oltp', 'f3', 'full', '2026-11-26T02:05:00.000Z'),
    event('backup.failed', 'oltp', '2026-11-26T03:00:00.000Z', {
      backupId: 'x1',
      tier: 'oltp',
      type: 'full',
      failedAt: '2026-11-26T03:00:00.000Z',
    }),
    event('validation.passed', 'oltp', '2026-11-25T02:10:00.000Z', { backupId: 'f2' }),
    event('validation.failed', 'oltp', '2026-11-26T02:10:00.000Z', { backupId: 'f3' }),
    event('wal.archived', 'oltp', '2026-11-26T11:55:00.000Z', {
      segments: [
        { name: 'A', archivedAt: '2026-11-26T11:50:00.000Z' },
        { name: 'B', archivedAt: '2026-11-26T11:55:00.000Z' },
      ],
    }),
    event('drill.completed', 'oltp', '2026-11-25T04:00:00.000Z', {
      backupId: 'f2',
      restoreMs: 300_000,
      rtoSeconds: 900,
      withinRto: true,
      ok: true,
      finishedAt: '2026-11-25T04:00:00.000Z',
    }),
    event('retention.expired', 'oltp', '2026-11-25T06:00:00.000Z', {
      backups: [{ backupId: 'f1', reason: 'older than 90 d' }],
      dryRun: false,
    }),
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
    expect(result.series.backups.map((backup) => `${backup.backupId}:${backup.status}`)).toEqual([
      'f1:completed',
      'f2:completed',
      'f3:completed',
      'x1:failed',
    ]);
  });

  it('reports an early expiry, a backup kept past policy, a missed RPO and a missed drill', () => {
    const history = [
      completed('olap', 'o1', 'full', '2026-11-20T04:05:00.000Z', '2026-12-20T00:00:00.000Z'),
      completed('olap', 'o2', 'full', '2026-11-21T04:05:00.000Z', '2026-11-22T00:00:00.000Z'),
      completed('olap', 'o3', 'full', '2026-11-23T04:05:00.000Z'),
      event('retention.expired', 'olap', '2026-11-22T06:00:00.000Z', { backups: [{ backupId: 'o1', reason: 'manual' }], dryRun: false }),
      event('retention.expired', 'olap', '2026-11-22T06:00:00.000Z', {
        backups: [{ backupId: 'o3', reason: 'dry run only' }],
        dryRun: true,
      }),
      event('drill.completed', 'olap', '2026-11-24T00:00:00.000Z', {
        backupId: 'o3',
        restoreMs: 9_000_000,
        rtoSeconds: 7200,
        withinRto: false,
        ok: true,
        finishedAt: '2026-11-24T00:00:00.000Z',
      }),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, history, { now });
    expect(result.retention.expiredEarly).toEqual([
      { backupId: 'o1', retentionUntil: '2026-12-20T00:00:00.000Z', expiredAt: '2026-11-22T06:00:00.000Z' },
    ]);
    expect(result.retention.keptPastPolicy).toEqual([{ backupId: 'o2', retentionUntil: '2026-11-22T00:00:00.000Z' }]);
    expect(result.rpoExposureSeconds).toBe((now.getTime() - Date.parse('2026-11-23T04:05:00.000Z')) / 1000);
    expect(result.rpoMet).toBe(false);
    expect(result.lastDrill?.withinRto).toBe(false);
    expect(result.lastGoodFull?.backupId).toBe('o3');
    expect(result.status).toBe('failing');
  });

  it('says which evidence is missing for a tier with no events instead of calling it failing', () => {
    const result = computeTierCompliance(DEFAULT_POLICIES.queue, [], { now, facts: { synchronousStreaming: true } });
    expect(result).toMatchObject({
      lastGoodFull: null,
      recoveryPoint: null,
      rpoExposureSeconds: null,
      rpoMet: null,
      lastDrill: null,
      status: 'unknown',
    });
    expect(result.missing).toEqual(['no backup recorded', 'no validation recorded', 'no drill recorded']);
    expect(result.validation.coverage).toBeNull();
  });

  it('shows a validated backup without drills as missing a drill (attention), not failing', () => {
    const history = [
      completed('olap', 'o1', 'full', '2026-11-26T11:00:00.000Z'),
      event('validation.passed', 'olap', '2026-11-26T11:10:00.000Z', { backupId: 'o1' }),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, history, { now });
    expect(result.missing).toEqual(['no drill recorded']);
    expect(result.status).toBe('attention');
  });

  it('counts a backup recorded by a backfill and by its event once', () => {
    const backup = completed('olap', 'o1', 'full', '2026-11-26T11:00:00.000Z');
    const backfilled = { ...backup, eventId: 'backfill:o1' };
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, [backfilled, backup], { now });
    expect(result.series.backups).toHaveLength(1);
    expect(result.validation.completed).toBe(1);
  });

  it('records a failed drill as the last drill, with its reason, and the tier as failing', () => {
    const history = [
      completed('olap', 'o1', 'full', '2026-11-26T11:00:00.000Z'),
      event('validation.passed', 'olap', '2026-11-26T11:10:00.000Z', { backupId: 'o1' }),
      event('drill.completed', 'olap', '2026-11-26T11:20:00.000Z', {
        backupId: 'o1',
        restoreMs: 60_000,
        rtoSeconds: 7200,
        withinRto: true,
        ok: true,
        finishedAt: '2026-11-26T11:20:00.000Z',
      }),
      event('drill.failed', 'olap', '2026-11-26T11:40:00.000Z', {
        backupId: null,
        tier: 'olap',
        startedAt: '2026-11-26T11:39:00.000Z',
        failedAt: '2026-11-26T11:40:00.000Z',
        durationMs: 63_000,
        rtoSeconds: 7200,
        checks: [],
        error: { code: 'TOOL_FAILED', message: 'pg_restore exited with 1', retryable: false },
      }),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, history, { now });
    expect(result.lastDrill).toEqual({
      backupId: null,
      finishedAt: '2026-11-26T11:40:00.000Z',
      restoreSeconds: 63,
      rtoSeconds: 7200,
      withinRto: false,
      ok: false,
      error: 'pg_restore exited with 1',
    });
    expect(result.series.drills).toHaveLength(2);
    expect(result.status).toBe('failing');
    expect(renderMarkdown([result], { generatedAt: now })).toContain('**FAILED** after 63 s: pg_restore exited with 1');
  });

  it('keeps the reason of a validation that could not run to the end', () => {
    const history = [
      completed('olap', 'o1', 'full', '2026-11-26T11:00:00.000Z'),
      event('validation.failed', 'olap', '2026-11-26T11:10:00.000Z', {
        backupId: 'o1',
        checks: [],
        error: { code: 'X', message: 'extraction failed', retryable: false },
      }),
    ];
    const result = computeTierCompliance(DEFAULT_POLICIES.olap, history, { now });
    expect(result.lastValidation).toEqual({ backupId: 'o1', at: '2026-11-26T11:10:00.000Z', ok: false, error: 'extraction failed' });
    expect(result.validation.openFailures).toEqual(['o1']);
  });

  describe('policy-lint findings', () => {
    const healthyContent = [
      completed('content', 'c1', 'full', '2026-11-26T11:30:00.000Z'),
      event('validation.passed', 'content', '2026-11-26T11:40:00.000Z', { backupId: 'c1' }),
      event('drill.completed', 'content', '2026-11-26T11:50:00.000Z', {
        backupId: 'c1',
        restoreMs: 60_000,
        rtoSeconds: 1800,
        withinRto: true,
        ok: true,
        finishedAt: '2026-11-26T11:50:00.000Z',
      }),
    ];

    it('are shown with their rule and severity and do not make the tier failing', () => {
      const result = computeTierCompliance(DEFAULT_POLICIES.content, healthyContent, { now });
      expect(result.lint).toEqual([expect.objectContaining({ rule: 'rpo-schedule', severity: 'error', acknowledged: null })]);
      expect(result.status).toBe('attention');
    });

    it('once acknowledged with a reason, are shown with it and leave the tier ok', () => {
      const policy = {
        ...DEFAULT_POLICIES.content,
        acknowledge: [{ rule: 'rpo-schedule', reason: 'hourly WAL-free dumps are too heavy; 4 h accepted' }],
      };
      const result = computeTierCompliance(policy, healthyContent, { now });
      expect(result.lint).toEqual([
        expect.objectContaining({ rule: 'rpo-schedule', acknowledged: 'hourly WAL-free dumps are too heavy; 4 h accepted' }),
      ]);
      expect(result.status).toBe('ok');
      expect(renderMarkdown([result], { generatedAt: now })).toContain('(acknowledged: hourly WAL-free dumps are too heavy; 4 h accepted)');
    });
  });

  describe('RPO exposure of a synchronously streamed tier', () => {
    const queue = DEFAULT_POLICIES.queue;
    const streamed = (at: string, inSync: boolean) =>
      event('wal.streamed', 'queue', at, {
        tier: 'queue',
        applicationName: 'q',
        inSync,
        syncState: inSync ? 'sync' : null,
        flushLsn: null,
        currentLsn: null,
        lagBytes: inSync ? 0 : null,
        at,
        validForSeconds: 60,
      });
    const base = [
      completed('queue', 'q1', 'full', '2026-11-26T02:00:00.000Z'),
      event('wal.archived', 'queue', '2026-11-26T11:40:00.000Z', { segments: [{ name: 'A', archivedAt: '2026-11-26T11:40:00.000Z' }] }),
    ];

    it('is 0 while the last report says in sync and still holds', () => {
      const result = computeTierCompliance(queue, [...base, streamed('2026-11-26T11:59:30.000Z', true)], { now });
      expect(result).toMatchObject({
        rpoExposureSeconds: 0,
        rpoMet: true,
        recoveryPoint: { source: 'stream', at: now.toISOString() },
        stream: { inSync: true, current: true },
      });
      expect(result.series.exposure.at(-1)).toEqual({ at: now.toISOString(), exposureSeconds: 0 });
    });

    it('is the time since the stream was last in sync once it is not', () => {
      const result = computeTierCompliance(
        queue,
        [...base, streamed('2026-11-26T11:55:00.000Z', true), streamed('2026-11-26T11:58:00.000Z', false)],
        { now },
      );
      expect(result).toMatchObject({ rpoExposureSeconds: 300, rpoMet: false, stream: { inSync: false, current: false } });
    });

    it('is the time since the last report once the reports stop (the service is down)', () => {
      const result = computeTierCompliance(queue, [...base, streamed('2026-11-26T11:50:00.000Z', true)], { now });
      expect(result).toMatchObject({ rpoExposureSeconds: 600, rpoMet: false, stream: { inSync: true, current: false } });
    });
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
    expect(markdown).toMatch(/^\| queue \| UNKNOWN \| none \|/m);
    expect(markdown).toContain(
      '- Policy lint: error rpo-schedule: the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h.',
    );
    expect(markdown).toContain('- Missing evidence: no backup recorded, no validation recorded, no drill recorded.');
  });

  it('writes CSV with a header and quoted fields', () => {
    const [header, content, queue] = renderCsv(tiers).split('\r\n');
    expect(header.split(',')).toEqual([...CSV_COLUMNS]);
    const contentFields = content.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    expect(contentFields[0]).toBe('content');
    expect(contentFields[2]).toBe('c1');
    expect(contentFields.at(-2)).toBe(
      '"error rpo-schedule: the schedule leaves up to 4 h between recovery points, more than the RPO of 1 h"',
    );
    expect(contentFields.at(-1)).toBe('no validation recorded; no drill recorded');
    expect(queue.startsWith('queue,unknown,,')).toBe(true);
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
