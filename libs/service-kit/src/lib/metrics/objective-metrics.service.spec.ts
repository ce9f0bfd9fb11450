import { LedgerEntry } from '@rookery/catalog';
import { WalStatus } from '@rookery/wal';
import { lastDrill, lastValidation, rpoExposure, streamRecoveryPoint } from './objective-metrics.service';

const now = new Date('2026-12-07T12:00:00.000Z');

function entry(type: string, time: string, data: Record<string, unknown>): LedgerEntry {
  return { eventId: `${type}-${time}`, subject: 'oltp', type, time, source: 'rookery/test', data, receivedAt: time };
}

function wal(lastArchivedAt: string | null, exposureSeconds: number | null): WalStatus {
  return {
    tier: 'oltp',
    lastArchived: lastArchivedAt ? { name: '000000010000000000000003', timeline: 1, archivedAt: lastArchivedAt, key: 'k' } : null,
    archivedFiles: lastArchivedAt ? 1 : 0,
    server: null,
    serverProblem: null,
    exposure: exposureSeconds === null ? null : { seconds: exposureSeconds, bytes: 1 },
  };
}

describe('rpoExposure', () => {
  it.each([
    ['the server measured against archived WAL', wal('2026-12-07T11:00:00.000Z', 42), null, 42],
    [
      'the newest archived segment when the server does not answer',
      wal('2026-12-07T11:59:00.000Z', null),
      new Date('2026-12-07T10:00:00.000Z'),
      60,
    ],
    ['the newest backup of a tier without WAL', null, new Date('2026-12-07T11:00:00.000Z'), 3600],
    ['nothing known', null, null, null],
  ])('%s', (_, status, lastSuccess, seconds) => {
    expect(rpoExposure(status, lastSuccess, now)).toBe(seconds);
  });
});

describe('RPO exposure of a synchronously streamed tier', () => {
  const streamed = (at: string, inSync: boolean) => entry('dev.rookery.wal.streamed', at, { inSync, at, validForSeconds: 60 });
  const archivedLongAgo = wal('2026-12-07T11:00:00.000Z', 3600);

  it('is 0 while the newest report is in sync and still valid, however old the archived WAL', () => {
    const point = streamRecoveryPoint([streamed('2026-12-07T11:59:30.000Z', true)], now);
    expect(point).toEqual(now);
    expect(rpoExposure(archivedLongAgo, null, now, point)).toBe(0);
  });

  it('is the time since the stream was last in sync once it is not (or its report went stale)', () => {
    const dropped = streamRecoveryPoint([streamed('2026-12-07T11:55:00.000Z', true), streamed('2026-12-07T11:58:00.000Z', false)], now);
    expect(rpoExposure(archivedLongAgo, null, now, dropped)).toBe(300);
    const stale = streamRecoveryPoint([streamed('2026-12-07T11:50:00.000Z', true)], now);
    expect(rpoExposure(archivedLongAgo, null, now, stale)).toBe(600);
  });

  it('falls back to archived WAL without reports, or when the stream was in sync before the newest archived segment', () => {
    expect(streamRecoveryPoint([], now)).toBeNull();
    expect(rpoExposure(archivedLongAgo, null, now, null)).toBe(3600);
    expect(rpoExposure(wal('2026-12-07T11:59:00.000Z', 5), null, now, new Date('2026-12-07T11:30:00.000Z'))).toBe(5);
  });
});

describe('last validation and drill from the ledger', () => {
  const entries = [
    entry('dev.rookery.validation.passed', '2026-12-01T00:00:00.000Z', { validatedAt: '2026-12-01T00:00:00.000Z' }),
    entry('dev.rookery.validation.failed', '2026-12-02T00:00:00.000Z', { validatedAt: '2026-12-02T00:00:00.000Z' }),
    entry('dev.rookery.drill.completed', '2026-12-03T00:00:00.000Z', {
      ok: true,
      restoreMs: 1_500,
      withinRto: true,
      finishedAt: '2026-12-03T00:00:00.000Z',
    }),
    entry('dev.rookery.drill.failed', '2026-12-04T00:00:00.000Z', { durationMs: 9_000, failedAt: '2026-12-04T00:00:00.000Z' }),
  ];

  it('takes the newest of each, failures included', () => {
    expect(lastValidation(entries)).toEqual({ at: new Date('2026-12-02T00:00:00.000Z'), ok: false });
    expect(lastDrill(entries)).toEqual({ at: new Date('2026-12-04T00:00:00.000Z'), ok: false, durationSeconds: 9, withinRto: false });
    expect(lastDrill(entries.slice(0, 3))).toEqual({
      at: new Date('2026-12-03T00:00:00.000Z'),
      ok: true,
      durationSeconds: 1.5,
      withinRto: true,
    });
    expect(lastValidation([])).toBeNull();
  });
});
