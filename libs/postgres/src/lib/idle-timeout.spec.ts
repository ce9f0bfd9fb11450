import { SourceUnavailableError } from '@rookery/core';
import { IdleTimeout, pgStalledError } from './idle-timeout';

const TIMEOUT = 10_000;

describe('IdleTimeout', () => {
  let fired: number[];
  let watch: IdleTimeout;

  beforeEach(() => {
    jest.useFakeTimers();
    fired = [];
    watch = new IdleTimeout(
      TIMEOUT,
      (idleMs) => fired.push(idleMs),
      () => Date.now(),
    );
  });

  /** Nothing until the last millisecond of a timeout, then one call with the full silence. */
  function expectFiresExactlyAfterTimeout(): void {
    jest.advanceTimersByTime(TIMEOUT - 1);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(fired).toEqual([TIMEOUT]);
  }

  afterEach(() => {
    watch.stop();
    jest.useRealTimers();
  });

  it('fires once after timeoutMs without activity, not before', () => {
    watch.start();
    expectFiresExactlyAfterTimeout();
    jest.advanceTimersByTime(10 * TIMEOUT);
    expect(fired).toHaveLength(1);
  });

  it('counts from the last activity: bytes keep it alive, silence after them ends it', () => {
    watch.start();
    for (let step = 0; step < 20; step++) {
      jest.advanceTimersByTime(TIMEOUT / 2);
      watch.touch();
    }
    expect(fired).toEqual([]);
    expectFiresExactlyAfterTimeout();
  });

  it('does not count the time our side paused reading, and gives the sender a full timeout after resume', () => {
    watch.start();
    jest.advanceTimersByTime(TIMEOUT * 0.9);
    watch.pause();
    // A slow store holds the socket paused for far longer than the timeout.
    jest.advanceTimersByTime(50 * TIMEOUT);
    expect(fired).toEqual([]);
    watch.resume();
    expectFiresExactlyAfterTimeout();
  });

  it('repeated pauses and resumes never add up to a timeout while each flowing stretch is short', () => {
    watch.start();
    for (let step = 0; step < 30; step++) {
      jest.advanceTimersByTime(TIMEOUT * 0.8);
      watch.pause();
      watch.pause();
      jest.advanceTimersByTime(TIMEOUT * 3);
      watch.resume();
      watch.resume();
    }
    expect(fired).toEqual([]);
  });

  it('waits for start, stays quiet after stop, and starts paused when paused first', () => {
    jest.advanceTimersByTime(5 * TIMEOUT);
    expect(fired).toEqual([]);

    watch.pause();
    watch.start();
    jest.advanceTimersByTime(5 * TIMEOUT);
    expect(fired).toEqual([]);
    watch.resume();
    jest.advanceTimersByTime(TIMEOUT / 2);
    watch.stop();
    jest.advanceTimersByTime(5 * TIMEOUT);
    watch.start();
    jest.advanceTimersByTime(5 * TIMEOUT);
    expect(fired).toEqual([]);
    expect(jest.getTimerCount()).toBe(0);
  });
});

describe('pgStalledError', () => {
  it('names the server, the silence and what was awaited, with the setting to raise', () => {
    const error = pgStalledError('db1:5432/app', 600_000, 'while streaming the base backup');
    expect(error).toBeInstanceOf(SourceUnavailableError);
    expect(error.message).toBe('no data from PostgreSQL at db1:5432/app for 600 s while streaming the base backup');
    expect(error.hint).toMatch(/stalled; raise postgres\.idleTimeoutSeconds/);
  });
});
