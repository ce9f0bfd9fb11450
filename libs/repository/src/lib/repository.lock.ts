import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { LockHeldError, RequestOptions, Store, StorageConflictError, StorageNotFoundError, TierName } from '@rookery/core';
import { repositoryLayout } from './repository.layout';

/** What a lock object records about its holder. */
export interface LockRecord {
  token: string;
  holder: string;
  host: string;
  pid: number;
  acquiredAt: string;
  heartbeatAt: string;
}

export interface LockOptions {
  /** Who takes the lock, for messages: 'rookery backup', 'oltp-backup service'. */
  holder: string;
  /** A lock whose heartbeat is older than this is stale and may be broken. */
  staleAfterMs?: number;
  heartbeatMs?: number;
  now?: () => Date;
  /** Whether a process id on this host is alive (replaceable in tests). */
  isProcessAlive?: (pid: number) => boolean;
}

export interface HeldLock {
  readonly record: LockRecord;
  /** Removes the lock if it is still ours; `signal` gives up on a store that does not answer. */
  release(options?: RequestOptions): Promise<void>;
}

/** How long a lock may go without a heartbeat before another process may break it. */
export const DEFAULT_STALE_AFTER_MS = 10 * 60 * 1000;

/**
 * One backup per tier at a time, across processes and hosts: a lock object in the repository,
 * created only if absent. The holder refreshes a heartbeat; a lock is broken only when its holder
 * is provably gone (same host, dead pid) or its heartbeat is older than `staleAfterMs` — so a
 * backup killed with SIGKILL does not block the next one forever.
 */
export class RepositoryLock {
  constructor(private readonly store: Store) {}

  async acquire(tier: TierName, options: LockOptions): Promise<HeldLock> {
    const key = repositoryLayout.lockKey(tier);
    const now = options.now ?? (() => new Date());
    const record: LockRecord = {
      token: randomUUID(),
      holder: options.holder,
      host: hostname(),
      pid: process.pid,
      acquiredAt: now().toISOString(),
      heartbeatAt: now().toISOString(),
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await this.store.write(key, encode(record), { ifAbsent: true });
        return this.held(key, record, options);
      } catch (error) {
        if (!(error instanceof StorageConflictError)) throw error;
      }
      const current = await this.read(key);
      if (current && !isStale(current, options, now())) {
        throw new LockHeldError(tier, `${current.holder}, pid ${current.pid} on ${current.host}, since ${current.acquiredAt}`);
      }
      // The holder is gone: remove its lock and try once more. Two breakers racing here are
      // settled by the conditional create above.
      await this.store.remove(key);
    }
    throw new LockHeldError(tier, 'another process took the lock while a stale one was broken');
  }

  async read(key: string): Promise<LockRecord | null> {
    return this.readOrFail(key).catch(() => null);
  }

  /** The lock's record, null when there is none (or it is unreadable); a store that fails to answer throws. */
  private async readOrFail(key: string, options: RequestOptions = {}): Promise<LockRecord | null> {
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of await this.store.read(key, options)) chunks.push(chunk as Buffer);
    } catch (error) {
      if (error instanceof StorageNotFoundError) return null;
      throw error;
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as LockRecord;
    } catch {
      return null;
    }
  }

  private held(key: string, record: LockRecord, options: LockOptions): HeldLock {
    const now = options.now ?? (() => new Date());
    let released = false;
    let inFlight: Promise<void> | null = null;
    // A beat refreshes the lock only while it is still ours: a holder whose lock was broken as
    // stale (it hung past staleAfterMs) and taken by another process stops beating, instead of
    // writing its record over the new holder's every minute. (The store has no conditional
    // overwrite: a takeover between this read and the write is not excluded, only made rare.)
    const beat = async () => {
      try {
        const current = await this.readOrFail(key);
        if (current?.token !== record.token) {
          clearInterval(heartbeat);
          return;
        }
        if (released) return;
        record.heartbeatAt = now().toISOString();
        await this.store.write(key, encode(record));
      } catch {
        // A store that does not answer now: the next beat tries again.
      }
    };
    const heartbeat = setInterval(() => {
      if (inFlight || released) return;
      inFlight = beat().finally(() => (inFlight = null));
    }, options.heartbeatMs ?? 60_000);
    heartbeat.unref();
    return {
      record,
      release: async (releaseOptions: RequestOptions = {}) => {
        clearInterval(heartbeat);
        released = true;
        // A beat already past its read would write the lock again after the removal below, and
        // the tier's next backup would wait for it to go stale: let it finish first.
        await inFlight;
        // A store that does not answer leaves the lock in place: the release fails, saying so.
        const current = await this.readOrFail(key, releaseOptions);
        if (current?.token === record.token) await this.store.remove(key, releaseOptions);
      },
    };
  }
}

function encode(record: LockRecord): Buffer {
  return Buffer.from(JSON.stringify(record));
}

function isStale(record: LockRecord, options: LockOptions, now: Date): boolean {
  const alive = options.isProcessAlive ?? isProcessAlive;
  if (record.host === hostname() && !alive(record.pid)) return true;
  const age = now.getTime() - new Date(record.heartbeatAt).getTime();
  return !(age < (options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS));
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
