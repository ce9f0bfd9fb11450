import { Stats } from 'node:fs';
import {
  FileHandle,
  chmod,
  chown,
  lchown,
  lstat,
  mkdir,
  open,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  utimes,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { BackupManifest, IntegrityError, InvariantError, RestoreTargetError } from '@rookery/core';
import { ChunkReleaseListener, ChunkReleasingSink } from '@rookery/pipeline';
import { ExactReader } from './block-incremental/exact-reader';
import { PAGE_SIZE, isPagedPath } from './block-incremental/page-layout';
import { TarMember, readTarMembers } from './block-incremental/tar-members';
import type { TarExtraction } from './tar-extraction.factory';

/**
 * Delta restore (`restore --delta --to DIR`): a tar of the backup (the data directory's, or a
 * tablespace's) is applied to a directory that already holds a copy of the same database system
 * (a broken replica, a copy to roll back), writing only what differs. The result is the directory
 * a fresh extraction of the same tar gives (paths, types, sizes, bytes, modes, owners, symlink
 * targets, file mtimes); the caller then finishes the restore as for a fresh one (tablespace
 * links, settings, recovery, sync, pg_control).
 */

export interface DeltaApplyOptions {
  /**
   * The member `from` lands as `to` (a base backup's global/pg_control under its pending name).
   * The file at `from` on disk is withdrawn (withdrawControlFile) before anything else is written.
   */
  rename?: { from: string; to: string };
  /** Given when running as root: the owner of every entry, as GNU tar running as that account gives. */
  owner?: { uid: number; gid: number } | null;
  /**
   * Paths (relative, '/'-separated) that are not the tar's and that the restore wrote itself
   * (backup_manifest from a server-compressed backup): they, what is under them and the
   * directories above them are never removed.
   */
  keep?: readonly string[];
  /** Names the archive in errors. */
  label?: string;
  /**
   * The fast path (default true; config `restore.deltaReadAhead`): the existing file is read
   * ahead in big windows, several reads in flight, while the tar's bytes are compared as they lie
   * in the stream's chunks, and the decoder's chunks go back to it once compared (ChunkRelease).
   * False: the plain path, one window read and then compared page by page, the tar's bytes taken
   * through a PassThrough. Both leave the same directory (delta-restore.spec.ts runs both).
   */
  readAhead?: boolean;
  /** Fast path: bytes per read of an existing file, a multiple of PAGE_SIZE (1 MiB; specs make it small to cross many windows). */
  readAheadWindow?: number;
  /**
   * Fast path: bytes of page writes started without waiting before they are waited for (8 MiB;
   * specs make it a few pages so the bound is reached within their small files).
   */
  pendingWriteBytes?: number;
}

/** What a delta apply did. */
export interface DeltaApplyCounts {
  /** Regular files found identical (size and every byte). */
  filesKept: number;
  /** Regular files that existed and had pages, bytes or a size that differed. */
  filesRewritten: number;
  /** Regular files that were absent (or another type of entry) and were written whole. */
  filesCreated: number;
  /** 8 KiB pages of relation files written because they differed (or the file was extended). */
  pagesRewritten: number;
  /** Symbolic links created or pointed elsewhere. */
  linksWritten: number;
  /** Entries the tar does not hold that were removed (a directory counts once, with what it held). */
  entriesRemoved: number;
  /** Bytes read from disk to compare with the tar's. */
  bytesCompared: number;
  /** Bytes written into files. */
  bytesWritten: number;
}

export interface DeltaApply extends TarExtraction {
  /** `files`/`bytes`: files and bytes written; `directBytes` 0 (no O_DIRECT here); and the counts. */
  stats(): { files: number; bytes: number; directBytes: number } & DeltaApplyCounts;
  /** What the apply did so far. */
  counts(): DeltaApplyCounts;
}

/** Suffix of the data directory's pg_control while a delta restore runs (see withdrawControlFile). */
export const WITHDRAWN_SUFFIX = '.rookery-withdrawn';

/** Pages compared per read from disk: one read of 512 KiB instead of 64 of 8 KiB. */
const WINDOW_PAGES = 64;
/** Bytes the sink buffers ahead of the apply. */
const SINK_BUFFER = 1 << 20;
/** Fast path: bytes of the existing file per read. */
const READ_AHEAD_WINDOW = 1 << 20;
/** Fast path: reads of the existing file in flight ahead of the comparison. */
const READ_AHEAD_DEPTH = 4;
/** Fast path: bytes of differing pages being written before the comparison waits for them. */
const PENDING_WRITE_BYTES = 8 << 20;

/**
 * Starts applying a tar stream to `directory`, which must exist (checkDeltaTarget): directories
 * (mode), symbolic links (target) and regular files are made equal to the tar's; a relation file
 * (isPagedPath) is compared page by page and only its differing pages are written, then it is cut
 * to its size; any other file is compared whole and rewritten from its first differing window, or
 * rewritten when its size differs. Once the archive ends, every entry of the directory the tar
 * does not hold is removed (stale WAL, which recovery would replay, postmaster.pid and .opts, a
 * pg_tblspc link, files of dropped relations), except `keep`.
 *
 * Memory: the sink's buffer, one window of pages read from disk, the page being compared, and the
 * set of the tar's paths (for the removal at the end). Durability is the caller's: the restore
 * syncs the file system of each directory afterwards (syncfs), as after a fresh extraction; only
 * the withdrawal of pg_control is made durable at once, before any other write.
 */
export function startDeltaApply(directory: string, options: DeltaApplyOptions = {}): DeltaApply {
  const readAhead = options.readAhead ?? true;
  // The fast path's sink hands on the writer's chunks themselves (a PassThrough read as an async
  // iterable concatenates what it buffered) and can give them back (ChunkReleasingSink).
  const channel = readAhead ? new ChunkChannel(SINK_BUFFER) : null;
  const sink = channel ?? new PassThrough({ highWaterMark: SINK_BUFFER });
  // The failure is `done`'s to report; a writer that already finished is not listening any more.
  sink.on('error', () => undefined);
  const readAheadWindow = options.readAheadWindow ?? READ_AHEAD_WINDOW;
  if (readAheadWindow <= 0 || readAheadWindow % PAGE_SIZE !== 0) {
    throw new InvariantError(`delta apply read-ahead window ${readAheadWindow} is not a positive multiple of ${PAGE_SIZE}`);
  }
  const applier = new DeltaApplier(directory, options, channel, readAheadWindow);
  const done = (async () => {
    if (options.rename) await withdrawControlFile(directory, options.rename.from);
    const reader = new ExactReader(channel ?? sink, options.label ?? 'the tar');
    for await (const member of readTarMembers(reader)) await applier.apply(member, reader);
    // What follows the end-of-archive blocks (a record's padding) is read, so the writer finishes.
    while (!(await reader.atEnd())) await reader.readSome(SINK_BUFFER);
    channel?.releaseThrough(reader.offset);
    await applier.removeUnlisted();
  })();
  done.catch((error: unknown) => {
    // The writer stops too: nothing reads what it would still send.
    if (!sink.destroyed) sink.destroy(error as Error);
  });
  const abort = () => {
    // An abort, not a failure of its own: the caller's reason is what it reports.
    if (!sink.destroyed) sink.destroy(new DOMException('delta apply aborted', 'AbortError'));
  };
  return {
    sink,
    done,
    abort,
    counts: () => ({ ...applier.counts }),
    stats: () => ({
      files: applier.counts.filesRewritten + applier.counts.filesCreated,
      bytes: applier.counts.bytesWritten,
      directBytes: 0,
      ...applier.counts,
    }),
  };
}

/**
 * Moves the data directory's pg_control aside (to `<file>.rookery-withdrawn`) and makes that
 * durable: from here until the restore puts the backup's pg_control in place, PostgreSQL refuses
 * to start on the directory, so a half-applied delta can never be started. Moved rather than
 * deleted: a delta restore that failed can be run again, and its target check reads the system
 * identifier there. The apply removes it with the other entries the tar does not hold.
 */
export async function withdrawControlFile(directory: string, controlFile = 'global/pg_control'): Promise<void> {
  const path = join(directory, controlFile);
  const withdrawn = await rename(path, `${path}${WITHDRAWN_SUFFIX}`).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      return false;
    },
  );
  if (withdrawn) await fsyncDirectory(dirname(path));
}

