import type { BackupCatalog, BackupRecord } from '@rookery/catalog';
import { BackupManifest, DEFAULT_POLICIES, InvariantError, makeBackupId } from '@rookery/core';
import { BackupLifecycleSink, BackupRun, BackupRunRequest, RookeryEngine } from '@rookery/engine';
import type { ServiceEventsService } from '../events/service-events.service';
import { BackupMetricsService } from '../metrics/backup-metrics.service';
import type { ResolvedServiceKitOptions } from '../service-kit.constants';
import { BackupJobService } from './backup-jobs.service';

/** An engine whose backup runs settle only as the spec says: on abort, never, or later by hand. */
function makeEngine(onAbort: 'rejects' | 'ignores') {
  const backups: { signal: AbortSignal; reject: (error: unknown) => void; resolve: (manifest: BackupManifest) => void }[] = [];
  const engine = {
    backupRun: (request: BackupRunRequest, lifecycle: BackupLifecycleSink) =>
      new BackupRun(
        {
          policy: (tier) => DEFAULT_POLICIES[tier],
          repository: 'file:///tmp/store',
          name: async (tier, startedAt) => makeBackupId(tier, startedAt),
          take: (backup) =>
            new Promise<BackupManifest>((resolve, reject) => {
              const signal = backup.signal as AbortSignal;
              backups.push({ signal, resolve, reject });
              if (onAbort === 'rejects') signal.addEventListener('abort', () => reject(signal.reason));
            }),
        },
        request,
        lifecycle,
      ),
  };
  return { engine: engine as unknown as RookeryEngine, backups };
}

/** The catalog's record of each run, as the service writes it. */
function makeCatalog() {
  const failed: { id: string; error: unknown }[] = [];
  const records = new Map<string, BackupRecord>();
  const catalog = {
    recordStarted: async (record: Partial<BackupRecord>) => {
      const started = { ...record, status: 'running', error: null } as BackupRecord;
      records.set(started.id, started);
      return started;
    },
    recordFailed: async (id: string, error: unknown) => {
      failed.push({ id, error });
      const record = records.get(id);
      if (record) records.set(id, { ...record, status: 'failed', error: (error as Error).message });
      return null;
    },
    recordCompleted: async () => null,
    get: async (id: string) => records.get(id) ?? null,
    remove: async () => undefined,
  };
  return { catalog: catalog as unknown as BackupCatalog, failed };
}

function makeService(onAbort: 'rejects' | 'ignores') {
  const { engine, backups } = makeEngine(onAbort);
  const { catalog, failed } = makeCatalog();
  const options = {
    serviceName: 'oltp-backup',
    logLevel: 'silent',
    startWaitMs: 0,
    shutdownWaitMs: 20,
  } as ResolvedServiceKitOptions;
  const events = { source: 'rookery/oltp-backup', outboxItems: () => [], nudge: () => undefined, publish: async () => undefined };
  const service = new BackupJobService(engine, catalog, new BackupMetricsService(), options, events as unknown as ServiceEventsService);
  return { service, backups, failed };
}

describe('BackupJobService at shutdown', () => {
  it('records a backup that stops when aborted failed once, with the abort as its reason', async () => {
    const { service, failed } = makeService('rejects');
    await service.start('oltp', { requestedBy: 'api' });
    await service.beforeApplicationShutdown();
    expect(failed).toHaveLength(1);
    expect(String((failed[0]?.error as Error).message)).toBe('the service is shutting down');
  });

  it('records a backup whose promise never settles failed, naming it a bug, and does not wait for it', async () => {
    const { service, backups, failed } = makeService('ignores');
    const record = await service.start('oltp', { requestedBy: 'schedule' });
    await service.beforeApplicationShutdown();
    expect(backups[0]?.signal.aborted).toBe(true);
    expect(failed.map((entry) => entry.id)).toEqual([record.id]);
    expect(failed[0]?.error).toBeInstanceOf(InvariantError);
    expect((failed[0]?.error as Error).message).toMatch(
      new RegExp(`^backup '${record.id}' of tier 'oltp' stopped before it finished: .*\\(this is a bug; `),
    );
  });

  it('does not record an abandoned backup a second time when its promise settles after all', async () => {
    const { service, backups, failed } = makeService('ignores');
    await service.start('oltp', { requestedBy: 'api' });
    await service.beforeApplicationShutdown();
    backups[0]?.reject(new Error('late failure'));
    await new Promise(setImmediate);
    expect(failed).toHaveLength(1);
  });
});

describe('BackupJobService.cancel', () => {
  it('aborts the running backup and answers its record failed, naming who cancelled it, whatever the interrupted step threw', async () => {
    const { service, backups } = makeService('ignores');
    const record = await service.start('oltp', { requestedBy: 'api' });
    // The step interrupted by the abort fails with its own error (a tool killed), as a real one does.
    backups[0]?.signal.addEventListener('abort', () => backups[0]?.reject(new Error('pg_basebackup terminated by signal 15')));
    const cancelled = await service.cancel('oltp', record.id, 'operator-oltp');
    expect(cancelled).toMatchObject({ id: record.id, status: 'failed', error: 'cancelled by operator-oltp' });
    expect(backups[0]?.signal.aborted).toBe(true);
  });

  it('refuses a backup that is not running here (409 NOT_RUNNING), and an unknown one (BACKUP_NOT_FOUND)', async () => {
    const { service, backups } = makeService('rejects');
    const record = await service.start('oltp', { requestedBy: 'api' });
    await service.cancel('oltp', record.id, 'operator');
    await expect(service.cancel('oltp', record.id, 'operator')).rejects.toMatchObject({
      code: 'NOT_RUNNING',
      message: `backup '${record.id}' of tier 'oltp' is not running in this service (failed); nothing to cancel`,
    });
    await expect(service.cancel('oltp', 'unknown', 'operator')).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    expect(backups).toHaveLength(1);
  });
});

describe('BackupJobService.watch', () => {
  it('yields the running record (no progress reported yet), then the failed record once the run ends, and ends', async () => {
    const { service, backups } = makeService('rejects');
    const record = await service.start('oltp', { requestedBy: 'api' });
    const updates = service.watch('oltp', record.id)[Symbol.asyncIterator]();
    expect((await updates.next()).value).toMatchObject({ backup: { id: record.id, status: 'running' }, progress: null });
    const last = updates.next();
    backups[0]?.reject(new Error('disk full'));
    expect((await last).value).toEqual({ backup: expect.objectContaining({ status: 'failed', error: 'disk full' }), progress: null });
    expect((await updates.next()).done).toBe(true);
  });
});
