import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import type { ReceivewalExit, SynchronousStandbyState } from '@rookery/postgres';
import { WalStreamReceiver, WalStreamSupervisor } from './wal-stream.supervisor';

/**
 * GET /status pairs the primary's view with the supervisor's record of pg_receivewal. The primary
 * can only see the receiver streaming after the supervisor spawned (and recorded) it, so a status
 * that shows the primary streaming must show the receiver running: the record is read after the
 * primary, never before (a full CI run once paired a streaming primary with the record from before
 * the spawn).
 */
describe('WalStreamSupervisor.status', () => {
  let spool: string;

  beforeEach(async () => {
    spool = await mkdtemp(join(tmpdir(), 'rookery-stream-status-'));
  });

  afterEach(async () => {
    await rm(spool, { recursive: true, force: true });
  });

  it('a primary that shows the receiver streaming is paired with the record of the running receiver', async () => {
    // The slot is created (and pg_receivewal spawned) only while a status query is in flight.
    let releaseSlot: () => void = () => undefined;
    let spawned = false;
    let exit: (result: ReceivewalExit) => void = () => undefined;
    const receiver: WalStreamReceiver = {
      createSlot: () => new Promise<void>((resolve) => (releaseSlot = resolve)),
      start: () => {
        spawned = true;
        return { pid: 4242, exited: new Promise<ReceivewalExit>((resolve) => (exit = resolve)) };
      },
      // The status query is in flight while the slot is created and pg_receivewal connects.
      state: async (): Promise<SynchronousStandbyState> => {
        releaseSlot();
        await new Promise((resolve) => setTimeout(resolve, 10));
        return {
          replication: spawned ? { pid: 1, state: 'streaming', syncState: 'sync', sentLsn: '0/1', writeLsn: '0/1', flushLsn: '0/1' } : null,
          slot: null,
          synchronousStandbyNames: '"rookery_queue_wal"',
          synchronousCommit: 'on',
          currentLsn: '0/1',
        } as SynchronousStandbyState;
      },
      setSynchronousStandbyNames: async () => undefined,
    };
    const settings = { ...buildConfig({}, 'status spec', {}, {}, '/srv').walStream, spoolDir: spool, manageSynchronousStandbyNames: false };
    const supervisor = new WalStreamSupervisor({
      settings,
      pgUrl: 'postgres://localhost/queue',
      receiver,
      push: async () => {
        throw new Error('nothing to push in this spec');
      },
      standbyNames: { for: (name) => `"${name}"`, lists: (setting, name) => setting.includes(name) },
      osUser: null,
    });
    await supervisor.start();
    try {
      const status = await supervisor.status();
      expect(status.primary).toMatchObject({ state: 'streaming', syncState: 'sync' });
      expect(status.receiver).toMatchObject({ running: true, pid: 4242, restarts: 0 });
    } finally {
      releaseSlot();
      exit({ exitCode: 0, stderrTail: '' });
      await supervisor.stop();
    }
  });
});