class DeltaApplier {
  readonly counts: DeltaApplyCounts = {
    filesKept: 0,
    filesRewritten: 0,
    filesCreated: 0,
    pagesRewritten: 0,
    linksWritten: 0,
    entriesRemoved: 0,
    bytesCompared: 0,
    bytesWritten: 0,
  };
  /** Every path the tar holds (after the rename) and every directory made on the way to one. */
  private readonly listed = new Set<string>();
  /** Directories known to be real directories (not a symlink or a file in the way). */
  private readonly directories = new Set<string>(['.']);
  private readonly window = Buffer.allocUnsafe(WINDOW_PAGES * PAGE_SIZE);
  /** Fast path: the read-ahead windows, reused from file to file. */
  private readonly readBuffers: Buffer[] = [];
  private readonly keep: readonly string[];

  private readonly readAhead: boolean;

  constructor(
    private readonly directory: string,
    private readonly options: DeltaApplyOptions,
    /** The fast path's sink (null: the plain path), told when the apply holds no byte before the reader's offset. */
    private readonly channel: ChunkChannel | null,
    private readonly readAheadWindow: number,
  ) {
    this.keep = options.keep ?? [];
    this.readAhead = channel !== null;
  }

  async apply(member: TarMember, reader: ExactReader): Promise<void> {
    // The previous member and this header are done with (its padding skipped, the header parsed).
    this.channel?.releaseThrough(reader.offset);
    const path = this.options.rename && member.path === this.options.rename.from ? this.options.rename.to : member.path;
    this.listed.add(path);
    // A parent replaced by a symlink in the drifted directory must not lead the writes elsewhere.
    await this.ensureDirectory(dirname(path));
    const target = join(this.directory, path);
    let found = await lstat(target).catch(absent);
    if (member.type === 'directory') {
      if (found && !found.isDirectory()) found = await remove(target);
      if (!found) await mkdir(target, { mode: member.mode });
      this.directories.add(path);
      await this.settle(target, found, member, false);
      return;
    }
    if (member.type === 'symlink') {
      if (found?.isSymbolicLink() && (await readlink(target)) === member.linkTarget) {
        await this.settleOwner(target, found, true);
        return;
      }
      if (found) await remove(target);
      await symlink(member.linkTarget, target);
      this.counts.linksWritten++;
      if (this.options.owner) await lchown(target, this.options.owner.uid, this.options.owner.gid);
      return;
    }
    if (found && !found.isFile()) found = await remove(target);
    let written: boolean;
    if (!found) {
      await this.writeWhole(target, member, reader);
      this.counts.filesCreated++;
      written = true;
    } else if (isPagedPath(member.path) || found.size === member.size) {
      written = this.readAhead
        ? await this.writeDifferingAhead(target, found, member, reader, isPagedPath(member.path))
        : await this.writeDiffering(target, found, member, reader, isPagedPath(member.path));
      if (written) this.counts.filesRewritten++;
      else this.counts.filesKept++;
    } else {
      await makeWritable(target, found);
      await this.writeWhole(target, member, reader);
      this.counts.filesRewritten++;
      written = true;
    }
    await this.settle(target, written ? null : found, member, true);
  }

