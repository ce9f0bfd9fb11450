import type { ProgressEvent } from '@rookery/engine';

/** Where a running backup or restore is: its phase and logical bytes so far (of totalBytes, when known). */
export interface JobProgress {
  phase: ProgressEvent['phase'];
  bytes: number;
  totalBytes?: number;
}

/** The served part of an engine progress event (the artifact name stays in the logs). */
export function jobProgressOf(event: ProgressEvent): JobProgress {
  return event.totalBytes === undefined
    ? { phase: event.phase, bytes: event.bytes }
    : { phase: event.phase, bytes: event.bytes, totalBytes: event.totalBytes };
}

/** At most this many updates a second reach a watcher: progress events come per chunk. */
export const WATCH_INTERVAL_MS = 250;
/**
 * A watcher also looks again this often without being told: a job run by another process (a
 * backup in the catalog) tells this one nothing, and a change between two looks is never lost.
 */
export const WATCH_POLL_MS = 1_000;

/**
 * Who is told that a job changed (progress, or its end), by job id. Jobs call changed(); watchers
 * subscribe() and are woken, never handed the change: they read the job's current state, so a
 * burst of progress events costs a watcher one read.
 */
export class JobChanges {
  private readonly listeners = new Map<string, Set<() => void>>();

  subscribe(id: string, listener: () => void): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(id) === set) this.listeners.delete(id);
    };
  }

  changed(id: string): void {
    for (const listener of this.listeners.get(id) ?? []) listener();
  }
}

export interface WatchSource<Update> {
  /** The job's state now (its record and progress). */
  current(): Promise<Update>;
  /** Whether the job has ended: the update that says so is the last. */
  isFinal(update: Update): boolean;
  /** Wakes the watcher when the job changes; returns the unsubscribe. */
  subscribe(wake: () => void): () => void;
  intervalMs?: number;
  pollMs?: number;
}

/**
 * A job's updates as a stream: its state now, again after each change (no more often than
 * `intervalMs`; also looked at every `pollMs`, yielded only when it differs), and a last one once
 * it has ended; then the stream ends. A job that has ended already yields once. A watcher that stops reading (returns early)
 * unsubscribes.
 */
export async function* watchUpdates<Update>(source: WatchSource<Update>): AsyncGenerator<Update> {
  const intervalMs = source.intervalMs ?? WATCH_INTERVAL_MS;
  const pollMs = source.pollMs ?? WATCH_POLL_MS;
  let changed = false;
  let wake: (() => void) | null = null;
  // Subscribed before the first read: a change between the read and the wait is not missed.
  const unsubscribe = source.subscribe(() => {
    changed = true;
    wake?.();
  });
  try {
    let update = await source.current();
    let yielded = JSON.stringify(update);
    let yieldedAt = Date.now();
    yield update;
    while (!source.isFinal(update)) {
      if (!changed) await wakeOrTimeout((resolve) => (wake = resolve), pollMs);
      wake = null;
      await delay(yieldedAt + intervalMs - Date.now());
      changed = false;
      update = await source.current();
      // A look that finds nothing new (a poll, a change undone) is not an update.
      const seen = JSON.stringify(update);
      if (seen === yielded && !source.isFinal(update)) continue;
      yielded = seen;
      yieldedAt = Date.now();
      yield update;
    }
  } finally {
    unsubscribe();
  }
}

function wakeOrTimeout(register: (resolve: () => void) => void, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    register(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
