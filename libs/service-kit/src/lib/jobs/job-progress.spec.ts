import { JobChanges, watchUpdates } from './job-progress';

interface Job {
  status: 'running' | 'completed';
  bytes: number;
}

/** A job the spec moves by hand, and the updates a watcher of it receives. */
function watchedJob(options: { status?: Job['status']; intervalMs?: number; pollMs?: number } = {}) {
  const job: Job = { status: options.status ?? 'running', bytes: 0 };
  const changes = new JobChanges();
  const reads: Job[] = [];
  const subscribed = { count: 0 };
  const updates = watchUpdates<Job>({
    current: async () => {
      reads.push({ ...job });
      return { ...job };
    },
    isFinal: (update) => update.status !== 'running',
    subscribe: (wake) => {
      subscribed.count += 1;
      const unsubscribe = changes.subscribe('job-1', wake);
      return () => {
        subscribed.count -= 1;
        unsubscribe();
      };
    },
    intervalMs: options.intervalMs ?? 0,
    pollMs: options.pollMs ?? 60_000,
  })[Symbol.asyncIterator]();
  const move = (change: Partial<Job>) => {
    Object.assign(job, change);
    changes.changed('job-1');
  };
  return { job, updates, move, reads, subscribed };
}

describe('watchUpdates', () => {
  it('yields the state now, after each change, and a last one when the job ends; then ends', async () => {
    const { updates, move } = watchedJob();
    expect((await updates.next()).value).toEqual({ status: 'running', bytes: 0 });
    const second = updates.next();
    move({ bytes: 100 });
    expect((await second).value).toEqual({ status: 'running', bytes: 100 });
    const last = updates.next();
    move({ bytes: 150, status: 'completed' });
    expect((await last).value).toEqual({ status: 'completed', bytes: 150 });
    expect(await updates.next()).toEqual({ done: true, value: undefined });
  });

  it('yields a job that has ended once, and ends', async () => {
    const { updates } = watchedJob({ status: 'completed' });
    expect((await updates.next()).value).toEqual({ status: 'completed', bytes: 0 });
    expect((await updates.next()).done).toBe(true);
  });

  it('does not miss a change made between two reads (it reads again), and coalesces a burst into one read', async () => {
    const { updates, move, reads } = watchedJob({ intervalMs: 30 });
    await updates.next();
    // Three changes before the watcher asks again: one update, with the last state.
    move({ bytes: 1 });
    move({ bytes: 2 });
    move({ bytes: 3 });
    expect((await updates.next()).value).toEqual({ status: 'running', bytes: 3 });
    expect(reads).toHaveLength(2);
  });

  it('yields nothing for a look that finds nothing new (a poll), and ends on the job’s end found by polling', async () => {
    const { updates, job, reads } = watchedJob({ pollMs: 5 });
    await updates.next();
    const next = updates.next();
    // Nobody is told: the watcher finds the end by looking (a job run by another process).
    await new Promise((resolve) => setTimeout(resolve, 20));
    job.status = 'completed';
    expect((await next).value).toEqual({ status: 'completed', bytes: 0 });
    // It looked in between and yielded none of those unchanged reads.
    expect(reads.length).toBeGreaterThan(2);
  });

  it('unsubscribes when the watcher stops reading early', async () => {
    const { updates, subscribed } = watchedJob();
    await updates.next();
    expect(subscribed.count).toBe(1);
    await updates.return?.(undefined);
    expect(subscribed.count).toBe(0);
  });
});