  /**
   * Removes every entry not listed (nor kept), depth first from the top; symlinks are removed,
   * never followed (a pg_tblspc link leads to a tablespace's directory).
   */
  async removeUnlisted(): Promise<void> {
    const walk = async (relative: string): Promise<void> => {
      const entries = await readdir(relative ? join(this.directory, relative) : this.directory, { withFileTypes: true });
      for (const entry of entries) {
        const path = relative ? `${relative}/${entry.name}` : entry.name;
        if (this.keep.some((kept) => path === kept || path.startsWith(`${kept}/`))) continue;
        const aboveKept = this.keep.some((kept) => kept.startsWith(`${path}/`));
        if (!this.listed.has(path) && !aboveKept) {
          await rm(join(this.directory, path), { recursive: true, force: true });
          this.counts.entriesRemoved++;
        } else if (entry.isDirectory()) {
          await walk(path);
        }
      }
    };
    await walk('');
  }

  /** Makes `path` (relative, '.' for the top) a real directory, creating what is missing above it. */
  private async ensureDirectory(path: string): Promise<void> {
    if (this.directories.has(path)) return;
    await this.ensureDirectory(dirname(path));
    const target = join(this.directory, path);
    let found = await lstat(target).catch(absent);
    if (found && !found.isDirectory()) found = await remove(target);
    if (!found) {
      // A directory the tar names only through its members: as GNU tar makes it.
      await mkdir(target, { mode: 0o700 });
      if (this.options.owner) await chown(target, this.options.owner.uid, this.options.owner.gid);
    }
    this.listed.add(path);
    this.directories.add(path);
  }

