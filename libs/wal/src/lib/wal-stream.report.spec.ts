import { WalStreamStatus, walStreamReport } from './wal-stream.supervisor';

const at = new Date('2026-12-07T03:00:00.000Z');

function status(primary: WalStreamStatus['primary']): WalStreamStatus {
  return {
    tier: 'queue',
    slot: 'rookery_queue_wal',
    applicationName: 'rookery_queue_wal',
    spoolDirectory: '/spool',
    onDown: 'blocking',
    receiver: { running: true, pid: 1, startedAt: null, restarts: 0, nextStartInMs: null, lastExit: null },
    uploads: { lastUploaded: null, lastPartial: null, pending: [], failures: 0, lastError: null },
    primary,
  };
}

const primary = (overrides: Partial<Extract<WalStreamStatus['primary'], { registered: boolean }>>): WalStreamStatus['primary'] => ({
  registered: true,
  synchronousStandbyNames: 'rookery_queue_wal',
  synchronousCommit: 'on',
  currentLsn: '0/3000100',
  syncState: 'sync',
  state: 'streaming',
  flushLsn: '0/3000100',
  slot: null,
  ...overrides,
});

describe('walStreamReport', () => {
  it.each([
    ['registered and sync', primary({}), true, 0],
    ['connected but not listed in synchronous_standby_names', primary({ registered: false, syncState: 'async' }), false, 0],
    ['behind and potential', primary({ syncState: 'potential', flushLsn: '0/3000000' }), false, 256],
    ['not connected', primary({ syncState: null, state: null, flushLsn: null }), false, null],
    ['primary unreachable', { error: 'ECONNREFUSED: connection refused' }, false, null],
  ])('%s: in sync %s, lag %s bytes', (_case, state, inSync, lagBytes) => {
    const report = walStreamReport(status(state), { at, validForSeconds: 60 });
    expect(report).toMatchObject({
      tier: 'queue',
      applicationName: 'rookery_queue_wal',
      inSync,
      lagBytes,
      at: at.toISOString(),
      validForSeconds: 60,
    });
  });
});
