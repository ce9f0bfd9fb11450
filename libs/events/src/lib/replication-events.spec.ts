import { EVENT_TYPES } from './event-types';
import { ReplicationRunFacts, replicationEvents } from './replication-events';

const failure = { code: 'STORAGE_UNAVAILABLE', message: 'endpoint unreachable', retryable: true };

function run(overrides: Partial<ReplicationRunFacts['regions'][number]> = {}): ReplicationRunFacts {
  return {
    tier: 'oltp',
    primary: 's3://primary/rookery',
    finishedAt: '2026-11-26T12:00:00.000Z',
    regions: [{ region: 'secondary', store: 's3://secondary/rookery', backups: [], wal: null, ...overrides }],
  };
}

describe('replicationEvents', () => {
  it('reports copied and failed backups, skips current ones, and batches WAL per region', () => {
    const events = replicationEvents(
      run({
        backups: [
          { backupId: 'a', outcome: 'copied', bytes: 10 },
          { backupId: 'b', outcome: 'current', bytes: 0 },
          { backupId: 'c', outcome: 'failed', bytes: 0, error: failure },
        ],
        wal: {
          copied: [
            { name: '000000010000000000000001', bytes: 5 },
            { name: '000000010000000000000002', bytes: 7 },
          ],
          failed: [],
        },
      }),
      'rookery/test',
    );
    expect(events.map((event) => [event.type, event.data.object])).toEqual([
      ['dev.rookery.replication.copied', 'backup a'],
      ['dev.rookery.replication.failed', 'backup c'],
      ['dev.rookery.replication.copied', 'wal 000000010000000000000001..000000010000000000000002 (2 files)'],
    ]);
    expect(events[2].data.bytes).toBe(12);
    for (const event of events) expect(() => EVENT_TYPES[event.type].schema.parse(event.data)).not.toThrow();
  });

  it('reports an unreachable region', () => {
    const [event] = replicationEvents(run({ error: failure }), 'rookery/test');
    expect(event.type).toBe('dev.rookery.replication.failed');
    expect(event.data.error).toEqual(failure);
  });
});