  /**
   * Writes only what differs between the file on disk and the member: for a relation file each
   * differing page (pages past the end on disk are written, the file is cut to the member's
   * size); for another file of the same size everything from the first differing window on.
   */
  private async writeDiffering(target: string, found: Stats, member: TarMember, reader: ExactReader, paged: boolean): Promise<boolean> {
    await makeWritable(target, found);
    const handle = await open(target, 'r+');
    try {
      let differs = false;
      for (let offset = 0; offset < member.size; offset += this.window.length) {
        const length = Math.min(this.window.length, member.size - offset);
        // Once a whole file differs, the rest is written without reading it.
        const onDisk =
          differs && !paged ? 0 : await readFully(handle, this.window, Math.max(0, Math.min(length, found.size - offset)), offset);
        this.counts.bytesCompared += onDisk;
        for (let start = 0; start < length; start += PAGE_SIZE) {
          const pageLength = Math.min(PAGE_SIZE, length - start);
          const page = await reader.read(pageLength, `byte ${offset + start} of '${member.path}'`);
          if (start + pageLength <= onDisk && page.equals(this.window.subarray(start, start + pageLength))) continue;
          await writeFully(handle, page, offset + start);
          this.counts.bytesWritten += pageLength;
          if (paged) this.counts.pagesRewritten++;
          differs = true;
        }
      }
      if (found.size !== member.size) {
        await handle.truncate(member.size);
        differs = true;
      }
      return differs;
    } finally {
      await handle.close();
    }
  }

  /**
   * writeDiffering's fast path, with the same result: the file is read ahead (READ_AHEAD_DEPTH
   * windows in flight, so the disk works while the tar is decoded and compared), the tar's bytes
   * are compared as they lie in the stream's chunks (no copy, no wait per page), and differing
   * pages are copied out and written without waiting, the writes awaited before the file is cut
   * and closed. Only windows with a difference are compared page by page.
   */
  private async writeDifferingAhead(
    target: string,
    found: Stats,
    member: TarMember,
    reader: ExactReader,
    paged: boolean,
  ): Promise<boolean> {
    await makeWritable(target, found);
    const handle = await open(target, 'r+');
    const windowSize = this.readAheadWindow;
    const reads = new ReadAhead(handle, Math.min(found.size, member.size), windowSize, this.readBuffers);
    const writes = new PendingWrites(handle, this.options.pendingWriteBytes ?? PENDING_WRITE_BYTES);
    try {
      let differs = false;
      for (let offset = 0; offset < member.size; offset += windowSize) {
        const length = Math.min(windowSize, member.size - offset);
        const what = `byte ${offset} of '${member.path}'`;
        if (differs && !paged) {
          // Once a whole file differs, the rest is written without reading it.
          reads.stop();
          await this.writePieces(handle, reader, length, offset, what);
          this.counts.bytesWritten += length;
          continue;
        }
        const onDisk = await reads.next();
        this.counts.bytesCompared += onDisk.length;
        const pieces = await takePieces(reader, length, what);
        const pages = differingPages(pieces, onDisk, length);
        // Adjacent differing pages go out as one write (each write also updates the file's times).
        for (const run of adjacentRuns(pages)) {
          await writes.add(copyRange(pieces, run.start, run.end), offset + run.start);
          this.counts.bytesWritten += run.end - run.start;
        }
        if (paged) this.counts.pagesRewritten += pages.length;
        if (pages.length > 0) differs = true;
        // The window's pieces are not held any more: the differing pages were copied.
        this.channel?.releaseThrough(reader.offset);
      }
      await writes.settle();
      if (found.size !== member.size) {
        await handle.truncate(member.size);
        differs = true;
      }
      return differs;
    } finally {
      await Promise.all([reads.settle(), writes.settle().catch(() => undefined)]);
      await handle.close();
    }
  }

