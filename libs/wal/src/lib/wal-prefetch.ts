import { constants } from 'node:fs';
import { FileHandle, lstat, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { TierName, WalFileName, parseWalFileName, walHistoryFileName, walSegmentFileName } from '@rookery/core';
import type { WalTransfer } from './wal.transfer';
import { ARCHIVER_HEARTBEAT_MS, Napper, SpoolOwner, WalSpool, createExclusive, readRegularFile } from './wal.spool';

// Archive-get prefetch (pgBackRest's async archive-get): PostgreSQL runs restore_command once per
// segment, strictly one after the other, and each call pays a process start and a store round
// trip. With `wal-get --prefetch N` a detached prefetcher fetches the next segments of the same
// timeline into a spool beside %p while the server replays; a later wal-get (or the shell fast
// path bin/rookery-wal-get, without starting node) only renames the file into place.
//
// Correctness never depends on the prefetcher: a miss fetches in the foreground, as without
// prefetch. The spool holds only complete files whose sha256 matched the key (WalTransfer.get
// verifies and fsyncs before its rename; the prefetcher renames that into the spool only then).
//
// "Not archived" answers (pgBackRest's async archive-get does the same): a restore's start asks for
// files that are not archived (the next timeline's history, the backup's own segments when the
// archive lacks them, the segment after the archive's end, the histories at promotion), each a
// node process. The prefetcher records what it found missing as `<name>.missing` markers; the
// shell fast path answers 1 from a fresh marker and removes it (see MissingMarkers).

/** The spool directory beside the file PostgreSQL asked for (pg_wal/rookery-prefetch): same filesystem, the server's account, excluded from base backups. */
export const PREFETCH_DIRECTORY = 'rookery-prefetch';
const CURSOR_FILE = 'cursor';
/** The prefetcher's log, in its spool (removed with it). */
const PREFETCHER_LOG_FILE = 'prefetcher.log';
const SCAN_MS = 100;

/** `<name>.missing` in the spool: the prefetcher found `name` not archived (see MissingMarkers). */
export const MISSING_MARKER_SUFFIX = '.missing';
/** What bin/rookery-wal-get renames a marker to when it answered from it: the prefetcher then checks the name again. */
export const USED_MARKER_SUFFIX = '.missing.used';
/**
 * bin/rookery-wal-get answers "not archived" from a marker only when its check started at most
 * this long ago (the script's bound is the same, in centiseconds). A segment archived just after a
 * check is seen at most this much later than by a foreground wal-get: under half of PostgreSQL's
 * wal_retrieve_retry_interval (5 s), the delay a standby itself puts between two asks.
 */
export const MISSING_FRESH_MS = 2_000;
/** A name with a fresh marker, and the archive's end, are checked again this often: found archived, the marker goes early. */
export const MISSING_RECHECK_MS = 1_000;

export interface PrefetcherLaunch {
  tier: string;
  spoolDirectory: string;
  depth: number;
  /** The global options of this wal-get (--config, --repo), handed on unchanged: no secret is added to argv. */
  globalArgs: string[];
  logFile: string;
}

/** Starts the prefetcher, detached (bin/rookery.js provides it: it knows how to run rookery); returns its pid when known. */
export type PrefetcherLauncher = (launch: PrefetcherLaunch) => number | undefined | void;

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

/**
 * Recovery fetched a timeline history file: it may take another timeline (start or end of
 * recovery), and segments fetched so far may be for the wrong one. (A history file not archived
 * changes no timeline: the spool stays, with what the restore's seed put there.)
 */
export async function clearPrefetchSpool(spoolDirectory: string): Promise<void> {
  await removeSpool(spoolDirectory);
}

/**
 * Removes the spool: renamed aside first (atomic), then deleted. A prefetcher writing into it
 * (a fetch, a marker) at that moment writes by the old path and fails; removing the directory in
 * place could fail on a file created behind the listing (ENOTEMPTY).
 */
async function removeSpool(spoolDirectory: string): Promise<void> {
  const aside = `${spoolDirectory}.${process.pid}.${Date.now()}.removing`;
  try {
    await rename(spoolDirectory, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}

/** How long stopPrefetcher waits for the prefetcher to leave after SIGTERM before SIGKILL. */
const PREFETCHER_STOP_MS = 30_000;

/**
 * Stops the prefetcher of a restored data directory's server and returns once it has exited: its
 * spool is removed (a prefetcher not yet holding the lock then never starts, see
 * WalPrefetcher.run), and the lock's holder is told to stop (SIGTERM, SIGKILL after
 * PREFETCHER_STOP_MS) and awaited. Whoever removes a restored directory calls this after stopping
 * the server: a prefetcher left running would write into the directory behind its removal.
 */
export async function stopPrefetcher(dataDirectory: string): Promise<void> {
  const spoolDirectory = join(dataDirectory, 'pg_wal', PREFETCH_DIRECTORY);
  const pid = await new WalSpool(spoolDirectory).archiverPid();
  await removeSpool(spoolDirectory);
  // A prefetcher inside this process (rookery restore --start's, WalPrefetcher.run) sees its spool gone and stops.
  if (pid === null || pid === process.pid) return;
  // Without the right to signal it (another account's), it still sees its spool gone and exits.
  signal(pid, 'SIGTERM');
  const napper = new Napper();
  const deadline = Date.now() + PREFETCHER_STOP_MS;
  while (signal(pid, 0)) {
    if (Date.now() > deadline) {
      signal(pid, 'SIGKILL');
      break;
    }
    await napper.nap(20);
  }
}

/** process.kill without throwing: true when the process exists (EPERM: it does, another account's). */
function signal(pid: number, name: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A miss for `name`: tells a running prefetcher to continue after it (the cursor), or starts one.
 * The cursor is written before the lock is looked at, and a prefetcher leaving looks at the cursor
 * after giving up its lock (WalPrefetcher.run): a miss either finds it running and is served by it,
 * or finds none and starts one. The new one's lock is taken for it here, at once: the next miss,
 * a fraction of a second later, finds it even while it is still loading and starts no second one.
 * Best effort: a failure here only costs the prefetch.
 */
export async function requestPrefetch(
  launch: Omit<PrefetcherLaunch, 'logFile'>,
  name: string,
  launcher: PrefetcherLauncher,
): Promise<void> {
  const spool = new WalSpool(launch.spoolDirectory);
  try {
    await spool.prepare();
    await writePrefetchCursor(launch.spoolDirectory, name).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      // The spool went aside in between (a prefetcher leaving): a new spool, and a new prefetcher below.
      await spool.prepare();
      await writePrefetchCursor(launch.spoolDirectory, name);
    });
    if ((await spool.archiverPid()) !== null) return;
    const pid = launcher({ ...launch, logFile: join(launch.spoolDirectory, PREFETCHER_LOG_FILE) });
    // Lost to another miss's prefetcher: this one finds the lock taken and exits at once.
    if (pid) await spool.acquireArchiverLock(pid, { create: false });
  } catch {
    // Without a prefetcher every segment is fetched in the foreground: slower, still correct.
  }
}

/**
 * Points the prefetcher at `name`: recovery is there and will ask for what follows (atomic:
 * temporary name, rename). `owner`: the file is given to that account first.
 */
export async function writePrefetchCursor(spoolDirectory: string, name: string, owner?: SpoolOwner | null): Promise<void> {
  const temporary = join(spoolDirectory, `.${CURSOR_FILE}.${process.pid}.tmp`);
  await writeExclusive(temporary, `${name}\n`, owner);
  await rename(temporary, join(spoolDirectory, CURSOR_FILE));
}

/** A new file at `path` (a temporary name, renamed into place by the caller) holding `text` (see createExclusive). */
async function writeExclusive(path: string, text: string, owner?: SpoolOwner | null): Promise<void> {
  const handle = await createExclusive(path, owner);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * When a check started, on the clock bin/rookery-wal-get reads with builtins alone (no process
 * start): `<boot id> <centiseconds since boot>` from /proc/sys/kernel/random/boot_id and
 * /proc/uptime. Monotonic (a wall-clock step changes nothing) and tied to this boot. Null where
 * /proc has neither: no marker is written and the script asks node.
 */
export type MarkerClock = () => Promise<string | null>;

let bootId: string | null = null;

export const bootClock: MarkerClock = async () => {
  try {
    bootId ??= (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const uptime = /^(\d+)\.(\d\d) /.exec(await readFile('/proc/uptime', 'utf8'));
    return bootId && uptime ? `${bootId} ${Number(uptime[1]) * 100 + Number(uptime[2])}` : null;
  } catch {
    return null;
  }
};

/**
 * The prefetcher's "not archived" markers. `<name>.missing` holds the clock (MarkerClock) read
 * before a check of the store that found no copy of `name` (for a segment, no .partial either);
 * it is written atomically (temporary name, rename) in the spool, mode 0600. bin/rookery-wal-get
 * answers 1 for `name` only from a marker of its own account, not a symlink, whose check started
 * at most MISSING_FRESH_MS ago on this boot: first by renaming it to `<name>.missing.used` (a
 * marker the prefetcher removed, having found the file archived, answers none), then from the used
 * marker while it is still fresh (recovery asks for some names twice within milliseconds).
 *
 * A used marker makes the prefetcher check the name again at once and write a new marker if it is
 * still missing (the used one is removed when that check lands). Otherwise a marker is never rewritten: it
 * ages out, and a later call goes to node. While a marker is fresh its name is checked again every
 * MISSING_RECHECK_MS, and so is the archive's end (`follow`) for as long as the prefetcher runs:
 * found archived, the marker is removed at once. A failed check (store unreachable) removes it,
 * so node answers (and fails with 128). Checks of one name run one at a time, and a result lands
 * only if no newer check of the name started meanwhile: a slow old "missing" never overwrites a
 * newer "archived". Nothing is written on a schedule: removing the data directory while a
 * prefetcher idles does not race with marker writes.
 */
export class MissingMarkers {
  private readonly watched = new Map<string, WatchedName>();
  private tickets = 0;

  constructor(
    private readonly spoolDirectory: string,
    private readonly clock: MarkerClock = bootClock,
    private readonly owner: SpoolOwner | null = null,
  ) {}

  /** Starts a check of `name`: its ticket and the clock before it (null: no marker can be written). */
  async begin(name: string): Promise<{ ticket: number; stamp: string | null }> {
    const ticket = ++this.tickets;
    const entry = this.watched.get(name);
    if (entry) {
      entry.ticket = ticket;
      entry.checking = true;
    } else {
      this.watched.set(name, { ticket, checking: true, checkedAt: null, markerAt: null, follow: false });
    }
    return { ticket, stamp: await this.clock() };
  }

  /**
   * The check found no copy of `name`. `write`: a new marker (else the one there keeps its older
   * time). `follow`: checked again every MISSING_RECHECK_MS even once its marker is old (the archive's end).
   */
  async missing(name: string, ticket: number, stamp: string | null, options: { write: boolean; follow?: boolean }): Promise<void> {
    const entry = this.current(name, ticket);
    if (!entry) return;
    entry.follow ||= options.follow ?? false;
    if (options.write && stamp !== null) {
      const temporary = join(this.spoolDirectory, `.${name}${MISSING_MARKER_SUFFIX}.${process.pid}.tmp`);
      try {
        await writeExclusive(temporary, `${stamp}\n`, this.owner);
        await rename(temporary, this.markerPath(name));
        await rm(this.usedMarkerPath(name), { force: true }).catch(() => undefined);
        entry.markerAt = Date.now();
      } catch {
        // The spool is gone (a history file was asked for): no marker, node answers.
        await rm(temporary, { force: true }).catch(() => undefined);
      }
    }
    entry.checking = false;
    entry.checkedAt = Date.now();
  }

  /** The check found `name` archived: no marker, not watched. */
  async found(name: string, ticket: number): Promise<void> {
    if (this.current(name, ticket)) await this.forget(name);
  }

  /** The check failed: no marker (node answers); a followed name is checked again later. */
  async failed(name: string, ticket: number): Promise<void> {
    const entry = this.current(name, ticket);
    if (!entry) return;
    await this.remove(name);
    entry.checking = false;
    entry.checkedAt = Date.now();
    entry.markerAt = null;
  }

  /** Stops checking the archive's end again (a new cursor: fetching ahead finds its own end). */
  unfollow(): void {
    for (const entry of this.watched.values()) entry.follow = false;
  }

  /** True while a check of `name` runs. */
  checking(name: string): boolean {
    return this.watched.get(name)?.checking ?? false;
  }

  /**
   * Given the spool's entries as listed at `now`: the names whose marker was used (`mark`: check
   * and write a new marker), the names to check again without writing (`confirm`: fresh marker
   * or followed, last checked MISSING_RECHECK_MS ago), none already being checked. Names neither fresh nor followed are dropped, with their
   * stale marker (removing a file never races with removing the spool).
   */
  async due(entries: ReadonlySet<string>, now: number): Promise<{ mark: string[]; confirm: string[] }> {
    const mark: string[] = [];
    const confirm: string[] = [];
    for (const entry of entries) {
      if (!entry.endsWith(USED_MARKER_SUFFIX)) continue;
      // The used marker stays (it answers again while fresh) until the new check lands.
      const name = entry.slice(0, -USED_MARKER_SUFFIX.length);
      if (!this.checking(name)) mark.push(name);
    }
    for (const [name, entry] of this.watched) {
      if (entry.checking || mark.includes(name)) continue;
      const fresh = entry.markerAt !== null && now - entry.markerAt < MISSING_FRESH_MS;
      if (!fresh && !entry.follow) await this.forget(name);
      else if (entry.checkedAt === null || now - entry.checkedAt >= MISSING_RECHECK_MS) confirm.push(name);
    }
    return { mark, confirm };
  }

  private async forget(name: string): Promise<void> {
    this.watched.delete(name);
    await this.remove(name);
  }

  private current(name: string, ticket: number): WatchedName | null {
    const entry = this.watched.get(name);
    return entry?.ticket === ticket ? entry : null;
  }

  private markerPath(name: string): string {
    return join(this.spoolDirectory, `${name}${MISSING_MARKER_SUFFIX}`);
  }

  private usedMarkerPath(name: string): string {
    return join(this.spoolDirectory, `${name}${USED_MARKER_SUFFIX}`);
  }

  /** Removes `name`'s marker, used or not (a used one answers again while fresh). */
  private async remove(name: string): Promise<void> {
    await Promise.all([this.markerPath(name), this.usedMarkerPath(name)].map((path) => rm(path, { force: true }).catch(() => undefined)));
  }
}

interface WatchedName {
  /** The newest check's ticket: only its result lands. */
  ticket: number;
  checking: boolean;
  /** Date.now() when the last check's result landed. */
  checkedAt: number | null;
  /** Date.now() when the marker now in the spool was written; null when none is. */
  markerAt: number | null;
  /** The archive's end: checked again for as long as the prefetcher runs. */
  follow: boolean;
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
  /** The clock of "not archived" markers (default bootClock). */
  markerClock?: MarkerClock;
  /** The spool's account, when this process is another's (see SpoolOwner). */
  owner?: SpoolOwner | null;
  /** Written as the cursor before the lock is taken: where recovery will start asking (a restore's prefetcher). */
  startAfter?: string;
  /** Called once the lock is this process's: a miss from then on finds the prefetcher alive. */
  onLocked?: () => void;
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
 * removing the spool, after idleMs without a fetch, a consumed file or marker or a new cursor, or
 * when the spool was removed (a history file was asked for).
 *
 * What it finds not archived it records as markers and keeps watching (MissingMarkers): the
 * archive's end, each cursor segment (recovery asks for it again when it ends), and the history
 * files of the cursor's timeline and the next one (asked for at start and at promotion). A watched
 * end found archived later (the primary still archives) resumes fetching ahead from there.
 */
export class WalPrefetcher {
  constructor(private readonly wal: WalTransfer) {}

  async run(options: WalPrefetcherRunOptions): Promise<WalPrefetcherSummary> {
    // Never recreates its spool: one removed before this process got going went with its data
    // directory (a drill's cleanup), or recovery asked for a history file.
    const directory = await SpoolDirectory.open(options.spoolDirectory).catch(() => null);
    if (!directory) return { ran: false, fetched: 0, stoppedAt: null };
    try {
      return await this.runIn(directory, options);
    } finally {
      await directory.close();
    }
  }

  private async runIn(directory: SpoolDirectory, options: WalPrefetcherRunOptions): Promise<WalPrefetcherSummary> {
    const pid = options.pid ?? process.pid;
    const files = directory.files;
    const spool = new WalSpool(files);
    const summary: WalPrefetcherSummary = { ran: false, fetched: 0, stoppedAt: null };
    if (options.startAfter) await writePrefetchCursor(files, options.startAfter, options.owner);
    if (!(await spool.acquireArchiverLock(pid, { create: false, owner: options.owner }))) return summary;
    options.onLocked?.();
    summary.ran = true;
    const fetchOptions = { ...options, spoolDirectory: files };
    const log = options.log ?? (() => undefined);
    let lostLock = false;
    // While the spool is aside (handOverIdleSpool) its lock is not where the heartbeat looks: not lost.
    let handingOver = false;
    let handOvers = 0;
    const heartbeat = setInterval(() => {
      const generation = handOvers;
      spool.heartbeat(pid).then(
        (mine) => (lostLock ||= !mine && !handingOver && generation === handOvers),
        () => undefined,
      );
    }, ARCHIVER_HEARTBEAT_MS);
    const napper = new Napper();
    const inFlight = new Map<string, Promise<void>>();
    let cursor: WalFileName | null = null;
    /** The cursor file last read (a miss replaces it, even for the same name). */
    let cursorWrite: string | null = null;
    let next = 0n;
    let stopped = false;
    let lastActivity = Date.now();
    let lastCount = -1;
    let removed = false;
    /** The spool was given up, idle (see handOverIdleSpool): no longer this process's to remove. */
    let gaveUp = false;
    const markers = new MissingMarkers(files, options.markerClock, options.owner);
    const checks = new Set<Promise<void>>();
    const check = (name: string, write: boolean): Promise<void> => {
      const running: Promise<void> = this.check(options.tier, markers, name, write).then((archived) => {
        const file = parseWalFileName(name);
        if (!archived || !cursor || !stopped || summary.stoppedAt !== 'end' || file?.kind !== 'segment') return;
        if (file.timeline !== cursor.timeline || (file.segmentNumber as bigint) <= (cursor.segmentNumber as bigint)) return;
        // The archive's end moved on (the primary still archives): fetch ahead again from there.
        next = (file.segmentNumber as bigint) < next ? (file.segmentNumber as bigint) : next;
        stopped = false;
        summary.stoppedAt = null;
        log(`${name} is archived now: fetching ahead again`);
      });
      checks.add(running);
      void running.finally(() => {
        checks.delete(running);
        napper.wake();
      });
      return running;
    };
    try {
      while (!options.signal?.aborted && !lostLock) {
        if (!(await directory.isCurrent())) {
          removed = true;
          break;
        }
        const { file: latest, write } = await readCursor(files);
        if (write !== cursorWrite) lastActivity = Date.now();
        cursorWrite = write;
        if (latest && latest.name !== cursor?.name) {
          cursor = latest;
          next = (latest.segmentNumber as bigint) + 1n;
          stopped = false;
          summary.stoppedAt = null;
          lastActivity = Date.now();
          markers.unfollow();
          for (const name of watchedFor(latest)) if (!markers.checking(name)) check(name, true);
        }
        if (!cursor) break;
        const entries = new Set(await readdir(files).catch(() => [] as string[]));
        const held = await this.dropStale(files, entries, cursor);
        if (held.length !== lastCount) lastActivity = Date.now();
        lastCount = held.length;
        const due = await markers.due(entries, Date.now());
        // A used marker is recovery asking: as much activity as a consumed segment.
        if (due.mark.length > 0) lastActivity = Date.now();
        for (const name of due.mark) check(name, true);
        for (const name of due.confirm) check(name, false);
        while (!stopped && inFlight.size < options.processMax && held.length + inFlight.size < options.depth) {
          const name = walSegmentFileName(cursor.timeline, next++);
          if (held.includes(name) || inFlight.has(name)) continue;
          const timeline = cursor.timeline;
          const fetch = this.fetchOne(fetchOptions, markers, name)
            .then(async (outcome) => {
              if (outcome === 'fetched') {
                summary.fetched++;
              } else if (cursor?.timeline === timeline && !stopped) {
                stopped = true;
                summary.stoppedAt = outcome;
                log(`stops fetching ahead at ${name}: ${outcome}`);
                // Recovery reads a segment missing from the archive from pg_wal when it is there
                // (a base backup's own WAL, when the archive lacks it), then asks for the next.
                if (outcome === 'end')
                  await check(walSegmentFileName(timeline, ((parseWalFileName(name) as WalFileName).segmentNumber as bigint) + 1n), true);
              }
            })
            .finally(() => {
              inFlight.delete(name);
              lastActivity = Date.now();
              napper.wake();
            });
          inFlight.set(name, fetch);
        }
        if (inFlight.size === 0 && Date.now() - lastActivity > options.idleMs) {
          await Promise.allSettled([...checks]);
          handingOver = true;
          const outcome = await handOverIdleSpool(options.spoolDirectory, cursorWrite);
          handOvers++;
          handingOver = false;
          if (outcome === 'resumed') {
            log('a miss came in while leaving: going on');
            lastActivity = Date.now();
            continue;
          }
          removed = outcome === 'removed';
          gaveUp = outcome === 'gave-up';
          break;
        }
        await napper.nap(SCAN_MS);
      }
      await Promise.allSettled([...inFlight.values(), ...checks]);
    } finally {
      clearInterval(heartbeat);
      // Idle or told to go: what is left will not be asked for (a later miss starts a new prefetcher).
      // Removed (or another directory in its place: a miss made a new spool) is not this one's to remove.
      if (!lostLock && !gaveUp && !removed) await removeSpool(options.spoolDirectory).catch(() => undefined);
      log(`prefetcher ${pid} exits: ${summary.fetched} fetched${removed ? ' (spool removed)' : ''}${lostLock ? ' (lock taken over)' : ''}`);
    }
    return summary;
  }

  /**
   * The prefetcher's first round, done by a restore right before it starts its server, when no
   * prefetcher runs yet: the next timeline's and this timeline's history files checked, the
   * `segments` segments after `after` fetched, and what is not archived marked (with the segment
   * after the archive's end: recovery reads the backup's own WAL from pg_wal, then asks for the
   * next one). The server's first restore_command calls are then answered by
   * bin/rookery-wal-get; its first miss starts the prefetcher as usual. Files land as this
   * process's: the caller gives the spool to the server's account.
   */
  async seed(options: {
    tier: TierName;
    spoolDirectory: string;
    after: WalFileName;
    segments: number;
    markerClock?: MarkerClock;
  }): Promise<void> {
    const { tier, spoolDirectory, after } = options;
    const markers = new MissingMarkers(spoolDirectory, options.markerClock);
    const checks = watchedFor(after).map((name) => this.check(tier, markers, name, true));
    const fetchOptions: WalPrefetcherRunOptions = {
      tier,
      spoolDirectory,
      depth: options.segments,
      processMax: options.segments,
      idleMs: 0,
    };
    const segmentAfter = (count: number) => walSegmentFileName(after.timeline, (after.segmentNumber as bigint) + BigInt(count));
    const names = Array.from({ length: options.segments }, (_, index) => segmentAfter(index + 1));
    const outcomes = await Promise.all(names.map((name) => this.fetchOne(fetchOptions, markers, name)));
    const stop = outcomes.findIndex((outcome) => outcome !== 'fetched');
    if (outcomes[stop] === 'end') checks.push(this.check(tier, markers, segmentAfter(stop + 2), true));
    await Promise.all(checks);
  }

  /**
   * One segment into the spool: WalTransfer.get lands it verified and fsynced under a dot name
   * (never served), then it is renamed to its own name. A segment archived only as .partial is
   * left to the foreground.
   */
  private async fetchOne(
    options: WalPrefetcherRunOptions,
    markers: MissingMarkers,
    name: string,
  ): Promise<'fetched' | 'end' | 'partial' | string> {
    const staging = join(options.spoolDirectory, `.${name}.fetching`);
    const { ticket, stamp } = await markers.begin(name);
    try {
      const result = await this.wal.get(options.tier, name, staging, { signal: options.signal, owner: options.owner });
      await markers.found(name, ticket);
      if (result.partial) {
        await rm(staging, { force: true });
        return 'partial';
      }
      await rename(staging, join(options.spoolDirectory, name));
      options.log?.(`${name} prefetched (${result.key})`);
      return 'fetched';
    } catch (error) {
      await rm(staging, { force: true }).catch(() => undefined);
      if ((error as { code?: string }).code === 'WAL_NOT_FOUND') {
        await markers.missing(name, ticket, stamp, { write: true, follow: true });
        return 'end';
      }
      await markers.failed(name, ticket);
      return error instanceof Error ? error.message : String(error);
    }
  }

  /** Whether `name` is archived (true on a conflict too: node reports that). Lands the result in `markers` (`write`: a new marker if missing). */
  private async check(tier: TierName, markers: MissingMarkers, name: string, write: boolean): Promise<boolean> {
    const file = parseWalFileName(name) as WalFileName;
    const { ticket, stamp } = await markers.begin(name);
    try {
      let archived = (await this.wal.archive.versions(tier, file)).length > 0;
      // WalTransfer.get serves a segment archived only as .partial: archived too.
      if (!archived && file.kind === 'segment')
        archived = (await this.wal.archive.versions(tier, parseWalFileName(`${name}.partial`) as WalFileName)).length > 0;
      if (archived) await markers.found(name, ticket);
      else await markers.missing(name, ticket, stamp, { write });
      return archived;
    } catch {
      await markers.failed(name, ticket);
      return false;
    }
  }

  /** Segments held in the spool after the cursor on its timeline; others are removed. */
  private async dropStale(spoolDirectory: string, entries: ReadonlySet<string>, cursor: WalFileName): Promise<string[]> {
    const held: string[] = [];
    for (const entry of entries) {
      const file = parseWalFileName(entry);
      if (!file || file.kind !== 'segment') continue;
      if (file.timeline === cursor.timeline && (file.segmentNumber as bigint) > (cursor.segmentNumber as bigint)) held.push(entry);
      else await rm(join(spoolDirectory, entry), { force: true });
    }
    return held;
  }
}

/** Names recovery may ask for again once it is at `cursor`, watched when not archived. */
function watchedFor(cursor: WalFileName): string[] {
  const names = [cursor.name, walHistoryFileName(cursor.timeline)];
  if (cursor.timeline < 0xffffffff) names.push(walHistoryFileName(cursor.timeline + 1));
  return names;
}

/**
 * The cursor and which write of it this is (device:inode: every write is a new file renamed into
 * place, so a miss for the name already there is told from no miss at all).
 */
async function readCursor(spoolDirectory: string): Promise<{ file: WalFileName | null; write: string | null }> {
  const path = join(spoolDirectory, CURSOR_FILE);
  try {
    const { text, dev, ino } = await readRegularFile(path);
    const file = parseWalFileName(text.trim());
    return { file: file?.kind === 'segment' ? file : null, write: `${dev}:${ino}` };
  } catch {
    return { file: null, write: null };
  }
}

/**
 * An idle prefetcher leaving. The spool is renamed aside first (atomic: its lock and cursor go
 * with it, so from then on a miss finds no prefetcher and starts one). Then the cursor it took
 * along is compared with the last one seen: a miss that wrote one in between may have found this
 * prefetcher still alive and started none, so the spool is renamed back (refused when a newer
 * miss made a new one meanwhile: that miss starts its own prefetcher) and the prefetcher goes on.
 * 'resumed': go on; 'gave-up': the spool is gone or someone else's; 'removed': it was already gone.
 */
export async function handOverIdleSpool(spoolDirectory: string, lastWrite: string | null): Promise<'resumed' | 'gave-up' | 'removed'> {
  const aside = `${spoolDirectory}.${process.pid}.${Date.now()}.removing`;
  try {
    await rename(spoolDirectory, aside);
  } catch {
    return 'removed';
  }
  const { write } = await readCursor(aside);
  if (write !== null && write !== lastWrite) {
    try {
      await rename(aside, spoolDirectory);
      return 'resumed';
    } catch {
      // A newer miss's spool is there: its own prefetcher serves it.
    }
  }
  await rm(aside, { recursive: true, force: true });
  return 'gave-up';
}

/**
 * A prefetcher's spool, opened once (no symbolic link followed) and reached from then on through
 * /proc/self/fd/<descriptor>: the directory this process opened, whatever the path names later.
 * The spool's account can rename the path or put a link in its place; a root prefetcher still
 * writes only into the directory it opened. `isCurrent`: the path still names that directory (else
 * it was removed: recovery asked for a history file, or its data directory went).
 */
class SpoolDirectory {
  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly files: string,
    private readonly identity: string,
  ) {}

  static async open(path: string): Promise<SpoolDirectory> {
    const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      const info = await handle.stat();
      const files = `/proc/self/fd/${handle.fd}`;
      // The directory through its descriptor (Linux): refused where /proc cannot give it.
      const through = await stat(files);
      if (`${through.dev}:${through.ino}` !== `${info.dev}:${info.ino}`) throw new Error(`${files} is not ${path}`);
      return new SpoolDirectory(handle, path, files, `${info.dev}:${info.ino}`);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async isCurrent(): Promise<boolean> {
    try {
      const info = await lstat(this.path);
      return info.isDirectory() && `${info.dev}:${info.ino}` === this.identity;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}
