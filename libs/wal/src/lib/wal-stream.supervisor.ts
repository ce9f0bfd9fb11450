import { FSWatcher, watch } from 'node:fs';
import { chown, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { WalStreamConfig } from '@rookery/config';
import { TierName, ToolFailedError, WalFileName, parseLsn, parseWalFileName } from '@rookery/core';
import type { ReceivewalExit, RunningReceivewal, SynchronousStandbyState } from '@rookery/postgres';
import type { WalPushResult } from './wal.service';

/**
 * What the supervisor needs from PostgreSQL (PgReceivewalDriver and PgReceivewalClient satisfy it;
 * createWalStreamSupervisor wires them).
 */
export interface WalStreamReceiver {
  createSlot(options: { url: string; slot: string; signal?: AbortSignal }): Promise<void>;
  start(options: {
    url: string;
    directory: string;
    slot: string;
    applicationName: string;
    user?: 'postgres';
    signal?: AbortSignal;
    onStderrLine?: (line: string) => void;
  }): RunningReceivewal;
  state(url: string, options: { applicationName: string; slot: string }): Promise<SynchronousStandbyState>;
  setSynchronousStandbyNames(url: string, value: string): Promise<void>;
}

export interface WalStreamDependencies {
  settings: WalStreamConfig;
  /** The streamed tier's primary; a password in it reaches pg_receivewal through env only. */
  pgUrl: string;
  receiver: WalStreamReceiver;
  /** WalService.push: idempotent, resolves once the file is durable in the store. */
  push(tier: TierName, path: string): Promise<WalPushResult>;
  /** The value that lists our standby alone; and whether a setting lists it (pure, from libs/postgres). */
  standbyNames: { for(applicationName: string): string; lists(setting: string, applicationName: string): boolean };
  /** The postgres OS account when running as root: pg_receivewal runs as it and owns the spool. */
  osUser: { uid: number; gid: number } | null;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** How often the spool is swept even without a file-system event; default 2000 ms. */
  sweepIntervalMs?: number;
}

export interface WalStreamExit {
  at: string;
  exitCode: number | null;
  /** The last stderr line or the error: why it stopped. */
  reason: string;
}

export interface WalStreamUpload {
  name: string;
  key: string;
  status: WalPushResult['status'];
  at: string;
}

/** What GET /status shows about the stream. */
export interface WalStreamStatus {
  tier: TierName;
  slot: string;
  applicationName: string;
  spoolDirectory: string;
  onDown: WalStreamConfig['onDown'];
  receiver: {
    running: boolean;
    pid: number | null;
    startedAt: string | null;
    /** pg_receivewal starts after the first one (crashes, lost connections). */
    restarts: number;
    /** Delay before the next start when it is not running. */
    nextStartInMs: number | null;
    lastExit: WalStreamExit | null;
  };
  uploads: {
    lastUploaded: WalStreamUpload | null;
    /** The newest .partial pushed (on pg_receivewal exit or shutdown). */
    lastPartial: WalStreamUpload | null;
    /** Completed segments and history files in the spool not yet in the repository. */
    pending: string[];
    failures: number;
    lastError: string | null;
  };
  /** What the primary reports; `error` instead when it cannot be asked (it is down). */
  primary:
    | {
        /** Whether synchronous_standby_names lists us: only then do commits wait for our flush. */
        registered: boolean;
        synchronousStandbyNames: string;
        synchronousCommit: string;
        currentLsn: string;
        /** From pg_stat_replication: 'sync' while commits wait for us; null when not connected. */
        syncState: string | null;
        state: string | null;
        flushLsn: string | null;
        slot: SynchronousStandbyState['slot'];
      }
    | { error: string };
}

/** How long to wait for pg_receivewal to stop before the partial segment is uploaded anyway. */
const RECEIVER_STOP_WAIT_MS = 15_000;

/**
 * Keeps a synchronous pg_receivewal running against the queue tier's primary and moves what it
 * writes into the repository (DESIGN §5, queue tier RPO 0):
 *
 * - pg_receivewal streams through a permanent slot (the primary keeps WAL until we have it) and
 *   flushes every chunk before acknowledging; with our application name in synchronous_standby_names
 *   a commit returns only once its WAL is on the spool disk.
 * - Each completed segment and timeline history file is pushed to the repository (idempotent) and
 *   removed from the spool only once the push resolved, i.e. once it is durable in the store.
 * - When pg_receivewal exits (primary crash, lost connection) and when the service stops, the
 *   current .partial segment is pushed too, so the repository alone holds every acknowledged commit;
 *   then pg_receivewal is started again with exponential backoff.
 */
export class WalStreamSupervisor {
  private readonly settings: WalStreamConfig;
  private stopping = false;
  private readonly stopSignal = new AbortController();
  private runAbort: AbortController | null = null;
  private loop: Promise<void> | null = null;
  private sweeps: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Files pushed and kept in the spool (the newest segment), by name → size:mtime. */
  private readonly pushed = new Map<string, string>();
  private readonly receiver: WalStreamStatus['receiver'] = {
    running: false,
    pid: null,
    startedAt: null,
    restarts: 0,
    nextStartInMs: null,
    lastExit: null,
  };
  private readonly uploads: Omit<WalStreamStatus['uploads'], 'pending'> = {
    lastUploaded: null,
    lastPartial: null,
    failures: 0,
    lastError: null,
  };

  constructor(private readonly deps: WalStreamDependencies) {
    this.settings = deps.settings;
  }

  get spoolDirectory(): string {
    return this.settings.spoolDir;
  }

  /**
   * Prepares the spool, registers (or checks) the standby in synchronous_standby_names, pushes
   * whatever a previous run left in the spool, and starts pg_receivewal. Resolves once it runs;
   * the stream then keeps itself going until stop().
   */
  async start(): Promise<void> {
    if (this.loop) return;
    await this.prepareSpool();
    await this.registerStandby().catch((error: unknown) =>
      this.log('warn', `cannot register '${this.settings.applicationName}' in synchronous_standby_names now: ${describe(error)}`),
    );
    // A previous run may have died before pushing: its segments and partial go first.
    await this.sweep({ partial: true });
    this.watcher = this.watchSpool();
    this.timer = setInterval(() => void this.sweep({ partial: false }), this.deps.sweepIntervalMs ?? 2_000);
    this.timer.unref();
    this.loop = this.superviseReceiver();
  }

  /**
   * Stops pg_receivewal, pushes the current partial segment and every completed one, and in
   * degrade mode removes our name from synchronous_standby_names so commits stop waiting for us.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.loop ?? undefined;
    this.stopping = true;
    if (this.settings.onDown === 'degrade' && this.settings.manageSynchronousStandbyNames) {
      // Before pg_receivewal goes: commits already waiting are released, none start waiting.
      await this.deps.receiver
        .setSynchronousStandbyNames(this.deps.pgUrl, '')
        .then(() =>
          this.log(
            'warn',
            `degrade: removed '${this.settings.applicationName}' from synchronous_standby_names; commits no longer wait for the WAL stream (RPO > 0 until the service is back)`,
          ),
        )
        .catch((error: unknown) => this.log('error', `degrade: cannot clear synchronous_standby_names: ${describe(error)}`));
    }
    this.stopSignal.abort(new Error('the wal stream is stopping'));
    this.runAbort?.abort(new Error('the wal stream is stopping'));
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.loop;
    // The loop pushed the partial after pg_receivewal exited; wait for any sweep still queued.
    await this.sweeps;
  }

  /** Pushes what is in the spool now (completed segments, history files; the partial if asked). */
  sweep(options: { partial: boolean }): Promise<void> {
    const next = this.sweeps.then(() => this.uploadSpool(options));
    this.sweeps = next.catch(() => undefined);
    return next;
  }

  /** The supervisor's own part of the status, without asking the primary (for metrics). */
  snapshot(): Pick<WalStreamStatus, 'receiver'> & { uploads: Omit<WalStreamStatus['uploads'], 'pending'> } {
    return { receiver: { ...this.receiver }, uploads: { ...this.uploads } };
  }

  async status(): Promise<WalStreamStatus> {
    // The primary first, our own record after: pg_receivewal is recorded as running before it
    // connects, so a primary that shows it streaming is never paired with an older record that
    // says it has not started (the record read first could be from before the spawn).
    const primary = await this.primaryStatus();
    const pending = await this.pendingFiles();
    return {
      tier: this.settings.tier,
      slot: this.settings.slot,
      applicationName: this.settings.applicationName,
      spoolDirectory: this.settings.spoolDir,
      onDown: this.settings.onDown,
      receiver: { ...this.receiver },
      uploads: { ...this.uploads, pending },
      primary,
    };
  }

  private async superviseReceiver(): Promise<void> {
    let failures = 0;
    for (let first = true; !this.stopping; first = false) {
      if (!first) {
        this.receiver.restarts += 1;
        const delay = Math.min(this.settings.restartBackoffMs.initial * 2 ** Math.max(0, failures - 1), this.settings.restartBackoffMs.max);
        this.receiver.nextStartInMs = delay;
        this.log('info', `starting pg_receivewal again in ${delay} ms (restart ${this.receiver.restarts})`);
        await sleep(delay, this.stopSignal.signal);
        this.receiver.nextStartInMs = null;
        if (this.stopping) break;
      }
      const startedAt = Date.now();
      const exit = await this.runReceiverOnce();
      // A run that streamed for longer than the longest backoff was healthy: start over at the shortest.
      failures = Date.now() - startedAt > this.settings.restartBackoffMs.max ? 1 : failures + 1;
      this.receiver.lastExit = { at: new Date().toISOString(), exitCode: exit.exitCode, reason: exitReason(exit) };
      if (!this.stopping) this.log('warn', `pg_receivewal exited (${this.receiver.lastExit.reason})`);
      // Whatever it flushed and acknowledged is in the partial segment: into the repository with it
      // before anything else happens (the primary may never come back).
      await this.sweep({ partial: true }).catch(() => undefined);
    }
  }

  private async runReceiverOnce(): Promise<ReceivewalExit> {
    const abort = new AbortController();
    this.runAbort = abort;
    try {
      // Permanent slot, created once: from then on the primary keeps WAL we have not flushed.
      await this.deps.receiver.createSlot({ url: this.deps.pgUrl, slot: this.settings.slot, signal: abort.signal });
      const run = this.deps.receiver.start({
        url: this.deps.pgUrl,
        directory: this.settings.spoolDir,
        slot: this.settings.slot,
        applicationName: this.settings.applicationName,
        user: this.deps.osUser ? 'postgres' : undefined,
        signal: abort.signal,
      });
      Object.assign(this.receiver, { running: true, pid: run.pid ?? null, startedAt: new Date().toISOString() });
      this.log('info', `pg_receivewal streaming into ${this.settings.spoolDir} through slot '${this.settings.slot}' (pid ${run.pid})`);
      return await withStopDeadline(run.exited, abort.signal, RECEIVER_STOP_WAIT_MS);
    } catch (error) {
      // The slot could not be created: the primary is unreachable, as good as a lost connection.
      return { exitCode: error instanceof ToolFailedError ? error.exitCode : null, stderrTail: '', error: error as Error };
    } finally {
      Object.assign(this.receiver, { running: false, pid: null });
      this.runAbort = null;
    }
  }

  private async registerStandby(): Promise<void> {
    const { applicationName } = this.settings;
    const current = (await this.deps.receiver.state(this.deps.pgUrl, { applicationName, slot: this.settings.slot }))
      .synchronousStandbyNames;
    if (this.deps.standbyNames.lists(current, applicationName)) return;
    if (!this.settings.manageSynchronousStandbyNames) {
      this.log(
        'warn',
        `synchronous_standby_names is '${current}' and does not list '${applicationName}': commits do not wait for the WAL stream (RPO > 0); set it on the primary or enable walStream.manageSynchronousStandbyNames`,
      );
      return;
    }
    const value = this.deps.standbyNames.for(applicationName);
    await this.deps.receiver.setSynchronousStandbyNames(this.deps.pgUrl, value);
    this.log('info', `synchronous_standby_names set to ${value} (was '${current}'): commits now wait for the WAL stream`);
  }

  private async prepareSpool(): Promise<void> {
    await mkdir(this.settings.spoolDir, { recursive: true, mode: 0o700 });
    // pg_receivewal runs as the postgres account when we are root: it must own its directory.
    if (this.deps.osUser) await chown(this.settings.spoolDir, this.deps.osUser.uid, this.deps.osUser.gid);
  }

  private watchSpool(): FSWatcher | null {
    try {
      // A completed segment appears by rename: push it without waiting for the next interval.
      const watcher = watch(this.settings.spoolDir, (_event, name) => {
        const file = name ? parseWalFileName(String(name)) : null;
        if (file && file.kind !== 'partial') void this.sweep({ partial: false });
      });
      watcher.on('error', () => undefined);
      return watcher;
    } catch {
      return null;
    }
  }

  private async uploadSpool(options: { partial: boolean }): Promise<void> {
    const files = await this.spoolFiles();
    const newestSegment = files.filter((file) => file.kind === 'segment').at(-1)?.name;
    for (const file of files) {
      if (file.kind === 'partial' && !options.partial) continue;
      const path = join(this.settings.spoolDir, file.name);
      let version: string;
      try {
        const info = await stat(path);
        version = `${info.size}:${info.mtimeMs}`;
      } catch {
        continue; // renamed or removed since the listing
      }
      if (this.pushed.get(file.name) !== version) {
        try {
          const result = await this.deps.push(this.settings.tier, path);
          const upload = { name: file.name, key: result.key, status: result.status, at: new Date().toISOString() };
          if (file.kind === 'partial') this.uploads.lastPartial = upload;
          else this.uploads.lastUploaded = upload;
          this.pushed.set(file.name, version);
          if (result.status === 'archived') this.log('info', `pushed ${file.name} to the repository (${result.key})`);
        } catch (error) {
          this.uploads.failures += 1;
          this.uploads.lastError = `${file.name}: ${describe(error)}`;
          this.log('error', `cannot push ${file.name} to the repository (kept in the spool, retried): ${describe(error)}`);
          continue;
        }
      }
      // Durable in the store: the spool copy can go, except the partial pg_receivewal resumes from
      // and the newest completed segment, which tells a restarted pg_receivewal where to continue.
      if (file.kind !== 'partial' && file.name !== newestSegment) {
        await rm(path, { force: true });
        this.pushed.delete(file.name);
      }
    }
  }

  /** WAL files in the spool, oldest first (pg_receivewal's temporary files excluded). */
  private async spoolFiles(): Promise<WalFileName[]> {
    let names: string[];
    try {
      names = await readdir(this.settings.spoolDir);
    } catch {
      return [];
    }
    return names
      .map((name) => parseWalFileName(name))
      .filter((file): file is WalFileName => file !== null && file.kind !== 'backup')
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  private async pendingFiles(): Promise<string[]> {
    return (await this.spoolFiles()).filter((file) => file.kind !== 'partial' && !this.pushed.has(file.name)).map((file) => file.name);
  }

  private async primaryStatus(): Promise<WalStreamStatus['primary']> {
    const { applicationName, slot } = this.settings;
    try {
      const state = await this.deps.receiver.state(this.deps.pgUrl, { applicationName, slot });
      return {
        registered: this.deps.standbyNames.lists(state.synchronousStandbyNames, applicationName),
        synchronousStandbyNames: state.synchronousStandbyNames,
        synchronousCommit: state.synchronousCommit,
        currentLsn: state.currentLsn,
        syncState: state.replication?.syncState ?? null,
        state: state.replication?.state ?? null,
        flushLsn: state.replication?.flushLsn ?? null,
        slot: state.slot,
      };
    } catch (error) {
      return { error: describe(error) };
    }
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    this.deps.log?.(level, message);
  }
}

/** What the stream reports as dev.rookery.wal.streamed (the data of the event). */
export interface WalStreamReport {
  tier: TierName;
  applicationName: string;
  inSync: boolean;
  syncState: string | null;
  flushLsn: string | null;
  currentLsn: string | null;
  lagBytes: number | null;
  at: string;
  validForSeconds: number;
}

/**
 * The stream's confirmed flush position as RPO evidence: in sync while the primary lists us in
 * synchronous_standby_names and pg_stat_replication says 'sync' (a commit returns only once its
 * WAL is flushed on the spool disk, so nothing acknowledged is at risk); the lag in bytes between
 * the primary's current LSN and our confirmed flush LSN.
 */
export function walStreamReport(status: WalStreamStatus, options: { at: Date; validForSeconds: number }): WalStreamReport {
  const primary = 'error' in status.primary ? null : status.primary;
  const lag = primary?.flushLsn && primary.currentLsn ? parseLsn(primary.currentLsn) - parseLsn(primary.flushLsn) : null;
  return {
    tier: status.tier,
    applicationName: status.applicationName,
    inSync: primary !== null && primary.registered && primary.syncState === 'sync',
    syncState: primary?.syncState ?? null,
    flushLsn: primary?.flushLsn ?? null,
    currentLsn: primary?.currentLsn ?? null,
    lagBytes: lag === null ? null : Number(lag > 0n ? lag : 0n),
    at: options.at.toISOString(),
    validForSeconds: options.validForSeconds,
  };
}

function exitReason(exit: ReceivewalExit): string {
  if (exit.error) return exit.error.message;
  const line = exit.stderrTail.trim().split('\n').at(-1);
  return `exit code ${exit.exitCode ?? 'signal'}${line ? `: ${line}` : ''}`;
}

/** The exit, or — once stopping and pg_receivewal ignores the signal — a synthetic one after `ms`. */
function withStopDeadline(exited: Promise<ReceivewalExit>, signal: AbortSignal, ms: number): Promise<ReceivewalExit> {
  const deadline = new Promise<ReceivewalExit>((resolve) => {
    signal.addEventListener(
      'abort',
      () =>
        setTimeout(
          () => resolve({ exitCode: null, stderrTail: '', error: new Error(`pg_receivewal did not exit within ${ms} ms`) }),
          ms,
        ).unref(),
      { once: true },
    );
  });
  return Promise.race([exited, deadline]);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && /^[A-Z_]+$/.test(code) ? `${code}: ${message}` : message;
}