  private async writeWhole(target: string, member: TarMember, reader: ExactReader): Promise<void> {
    const handle = await open(target, 'w', 0o600);
    try {
      await this.writePieces(handle, reader, member.size, 0, `the content of '${member.path}'`);
      this.counts.bytesWritten += member.size;
      if (isPagedPath(member.path)) this.counts.pagesRewritten += Math.ceil(member.size / PAGE_SIZE);
    } finally {
      await handle.close();
    }
  }

  /** The next `length` bytes of the tar into the file at `position`, as the stream's chunks hold them. */
  private async writePieces(handle: FileHandle, reader: ExactReader, length: number, position: number, what: string): Promise<void> {
    let written = 0;
    while (written < length) {
      const pieces = await reader.readSome(length - written);
      if (pieces.length === 0) throw new IntegrityError(`${reader.label} ends early, in ${what}`);
      for (const piece of pieces) {
        await writeFully(handle, piece, position + written);
        written += piece.length;
      }
      // Only once every piece taken is written: the reader's offset is past all of them.
      this.channel?.releaseThrough(reader.offset);
    }
  }

  /** Mode, owner and (files) mtime as a fresh extraction gives them; `found` null: just written. */
  private async settle(target: string, found: Stats | null, member: TarMember, file: boolean): Promise<void> {
    if (!found || (found.mode & 0o7777) !== member.mode) await chmod(target, member.mode);
    await this.settleOwner(target, found, false);
    if (file && (!found || Math.floor(found.mtimeMs / 1000) !== member.mtime || found.mtimeMs % 1000 !== 0)) {
      await utimes(target, member.mtime, member.mtime);
    }
  }

  private async settleOwner(target: string, found: Stats | null, link: boolean): Promise<void> {
    const owner = this.options.owner;
    if (!owner || (found && found.uid === owner.uid && found.gid === owner.gid)) return;
    await (link ? lchown : chown)(target, owner.uid, owner.gid);
  }
}

/**
 * Refuses a directory a delta restore must not write into, before anything is written: it must
 * hold a data directory (PG_VERSION, global/pg_control) of the backup's major version and database
 * system (the system identifier in pg_control, a little-endian uint64 at offset 0), and no server
 * may be running on it (postmaster.pid naming a live postgres process; a stale one is removed by
 * the apply). A directory a failed delta restore left (pg_control withdrawn, or the backup's held
 * back under its pending name) is recognised by those files.
 *
 * Tablespaces: each directory must be absent or empty (it is then filled, as by a fresh restore),
 * or hold only this major version's PG_<version>_<catversion> directories (a previous restore of
 * the same tablespace), which the apply makes equal to the backup's; anything else is refused, as
 * the apply would remove it.
 */
