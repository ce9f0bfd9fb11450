import { createHash, randomBytes } from 'node:crypto';
import { BigIntStats, constants } from 'node:fs';
import { FileHandle, lutimes, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// Only node built-ins here: the wal-push fast path loads this file before anything else.

/**
 * Which file a record speaks of, without reading it: device, inode, size, and the modification
 * and change times in nanoseconds. PostgreSQL writes a segment completely, fsyncs it and only then
 * creates its `.ready` file; it never writes that file again until it has been archived (`.done`)
 * and recycled under another name. Any write changes the change time (the kernel sets ctime, no
 * utimes call can), any replacement the inode or the times. So a file with the recorded identity
 * still holds the content that was hashed when the record was made.
 */
export interface WalFileIdentity {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/** `<name>.ok`: this content of the file is durable in this store. */
export interface WalAcknowledgement {
  sha256: string;
  /** The primary store URL the file went to (store URLs carry no secrets). */
  store: string;
  identity: WalFileIdentity;
  at: string;
}

/** `<name>.error`: the background archiver's push of this file failed; the next wal-push for it reports it. */
export interface WalPushFailure {
  message: string;
  /** rookery error code (WAL_CONFLICT, …) when known. */
  code: string | null;
  at: string;
}

const LOCK_FILE = 'archiver.pid';
/** The archiver touches its lock this often; a lock not touched for LOCK_STALE_MS is abandoned. */
export const ARCHIVER_HEARTBEAT_MS = 2_000;
const LOCK_STALE_MS = 15_000;

/**
 * The spool of asynchronous archiving (wal.archiveAsync), one directory per spool path and tier:
 * acknowledgements and failure records written by the background archiver for wal-push, and the
 * archiver's lock (its pid, touched as a heartbeat). An acknowledgement is written only after the
 * store confirmed the write; losing one costs a duplicate push (which succeeds as already
 * archived), never a lost segment, so records need no fsync. Records are replaced atomically.
 */
export class WalSpool {
  constructor(readonly directory: string) {}

  static forTier(spoolPath: string, tier: string): WalSpool {
    return new WalSpool(join(spoolPath, tier));
  }

  async prepare(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
  }

  /**
   * The record's first line is what bin/rookery-wal-push (a shell script, no node start) compares
   * with `stat` of the file: `id <store> <identityKey>`; the second is the record as JSON.
   */
  acknowledge(name: string, acknowledgement: WalAcknowledgement): Promise<void> {
    return this.writeRecord(`${name}.ok`, acknowledgement, `id ${acknowledgement.store} ${identityKey(acknowledgement.identity)}\n`);
  }

  acknowledgement(name: string): Promise<WalAcknowledgement | null> {
    return this.readRecord<WalAcknowledgement>(`${name}.ok`);
  }

  fail(name: string, failure: WalPushFailure): Promise<void> {
    return this.writeRecord(`${name}.error`, failure);
  }

  failure(name: string): Promise<WalPushFailure | null> {
    return this.readRecord<WalPushFailure>(`${name}.error`);
  }

  async forget(name: string, which: 'ok' | 'error' | 'both' = 'both'): Promise<void> {
    if (which !== 'error') await rm(this.path(`${name}.ok`), { force: true });
    if (which !== 'ok') await rm(this.path(`${name}.error`), { force: true });
  }

  /** Names with an acknowledgement or a failure record. */
  async recorded(): Promise<{ acknowledged: Set<string>; failed: Set<string> }> {
    const acknowledged = new Set<string>();
    const failed = new Set<string>();
    let entries: string[] = [];
    try {
      entries = await readdir(this.directory);
    } catch {
      // No spool yet: nothing recorded.
    }
    for (const entry of entries) {
      if (entry.endsWith('.ok')) acknowledged.add(entry.slice(0, -3));
      else if (entry.endsWith('.error')) failed.add(entry.slice(0, -6));
    }
    return { acknowledged, failed };
  }

  /**
   * Takes the archiver lock for `pid`: false when a live archiver holds it. A lock whose process
   * is gone, or whose heartbeat stopped, is taken over (a killed archiver never blocks archiving).
   * `create: false` (the prefetcher): a spool that is gone stays gone (its directory was removed
   * with the data directory it sits in), and the lock is refused. A lock already naming `pid` is
   * its own (taken for it by the process that started it). `owner`: the lock file is given to
   * that account.
   */
  async acquireArchiverLock(pid: number, options: { create?: boolean; owner?: SpoolOwner | null } = {}): Promise<boolean> {
    if (options.create ?? true) await this.prepare();
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.path(LOCK_FILE), 'wx', 0o600);
        try {
          // Given (a root process holding the lock of a spool of the server's account): the
          // account's wal-get reads the lock to see that a prefetcher runs.
          if (options.owner) await handle.chown(options.owner.uid, options.owner.gid);
          await handle.writeFile(`${pid}\n`);
        } finally {
          await handle.close();
        }
        return true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && options.create === false) return false;
        if (code !== 'EEXIST') throw error;
      }
      if ((await this.lockOwner()) === pid) return true;
      if ((await this.archiverPid()) !== null) return false;
      // Abandoned: move it aside (atomic) rather than delete, so two takers cannot both win.
      const aside = this.path(`.${LOCK_FILE}.${randomBytes(4).toString('hex')}.stale`);
      await rename(this.path(LOCK_FILE), aside).catch(() => undefined);
      await rm(aside, { force: true });
    }
    return false;
  }

  /** Keeps the lock fresh; false when the lock is no longer this process's (taken over). */
  async heartbeat(pid: number): Promise<boolean> {
    if ((await this.lockOwner()) !== pid) return false;
    const now = new Date();
    // lutimes: a link put in the lock's place is not followed.
    await lutimes(this.path(LOCK_FILE), now, now).catch(() => undefined);
    return true;
  }

  async releaseArchiverLock(pid: number): Promise<void> {
    if ((await this.lockOwner()) === pid) await rm(this.path(LOCK_FILE), { force: true });
  }

  /** The pid of the live archiver of this spool, or null (none, dead, or silent too long). */
  async archiverPid(): Promise<number | null> {
    let pid: number | null;
    let touched: number;
    try {
      pid = await this.lockOwner();
      touched = (await stat(this.path(LOCK_FILE))).mtimeMs;
    } catch {
      return null;
    }
    if (pid === null || Date.now() - touched > LOCK_STALE_MS) return null;
    try {
      process.kill(pid, 0);
      return pid;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM' ? pid : null;
    }
  }

  logPath(): string {
    return this.path('archiver.log');
  }

  private async lockOwner(): Promise<number | null> {
    try {
      const pid = Number.parseInt((await readRegularFile(this.path(LOCK_FILE))).text, 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  private async writeRecord(file: string, record: object, header = ''): Promise<void> {
    await this.prepare();
    const temporary = this.path(`.${file}.${randomBytes(4).toString('hex')}.tmp`);
    await writeFile(temporary, `${header}${JSON.stringify(record)}\n`, { mode: 0o600 });
    await rename(temporary, this.path(file));
  }

  private async readRecord<T>(file: string): Promise<T | null> {
    try {
      const lines = (await readFile(this.path(file), 'utf8')).trim().split('\n');
      return JSON.parse(lines[lines.length - 1]) as T;
    } catch {
      // Absent, or torn by a crash: no record (a missing acknowledgement only costs a re-push).
      return null;
    }
  }

  private path(file: string): string {
    return join(this.directory, file);
  }
}

export async function fileIdentity(path: string): Promise<WalFileIdentity> {
  return identityOf(await stat(path, { bigint: true }));
}

export function identityOf(stats: BigIntStats): WalFileIdentity {
  return {
    dev: String(stats.dev),
    ino: String(stats.ino),
    size: String(stats.size),
    mtimeNs: String(stats.mtimeNs),
    ctimeNs: String(stats.ctimeNs),
  };
}

/**
 * The identity as GNU `stat -c '%d:%i:%s:%.9Y:%.9Z'` prints it (device, inode, size, mtime and
 * ctime with nanoseconds), so the shell fast path can compare without node.
 */
export function identityKey(identity: WalFileIdentity): string {
  return [identity.dev, identity.ino, identity.size, secondsWithNanos(identity.mtimeNs), secondsWithNanos(identity.ctimeNs)].join(':');
}

export function secondsWithNanos(nanoseconds: string): string {
  const value = BigInt(nanoseconds);
  return `${value / 1_000_000_000n}.${String(value % 1_000_000_000n).padStart(9, '0')}`;
}

export function sameIdentity(a: WalFileIdentity, b: WalFileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export async function sha256OfFile(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** A pause that ends early when wake() is called (a watched directory changed). */
export class Napper {
  private wakeUp: (() => void) | null = null;

  readonly wake = (): void => this.wakeUp?.();

  nap(ms: number): Promise<void> {
    return new Promise<void>((done) => {
      const finish = () => {
        clearTimeout(timer);
        this.wakeUp = null;
        done();
      };
      const timer = setTimeout(finish, ms);
      this.wakeUp = finish;
    });
  }
}

/**
 * A small regular file's text and identity, read through one descriptor opened without following
 * a symbolic link and without waiting on a FIFO: what a process reads from a directory another
 * account can write (root's prefetcher in the server's spool). Anything else is refused (thrown).
 */
export async function readRegularFile(path: string): Promise<{ text: string; dev: number; ino: number }> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error(`${path} is not a regular file`);
    return { text: await handle.readFile('utf8'), dev: info.dev, ino: info.ino };
  } finally {
    await handle.close();
  }
}

/**
 * The account a spool belongs to, given when the process writing into it is another (root
 * running the prefetcher for the server's account): bin/rookery-wal-get serves only files of its
 * own account, so each file is given to it before it is renamed to a name the script reads. That
 * account can write in the spool: nothing there is written or given away through a symbolic link
 * it could have put in place (createExclusive), and a prefetcher reaches the spool's files through
 * the directory it opened (wal-prefetch's SpoolDirectory), never through the path again.
 */
export interface SpoolOwner {
  uid: number;
  gid: number;
}

/**
 * A new file at `path` (a predictable temporary name, in a directory another account may write),
 * mode 0600, open for writing: a leftover is removed, then the file is created only where nothing
 * is (O_EXCL, O_NOFOLLOW: never through a symbolic link) and given to `owner` through its
 * descriptor when set. A failure leaves nothing behind.
 */
export async function createExclusive(path: string, owner?: SpoolOwner | null): Promise<FileHandle> {
  await rm(path, { force: true });
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
  const handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    if (owner) await handle.chown(owner.uid, owner.gid);
    return handle;
  } catch (error) {
    await handle.close();
    await rm(path, { force: true });
    throw error;
  }
}
