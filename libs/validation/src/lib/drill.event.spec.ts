import { BackupNotFoundError } from '@rookery/core';
import { runRecordedDrill } from './drill.event';
import { DrillReport, RestoreDrill } from './restore.drill';

const report = (overrides: Partial<DrillReport> = {}): DrillReport => ({
  backupId: '20261126T020000Z-oltp',
  tier: 'oltp',
  method: 'physical',
  ok: true,
  restoreMs: 4_000,
  totalMs: 6_000,
  rtoSeconds: 900,
  withinRto: true,
  recovery: 'archived-wal',
  checks: [{ name: 'restore', ok: true, detail: 'restored' }],
  startedAt: '2026-11-26T03:00:00.000Z',
  finishedAt: '2026-11-26T03:00:06.000Z',
  ...overrides,
});

function drillThat(run: () => Promise<DrillReport>, rtoSeconds = 900): RestoreDrill {
  return { run, rtoSeconds: () => rtoSeconds } as unknown as RestoreDrill;
}

describe('runRecordedDrill', () => {
  it('records a drill that passed as drill.completed, a missed RTO included', async () => {
    const outcome = await runRecordedDrill(
      drillThat(async () => report({ withinRto: false, rtoSeconds: 0.5 })),
      'oltp',
      {},
      'rookery/test',
    );
    expect(outcome.ok).toBe(true);
    expect(outcome.event).toMatchObject({
      type: 'dev.rookery.drill.completed',
      subject: 'oltp',
      source: 'rookery/test',
      data: { ok: true, withinRto: false, rtoSeconds: 1 },
    });
  });

  it('records a drill whose checks failed as drill.failed with the checks and the reason', async () => {
    const checks = [{ name: 'restore', ok: false, detail: "checksum mismatch for artifact 'base.tar.zst'" }];
    const outcome = await runRecordedDrill(
      drillThat(async () => report({ ok: false, withinRto: false, checks })),
      'oltp',
      {},
      'rookery/test',
    );
    expect(outcome).toMatchObject({ ok: false, report: { ok: false }, error: { code: 'DRILL_FAILED' } });
    expect(outcome.event.type).toBe('dev.rookery.drill.failed');
    expect(outcome.event.data).toEqual({
      backupId: '20261126T020000Z-oltp',
      tier: 'oltp',
      startedAt: '2026-11-26T03:00:00.000Z',
      failedAt: '2026-11-26T03:00:06.000Z',
      durationMs: 6_000,
      rtoSeconds: 900,
      checks,
      error: {
        code: 'DRILL_FAILED',
        message: expect.stringContaining("restore: checksum mismatch for artifact 'base.tar.zst'"),
        retryable: false,
      },
    });
  });

  it.each<[string, unknown, string | undefined, string | null, { code: string; retryable: boolean }]>([
    ['no backup to drill', new BackupNotFoundError('queue', 'latest'), undefined, null, { code: 'BACKUP_NOT_FOUND', retryable: false }],
    ['a crash during a named backup', new TypeError('boom'), 'b1', 'b1', { code: 'UNEXPECTED', retryable: false }],
  ])('records a drill that could not run (%s) as drill.failed with the error', async (_case, thrown, backup, backupId, error) => {
    const outcome = await runRecordedDrill(
      drillThat(() => Promise.reject(thrown), 300),
      'queue',
      { backup },
      'rookery/test',
    );
    expect(outcome).toMatchObject({ ok: false, report: null, error: thrown });
    expect(outcome.event.data).toMatchObject({
      backupId,
      tier: 'queue',
      rtoSeconds: 300,
      checks: [],
      error: { ...error, message: (thrown as Error).message },
    });
  });

  it('keeps the password of a URL the error quotes out of the event', async () => {
    const outcome = await runRecordedDrill(
      drillThat(() => Promise.reject(new Error('connect postgres://app:hunter2@db:5432/x failed'))),
      'oltp',
      {},
      'rookery/test',
    );
    expect(outcome.event.data).toMatchObject({ error: { code: 'UNEXPECTED', message: 'connect postgres://app:***@db:5432/x failed' } });
  });
});