export async function checkDeltaTarget(
  directory: string,
  manifest: Pick<BackupManifest, 'id' | 'postgres'>,
  tablespaces: readonly { name: string; restoredTo: string }[] = [],
): Promise<void> {
  const found = await lstat(directory).catch(absent);
  if (!found?.isDirectory()) {
    throw new RestoreTargetError(
      `restore directory '${directory}' ${found ? 'is not a directory' : 'does not exist'}: --delta restores into an existing data directory`,
      {
        hint: 'restore without --delta into a new or empty directory',
      },
    );
  }
  const notDataDirectory = (what: string) =>
    new RestoreTargetError(`restore directory '${directory}' is not a PostgreSQL data directory: ${what}`, {
      hint: 'restore --delta rewrites a copy of the same database system; restore without --delta into a new or empty directory',
    });
  const version = (await readFile(join(directory, 'PG_VERSION'), 'utf8').catch(() => null))?.trim();
  if (!version) throw notDataDirectory('it has no PG_VERSION');
  const expectedVersion = majorVersionOf(manifest.postgres.versionNum);
  if (version !== expectedVersion) {
    throw new RestoreTargetError(
      `restore directory '${directory}' holds a PostgreSQL ${version} data directory; backup '${manifest.id}' is of PostgreSQL ${expectedVersion}`,
      { hint: 'restore without --delta into a new or empty directory' },
    );
  }
  const systemIdentifier = await readSystemIdentifier(directory);
  if (systemIdentifier === null) throw notDataDirectory('it has no global/pg_control');
  if (systemIdentifier !== manifest.postgres.systemIdentifier) {
    throw new RestoreTargetError(
      `restore directory '${directory}' belongs to database system ${systemIdentifier}; backup '${manifest.id}' is of database system ${manifest.postgres.systemIdentifier}`,
      { hint: 'restore --delta only rewrites a copy of the same database system; restore without --delta into a new or empty directory' },
    );
  }
  const pid = await runningPostmaster(directory);
  if (pid !== null) {
    throw new RestoreTargetError(
      `a server is running on '${directory}' (postmaster.pid names process ${pid}): refusing to restore into it`,
      {
        hint: `stop it first, e.g. pg_ctl stop -D ${directory}`,
      },
    );
  }
  for (const tablespace of tablespaces) await checkDeltaTablespace(tablespace, expectedVersion);
}

async function checkDeltaTablespace(tablespace: { name: string; restoredTo: string }, version: string): Promise<void> {
  const entries = await readdir(tablespace.restoredTo).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw new RestoreTargetError(
      `cannot use the directory of tablespace '${tablespace.name}' '${tablespace.restoredTo}': ${error.message}`,
      {
        cause: error,
      },
    );
  });
  const foreign = entries.find((entry) => !new RegExp(`^PG_${version.replace('.', '\\.')}_\\d+$`).test(entry));
  if (foreign !== undefined) {
    throw new RestoreTargetError(
      `the directory of tablespace '${tablespace.name}' '${tablespace.restoredTo}' holds '${foreign}', which is not this tablespace's PostgreSQL ${version} directory: a delta restore would remove it`,
      { hint: 'restore the tablespace elsewhere with --tablespace-map OLD=NEW, or empty that directory' },
    );
  }
}

/** The system identifier of the data directory's pg_control (or the withdrawn or pending one a failed delta restore left), or null. */
async function readSystemIdentifier(directory: string): Promise<string | null> {
  for (const name of ['global/pg_control', `global/pg_control${WITHDRAWN_SUFFIX}`, 'global/pg_control.rookery-pending']) {
    const handle = await open(join(directory, name), 'r').catch(absent);
    if (!handle) continue;
    try {
      const field = Buffer.alloc(8);
      if ((await handle.read(field, 0, 8, 0)).bytesRead === 8) return field.readBigUInt64LE(0).toString();
    } finally {
      await handle.close();
    }
  }
  return null;
}

/**
 * The PID postmaster.pid names if that process is alive and a postgres process, else null. Its
 * command line tells a postmaster from an unrelated process that reused the PID after a crash.
 */
