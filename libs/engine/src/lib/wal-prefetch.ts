import { readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { TierName, WalFileName, parseWalFileName, walSegmentFileName } from '@rookery/core';
import type { WalTransfer } from './wal.transfer';
import { ARCHIVER_HEARTBEAT_MS, Napper, WalSpool } from './wal.spool';

// Archive-get prefetch (pgBackRest's async archive-get): PostgreSQL runs restore_command once per
// segment, strictly one after the other, and each call pays a process start and a store round
// trip. With `wal-get --prefetch N` a detached prefetcher fetches the next segments of the same
// timeline into a spool beside %p while the server replays; a later wal-get (or the shell fast
// path bin/rookery-wal-get, without starting node) only renames the file into place.
//
// Correctness never depends on the prefetcher: a miss fetches in the foreground, as without
// prefetch. The spool holds only complete files whose sha256 matched the key (WalTransfer.get
// verifies and fsyncs before its rename; the prefetcher renames that into the spool only then).

/** The spool directory beside the file PostgreSQL asked for (pg_wal/rookery-prefetch): same filesystem, the server's account, excluded from base backups. */
export const PREFETCH_DIRECTORY = 'rookery-prefetch';
const CURSOR_FILE = 'cursor';
const LOG_FILE = 'prefetcher.log';
const SCAN_MS = 100;

export interface PrefetcherLaunch {
  tier: string;
  spoolDirectory: string;
  depth: number;
  /** The global options of this wal-get (--config, --repo), handed on unchanged: no secret is added to argv. */
  globalArgs: string[];
  logFile: string;
}

/** Starts the prefetcher, detached (bin/rookery.js provides it: it knows how to run rookery). */
export type PrefetcherLauncher = (launch: PrefetcherLaunch) => void;

let registeredLauncher: PrefetcherLauncher | null = null;

export function registerPrefetcherLauncher(launcher: PrefetcherLauncher): void {
  registeredLauncher = launcher;
}

export function prefetcherLauncher(): PrefetcherLauncher | null {
  return registeredLauncher;
}

export function prefetchSpoolFor(destination: string): string {
  return join(dirname(resolve(destination)), PREFETCH_DIRECTORY);
}

/** Moves a prefetched `name` to `destination`; false when the spool does not hold it. */
export async function takePrefetched(spoolDirectory: string, name: string, destination: string): Promise<boolean> {
  try {
    await rename(join(spoolDirectory, name), destination);
    return true;
  } catch {
    return false;
  }
}

/** Recovery asked for a timeline history file: it is choosing a timeline (start or end of recovery). Segments fetched so far may be for the wrong one. */
export async function clearPrefetchSpool(spoolDirectory: string): Promise<void> {
  await rm(spoolDirectory, { recursive: true, force: true });
}

/**
 * A miss for `name`: tells a running prefetcher to continue after it (the cursor), or starts one.
 * Best effort: a failure here only costs the prefetch.
 */
export async function requestPrefetch(launch: Omit<PrefetcherLaunch, 'logFile'>, name: string, launcher: PrefetcherLauncher): Promise<void> {
  const spool = new WalSpool(launch.spoolDirectory);
  try {
    await spool.prepare();
    const temporary = join(launch.spoolDirectory, `.${CURSOR_FILE}.${process.pid}.tmp`);
    await writeFile(temporary, `${name}\n`, { mode: 0o600 });
    await rename(temporary, join(launch.spoolDirectory, CURSOR_FILE));
    if ((await spool.archiverPid()) === null) launcher({ ...launch, logFile: join(launch.spoolDirectory, LOG_FILE) });
  } catch {
    // Without a prefetcher every segment is fetched in the foreground: slower, still correct.
  }
}

export interface WalPrefetcherRunOptions {
  tier: TierName;
  spoolDirectory: string;
  /** At most this many segments in the spool plus in flight. */
  depth: number;
  processMax: number;
  idleMs: number;
  pid?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface WalPrefetcherSummary {
  /** False when another live prefetcher holds this spool. */
  ran: boolean;
  fetched: number;
  /** Why it stopped fetching ahead last: 'end' (not archived), 'partial', or a failure message. */
  stoppedAt: string | null;
}

/**
 * The prefetcher: one per spool (the archiver's pid/heartbeat lock). Fetches the segments after
 * the cursor on the cursor's timeline, processMax at once, while the spool plus fetches in flight
 * hold fewer than `depth`; stops fetching ahead at the first segment that is not archived (the
 * archive's end), is archived only as .partial (the end of a timeline: the foreground decides), or
 * fails (a damaged object: the foreground fetches it and aborts recovery). A new cursor (a miss)
 * starts again from there and drops spool files at or before it or on another timeline. Exits,
 * removing the spool, after idleMs without a fetch, a consumed file or a new cursor, or when the
 * spool was removed (a history file was asked for).
 */
export class WalPrefetcher {
  constructor(private readonly wal: WalTransfer) {}

  async run(options: WalPrefetcherRunOptions): Promise<WalPrefetcherSummary> {
    const pid = options.pid ?? process.pid;
    const spool = new WalSpool(options.spoolDirectory);
    const summary: WalPrefetcherSummary = { ran: false, fetched: 0, stoppedAt: null };
    if (!(await spool.acquireArchiverLock(pid))) return summary;
    summary.ran = true;
    const log = options.log ?? (() => undefined);
    let lostLock = false;
    const heartbeat = setInterval(() => {
      spool.heartbeat(pid).then((mine) => (lostLock ||= !mine), () => undefined);
    }, ARCHIVER_HEARTBEAT_MS);
    const napper = new Napper();
    const inFlight = new Map<string, Promise<void>>();
    let cursor: WalFileName | null = null;
    let next = 0n;
    let stopped = false;
    let lastActivity = Date.now();
    let lastCount = -1;
    let removed = false;
    try {
      while (!options.signal?.aborted && !lostLock) {
        if (!(await exists(options.spoolDirectory))) {
          removed = true;
          break;
        }
        const latest = await readCursor(options.spoolDirectory);
        if (latest && latest.name !== cursor?.name) {
          cursor = latest;
          next = (latest.segmentNumber as bigint) + 1n;
          stopped = false;
          summary.stoppedAt = null;
          lastActivity = Date.now();
        }
        if (!cursor) break;
        const held = await this.dropStale(options.spoolDirectory, cursor);
        if (held.length !== lastCount) lastActivity = Date.now();
        lastCount = held.length;
        while (!stopped && inFlight.size < options.processMax && held.length + inFlight.size < options.depth) {
          const name = walSegmentFileName(cursor.timeline, next++);
          if (held.includes(name) || inFlight.has(name)) continue;
          const timeline = cursor.timeline;
          const fetch = this.fetchOne(options, name)
            .then((outcome) => {
              if (outcome === 'fetched') {
                summary.fetched++;
              } else if (cursor?.timeline === timeline && !stopped) {
                stopped = true;
                summary.stoppedAt = outcome;
                log(`stops fetching ahead at ${name}: ${outcome}`);
              }
            })
            .finally(() => {
              inFlight.delete(name);
              lastActivity = Date.now();
              napper.wake();
            });
          inFlight.set(name, fetch);
        }
        if (inFlight.size === 0 && Date.now() - lastActivity > options.idleMs) break;
        await napper.nap(SCAN_MS);
      }
      await Promise.allSettled(inFlight.values());
    } finally {
      clearInterval(heartbeat);
      // Idle or told to go: what is left will not be asked for (a later miss starts a new prefetcher).
      if (!lostLock) await rm(options.spoolDirectory, { recursive: true, force: true });
      log(`prefetcher ${pid} exits: ${summary.fetched} fetched${removed ? ' (spool removed)' : ''}${lostLock ? ' (lock taken over)' : ''}`);
    }
    return summary;
  }

  /**
   * One segment into the spool: WalTransfer.get lands it verified and fsynced under a dot name
   * (never served), then it is renamed to its own name. A segment archived only as .partial is
   * left to the foreground.
   */
  private async fetchOne(options: WalPrefetcherRunOptions, name: string): Promise<'fetched' | 'end' | 'partial' | string> {
    const staging = join(options.spoolDirectory, `.${name}.fetching`);
    try {
      const result = await this.wal.get(options.tier, name, staging, { signal: options.signal });
      if (result.partial) {
        await rm(staging, { force: true });
        return 'partial';
      }
      await rename(staging, join(options.spoolDirectory, name));
      options.log?.(`${name} prefetched (${result.key})`);
      return 'fetched';
    } catch (error) {
      await rm(staging, { force: true }).catch(() => undefined);
      if ((error as { code?: string }).code === 'WAL_NOT_FOUND') return 'end';
      return error instanceof Error ? error.message : String(error);
    }
  }

  /** Segments held in the spool after the cursor on its timeline; others are removed. */
  private async dropStale(spoolDirectory: string, cursor: WalFileName): Promise<string[]> {
    const held: string[] = [];
    for (const entry of await readdir(spoolDirectory).catch(() => [] as string[])) {
      const file = parseWalFileName(entry);
      if (!file || file.kind !== 'segment') continue;
      if (file.timeline === cursor.timeline && (file.segmentNumber as bigint) > (cursor.segmentNumber as bigint)) held.push(entry);
      else await rm(join(spoolDirectory, entry), { force: true });
    }
    return held;
  }
}

async function readCursor(spoolDirectory: string): Promise<WalFileName | null> {
  try {
    const file = parseWalFileName((await readFile(join(spoolDirectory, CURSOR_FILE), 'utf8')).trim());
    return file?.kind === 'segment' ? file : null;
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

