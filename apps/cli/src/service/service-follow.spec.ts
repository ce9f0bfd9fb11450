import { EventEmitter } from 'node:events';
import { FollowedRecord, followJob } from './service-follow';

/** A job that runs until it is cancelled, then reads as failed; Ctrl-C (`presses` of them) lands on its first read. */
function cancellableJob(presses: number) {
  const interrupts = new EventEmitter();
  let cancels = 0;
  let reads = 0;
  const read = async (): Promise<FollowedRecord & { error?: string }> => {
    reads++;
    if (reads === 1) for (let press = 0; press < presses; press++) setImmediate(() => interrupts.emit('SIGINT'));
    return cancels ? { id: 'b1', status: 'failed', error: 'cancelled by operator' } : { id: 'b1', status: 'running' };
  };
  const cancel = async () => {
    cancels++;
  };
  return { interrupts, read, cancel, cancels: () => cancels };
}

describe('followJob: Ctrl-C while following a job on the service', () => {
  let stderr: string[];
  beforeEach(() => {
    stderr = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => stderr.push(String(text)) > 0);
  });
  afterEach(() => jest.restoreAllMocks());

  it('the first asks the service to cancel and follows the job to its end', async () => {
    const job = cancellableJob(1);
    const record = await followJob({ what: 'backup b1', operation: 'backup oltp', showProgress: false, intervalMs: 5, ...job });
    expect(record).toEqual({ id: 'b1', status: 'failed', error: 'cancelled by operator' });
    expect(job.cancels()).toBe(1);
    expect(stderr).toEqual(['\nrookery: cancelling backup b1 on the service (Ctrl-C again to stop waiting)\n']);
    expect(job.interrupts.listenerCount('SIGINT')).toBe(0);
  });

  it('a second stops waiting, saying the job may still run', async () => {
    const job = cancellableJob(2);
    // The service never confirms the cancel: the job reads as running until the operator stops waiting.
    const read = async () => ({ ...(await job.read()), status: 'running' });
    await expect(
      followJob({ what: 'backup b1', operation: 'backup oltp', showProgress: false, intervalMs: 60_000, ...job, read }),
    ).rejects.toThrow('stopped waiting for backup b1; its cancel was asked and it may still be running on the service');
    expect(job.interrupts.listenerCount('SIGINT')).toBe(0);
  });
});
