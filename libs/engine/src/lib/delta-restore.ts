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
import { PassThrough } from 'node:stream';
import { BackupManifest, RestoreTargetError } from '@rookery/core';
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
  const sink = new PassThrough({ highWaterMark: SINK_BUFFER });
  // The failure is `done`'s to report; a writer that already finished is not listening any more.
  sink.on('error', () => undefined);
  const applier = new DeltaApplier(directory, options);
  const done = (async () => {
    if (options.rename) await withdrawControlFile(directory, options.rename.from);
    const reader = new ExactReader(sink, options.label ?? 'the tar');
    for await (const member of readTarMembers(reader)) await applier.apply(member, reader);
    // What follows the end-of-archive blocks (a record's padding) is read, so the writer finishes.
    while (!(await reader.atEnd())) await reader.readSome(SINK_BUFFER);
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
  private readonly keep: readonly string[];

  constructor(
    private readonly directory: string,
    private readonly options: DeltaApplyOptions,
  ) {
    this.keep = options.keep ?? [];
  }

  async apply(member: TarMember, reader: ExactReader): Promise<void> {
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
      written = await this.writeDiffering(target, found, member, reader, isPagedPath(member.path));
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

  private async writeWhole(target: string, member: TarMember, reader: ExactReader): Promise<void> {
    const handle = await open(target, 'w', 0o600);
    try {
      let offset = 0;
      for await (const piece of reader.pieces(member.size, `the content of '${member.path}'`)) {
        await writeFully(handle, piece, offset);
        offset += piece.length;
      }
      this.counts.bytesWritten += member.size;
      if (isPagedPath(member.path)) this.counts.pagesRewritten += Math.ceil(member.size / PAGE_SIZE);
    } finally {
      await handle.close();
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

async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