async function runningPostmaster(directory: string): Promise<number | null> {
  const text = await readFile(join(directory, 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = Number(text?.split('\n')[0]?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (commandLine !== null && !/postgres|postmaster/.test(commandLine)) return null;
  return pid;
}

/** "15" for 150008, "9.6" for 90624: how PG_VERSION names a major version. */
function majorVersionOf(versionNum: number): string {
  return versionNum >= 100_000
    ? String(Math.floor(versionNum / 10_000))
    : `${Math.floor(versionNum / 10_000)}.${Math.floor(versionNum / 100) % 100}`;
}

function absent(error: NodeJS.ErrnoException): null {
  if (error.code === 'ENOENT') return null;
  throw error;
}

async function remove(path: string): Promise<null> {
  await rm(path, { recursive: true, force: true });
  return null;
}

/** Gives the owner read and write on a file the drifted directory made read-only (not needed as root). */
async function makeWritable(path: string, found: Stats): Promise<void> {
  if ((found.mode & 0o600) !== 0o600 && process.getuid?.() !== 0) await chmod(path, (found.mode & 0o7777) | 0o600);
}

async function readFully(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  let read = 0;
  while (read < length) {
    const { bytesRead } = await handle.read(buffer, read, length - read, position + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return read;
}

async function writeFully(handle: FileHandle, buffer: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, written, buffer.length - written, position + written);
    written += bytesWritten;
  }
}

/** Exactly `length` bytes of the stream, as the pieces its chunks hold them (views, not copies). */
async function takePieces(reader: ExactReader, length: number, what: string): Promise<Buffer[]> {
  const pieces: Buffer[] = [];
  let taken = 0;
  while (taken < length) {
    const some = await reader.readSome(length - taken);
    if (some.length === 0) throw new IntegrityError(`${reader.label} ends early, in ${what}`);
    for (const piece of some) {
      pieces.push(piece);
      taken += piece.length;
    }
  }
  return pieces;
}

/**
 * The pages (byte ranges of PAGE_SIZE, the last one shorter) of a window of `length` bytes, held
 * by `pieces` in order, that differ from `onDisk` or lie past its end. First one comparison per
 * piece: a window with no difference costs no more.
 */
function differingPages(pieces: readonly Buffer[], onDisk: Buffer, length: number): { start: number; end: number }[] {
  if (onDisk.length >= length) {
    let at = 0;
    let same = true;
    for (const piece of pieces) {
      if (piece.compare(onDisk, at, at + piece.length) !== 0) {
        same = false;
        break;
      }
      at += piece.length;
    }
    if (same) return [];
  }
  const differing: { start: number; end: number }[] = [];
  let index = 0;
  let pieceStart = 0;
  for (let start = 0; start < length; start += PAGE_SIZE) {
    const end = Math.min(start + PAGE_SIZE, length);
    while (pieceStart + pieces[index].length <= start) pieceStart += pieces[index++].length;
    let equal = end <= onDisk.length;
    // The page may span pieces: each part against the same bytes on disk.
    for (let at = start, next = index, nextStart = pieceStart; equal && at < end; next++) {
      const piece = pieces[next];
      const from = at - nextStart;
      const to = Math.min(piece.length, end - nextStart);
      if (piece.compare(onDisk, at, at + to - from, from, to) !== 0) equal = false;
      at += to - from;
      nextStart += piece.length;
    }
    if (!equal) differing.push({ start, end });
  }
  return differing;
}

/** Byte ranges in order, those that touch merged. */
function adjacentRuns(ranges: readonly { start: number; end: number }[]): { start: number; end: number }[] {
  const runs: { start: number; end: number }[] = [];
  for (const range of ranges) {
    const last = runs.at(-1);
    if (last && last.end === range.start) last.end = range.end;
    else runs.push({ ...range });
  }
  return runs;
}

/** Bytes [start, end) of the window `pieces` hold, copied (the pieces go back to the decoder). */
function copyRange(pieces: readonly Buffer[], start: number, end: number): Buffer {
  const copy = Buffer.allocUnsafe(end - start);
  let pieceStart = 0;
  for (const piece of pieces) {
    const pieceEnd = pieceStart + piece.length;
    if (pieceEnd > start && pieceStart < end) {
      const from = Math.max(start, pieceStart);
      piece.copy(copy, from - start, from - pieceStart, Math.min(end, pieceEnd) - pieceStart);
    }
    if (pieceEnd >= end) break;
    pieceStart = pieceEnd;
  }
  return copy;
}

/**
 * The windows of a file from its start up to `end`, read READ_AHEAD_DEPTH windows ahead of the
 * one compared. Past `end` a window is empty. settle() before the file is closed.
 */
class ReadAhead {
  private readonly queue: { buffer: Buffer; read: Promise<number> }[] = [];
  private position = 0;
  private current: Buffer | null = null;

  constructor(
    private readonly handle: FileHandle,
    private end: number,
    private readonly window: number,
    /** Buffers of `window` bytes to reuse. */
    private readonly pool: Buffer[],
  ) {
    this.fill();
  }

  /** The next window's bytes on disk (a view valid until the next call). */
  async next(): Promise<Buffer> {
    if (this.current) this.pool.push(this.current);
    this.current = null;
    const entry = this.queue.shift();
    this.fill();
    if (!entry) return EMPTY;
    this.current = entry.buffer;
    return entry.buffer.subarray(0, await entry.read);
  }

  /** No more reads are started. */
  stop(): void {
    this.end = Math.min(this.end, this.position);
  }

  async settle(): Promise<void> {
    this.stop();
    await Promise.allSettled(this.queue.map((entry) => entry.read));
    for (const entry of this.queue.splice(0)) this.pool.push(entry.buffer);
    if (this.current) this.pool.push(this.current);
    this.current = null;
  }

  private fill(): void {
    while (this.queue.length < READ_AHEAD_DEPTH && this.position < this.end) {
      const buffer = this.pool.pop() ?? Buffer.allocUnsafe(this.window);
      const read = readFully(this.handle, buffer, Math.min(this.window, this.end - this.position), this.position);
      // Heard by next() or settle(); a read nobody waits for any more must not go unhandled.
      read.catch(() => undefined);
      this.queue.push({ buffer, read });
      this.position += this.window;
    }
  }
}

/**
 * Writes started without waiting, `limit` bytes at most (PENDING_WRITE_BYTES: a file whose every
 * page differs must not pile its copies up in memory); settle() waits for all and reports the
 * first failure.
 */
class PendingWrites {
  private pending: Promise<void>[] = [];
  private bytes = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly limit: number,
  ) {}

  async add(buffer: Buffer, position: number): Promise<void> {
    const write = writeFully(this.handle, buffer, position);
    write.catch(() => undefined);
    this.pending.push(write);
    this.bytes += buffer.length;
    if (this.bytes >= this.limit) await this.settle();
  }

  async settle(): Promise<void> {
    const pending = this.pending;
    this.pending = [];
    this.bytes = 0;
    await Promise.all(pending);
  }
}

/**
 * The fast path's sink: a Writable whose chunks are read, as they were written, by one async
 * iteration (ExactReader), with SINK_BUFFER bytes buffered at most. It can hand a chunk back to
 * its producer (ChunkReleasingSink: the zstd decoder then decodes into its memory again instead
 * of fresh pages) once every byte of it was read and the reader holds none of it any more, which
 * the apply tells by releaseThrough(its reader's offset).
 */
class ChunkChannel extends Writable implements ChunkReleasingSink {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private resumeWriter: (() => void) | null = null;
  private wake: (() => void) | null = null;
  private ended = false;
  private failure: Error | null = null;
  private listener: ChunkReleaseListener | null = null;
  /** With a listener: the chunks handed to the reader and not released, with the stream offset of their ends. */
  private readonly lent: { chunk: Buffer; end: number }[] = [];
  private handedOut = 0;

  constructor(private readonly limit: number) {
    super({ highWaterMark: limit });
  }

  onRelease(listener: ChunkReleaseListener): void {
    this.listener = listener;
  }

  /** Hands back every chunk whose bytes all lie before `offset` (bytes the reader consumed and no longer holds). */
  releaseThrough(offset: number): void {
    while (this.lent.length > 0 && this.lent[0].end <= offset) this.listener?.((this.lent.shift() as { chunk: Buffer }).chunk);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.wakeReader();
    if (this.buffered < this.limit) callback();
    else this.resumeWriter = () => callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.ended = true;
    this.wakeReader();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // After _final a stream is destroyed without an error (autoDestroy): what it holds is still read.
    if (error || !this.ended) this.failure = error ?? new Error('the tar stream was closed before its end');
    this.wakeReader();
    callback(error);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.failure) throw this.failure;
      const chunk = this.chunks.shift();
      if (chunk) {
        this.buffered -= chunk.length;
        if (this.resumeWriter && this.buffered < this.limit) {
          const resume = this.resumeWriter;
          this.resumeWriter = null;
          resume();
        }
        this.handedOut += chunk.length;
        if (this.listener) this.lent.push({ chunk, end: this.handedOut });
        yield chunk;
      } else if (this.ended) {
        return;
      } else {
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    }
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

const EMPTY = Buffer.alloc(0);

async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
