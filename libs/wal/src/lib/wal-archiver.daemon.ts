import { FSWatcher, watch } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { RookeryError, TierName, WalFileName, parseWalFileName } from '@rookery/core';
import { WalTransfer } from './wal.transfer';
import { ARCHIVER_HEARTBEAT_MS, Napper, WalSpool, fileIdentity, sameIdentity } from './wal.spool';

export interface WalArchiverRunOptions {
  tier: TierName;
  /** pg_wal of the server; its archive_status/*.ready files are the work list. */
  walDirectory: string;
  spool: WalSpool;
  /** The primary store URL, recorded in each acknowledgement. */
  store: string;
  processMax: number;
  /** At most this many acknowledgements waiting for their wal-push call (plus pushes in flight). */
  batchMax: number;
  idleMs: number;
  pid?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface WalArchiverRunSummary {
  /** False when another live archiver holds this spool's lock (nothing was done). */
  ran: boolean;
  pushed: number;
  failed: number;
}

const SCAN_MS = 250;

/**
 * The background archiver of asynchronous archiving (pgBackRest's archive-push --archive-async
 * design): one process per spool and tier, started by a wal-push that found no acknowledgement.
 * It pushes what PostgreSQL has marked ready, oldest first and processMax at once, writes each
 * file's acknowledgement only after the store confirmed the write (the push resolves only then),
 * writes a failure record with the reason when a push fails (the wal-push for that file reports
 * it and its retry lets the archiver try again), drops records of files PostgreSQL no longer
 * lists as ready (archived), and exits after idleMs without work. Killing it loses nothing: a file
 * without an acknowledgement is pushed again by the next archiver.
 */
export class WalArchiverDaemon {
  constructor(private readonly wal: WalTransfer) {}

  async run(options: WalArchiverRunOptions): Promise<WalArchiverRunSummary> {
    const pid = options.pid ?? process.pid;
    const { spool } = options;
    const summary: WalArchiverRunSummary = { ran: false, pushed: 0, failed: 0 };
    if (!(await spool.acquireArchiverLock(pid))) return summary;
    summary.ran = true;
    const log = options.log ?? (() => undefined);
    log(`archiver ${pid} started for tier ${options.tier}: ${options.walDirectory} → ${options.store}`);
    // Workers start while the first files are read and hashed; a failure shows in the first push.
    this.wal.warmUp().catch(() => undefined);

    const inFlight = new Map<string, Promise<void>>();
    let lostLock = false;
    const heartbeat = setInterval(() => {
      spool.heartbeat(pid).then(
        (mine) => (lostLock ||= !mine),
        () => undefined,
      );
    }, ARCHIVER_HEARTBEAT_MS);
    const napper = new Napper();
    const watcher = watchReady(options.walDirectory, napper.wake);
    let lastWork = Date.now();
    try {
      while (!options.signal?.aborted && !lostLock) {
        // Pushes in flight before the spool is read: one that ends during the read has written its
        // record before leaving inFlight, but perhaps after the read saw the spool; without this
        // snapshot it would look new and be read, hashed and looked up in the store again.
        const busy = new Set(inFlight.keys());
        const ready = await readyFiles(options.walDirectory);
        const recorded = await spool.recorded();
        await forgetArchived(spool, recorded, ready);
        const room = Math.max(0, options.batchMax - recorded.acknowledged.size - inFlight.size);
        const todo = ready
          .filter((name) => !busy.has(name) && !inFlight.has(name) && !recorded.acknowledged.has(name) && !recorded.failed.has(name))
          .slice(0, Math.min(room, options.processMax - inFlight.size));
        for (const name of todo) {
          const push = this.pushOne(options, name, log).then((ok) => {
            if (ok) summary.pushed++;
            else summary.failed++;
          });
          inFlight.set(
            name,
            push.finally(() => {
              inFlight.delete(name);
              lastWork = Date.now();
              napper.wake();
            }),
          );
        }
        if (inFlight.size > 0 || todo.length > 0) lastWork = Date.now();
        else if (Date.now() - lastWork > options.idleMs) break;
        await napper.nap(SCAN_MS);
      }
      await Promise.allSettled(inFlight.values());
    } finally {
      clearInterval(heartbeat);
      watcher?.close();
      await spool.releaseArchiverLock(pid);
      log(`archiver ${pid} exits: ${summary.pushed} pushed, ${summary.failed} failed${lostLock ? ' (lock taken over)' : ''}`);
    }
    return summary;
  }

  /**
   * One file: read it between two identical stat()s (the identity recorded is that of the bytes
   * pushed), push it, and acknowledge only after the store confirmed it. Any failure becomes the
   * file's failure record.
   */
  private async pushOne(options: WalArchiverRunOptions, name: string, log: (line: string) => void): Promise<boolean> {
    const path = join(options.walDirectory, name);
    try {
      const file = parseWalFileName(name) as WalFileName;
      const before = await fileIdentity(path);
      const content = await this.wal.read(path);
      const after = await fileIdentity(path);
      if (!sameIdentity(before, after) || Number(before.size) !== content.bytes) {
        throw new Error(`WAL file '${name}' changed while it was read; it will be read again`);
      }
      const result = await this.wal.pushContent(options.tier, file, content, { signal: options.signal });
      await options.spool.acknowledge(name, {
        sha256: result.sha256,
        store: options.store,
        identity: before,
        at: new Date().toISOString(),
      });
      log(`${name} ${result.status} ${result.key}`);
      return true;
    } catch (error) {
      const message =
        error instanceof RookeryError && error.hint
          ? `${error.message} (hint: ${error.hint})`
          : error instanceof Error
            ? error.message
            : String(error);
      await options.spool
        .fail(name, { message, code: error instanceof RookeryError ? error.code : null, at: new Date().toISOString() })
        .catch(() => undefined);
      log(`${name} failed: ${message}`);
      return false;
    }
  }
}

/** WAL files PostgreSQL has marked ready to archive (pg_wal/archive_status/*.ready), oldest first. */
async function readyFiles(walDirectory: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(join(walDirectory, 'archive_status'));
  } catch {
    return [];
  }
  return entries
    .filter((entry) => entry.endsWith('.ready'))
    .map((entry) => entry.slice(0, -'.ready'.length))
    .filter((name) => parseWalFileName(name) !== null)
    .sort();
}

/** Records of files that are no longer ready: PostgreSQL has archived them (or dropped them). */
async function forgetArchived(
  spool: WalSpool,
  recorded: { acknowledged: Set<string>; failed: Set<string> },
  ready: readonly string[],
): Promise<void> {
  const stillReady = new Set(ready);
  for (const name of recorded.acknowledged) {
    if (!stillReady.has(name)) {
      await spool.forget(name, 'ok');
      recorded.acknowledged.delete(name);
    }
  }
  for (const name of recorded.failed) {
    if (!stillReady.has(name)) {
      await spool.forget(name, 'error');
      recorded.failed.delete(name);
    }
  }
}

function watchReady(walDirectory: string, onChange: () => void): FSWatcher | null {
  try {
    const watcher = watch(join(walDirectory, 'archive_status'), { persistent: false }, onChange);
    watcher.on('error', () => undefined);
    return watcher;
  } catch {
    return null; // Scanning every SCAN_MS still finds new files.
  }
}
