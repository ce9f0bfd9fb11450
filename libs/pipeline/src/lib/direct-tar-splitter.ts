import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { IntegrityError } from '@rookery/core';
import { DirectFileWriter, DirectWriteMemory } from './direct-file-writer';
import { ChunkReleaseListener, ChunkReleasingSink } from './releasing-writer';
import { TAR_BLOCK, TarHeader, parseTarHeader, tarMemberPath } from './tar-header';

/** Regular files from this size are written by the splitter itself, with O_DIRECT. */
const DEFAULT_DIRECT_MIN_BYTES = 1024 * 1024;
/** Bytes queued for tar before the splitter waits for it (a base backup's small files: ~25 MiB). */
const TAR_QUEUE_BYTES = 32 * 1024 * 1024;

export interface DirectTarSplitterOptions {
  /** The directory the tar is extracted into (by GNU tar, reading `tar`). */
  directory: string;
  /** Names the archive in errors. */
  label: string;
  /** GNU tar's stdin: every member but the big regular files, as a valid tar stream. */
  tar: Writable;
  /** Given when running as root: the owner of what the splitter creates (tar runs as that account). */
  owner: { uid: number; gid: number } | null;
  /** Regular files from this size bypass tar (default 1 MiB). */
  directMinBytes?: number;
  /** A member written under another name (as tar is told with --transform). */
  rename?: { from: string; to: string };
  /**
   * Creates one directory with exactly this mode as the account tar runs as (when root, tar runs
   * as postgres: a directory made by root and chowned afterwards would refuse tar's writes in
   * between). Resolves false when something already is at the path. Default: fs.mkdir, as this
   * process's account.
   */
  makeDirectory?: (path: string, mode: number) => Promise<boolean>;
}

/**
 * Sits in front of GNU tar during a restore and takes the big regular files out of its stream,
 * writing them itself with O_DIRECT (DirectFileWriter); tar gets every other member, byte for
 * byte, as a valid archive. A base backup's bytes are nearly all in a few relation files, and
 * written through the page cache they can cost the restore most of its time (page allocation in
 * the kernel when memory was recently freed, which O_DIRECT avoids; BENCHMARKS.md); tar keeps
 * the many small files and directories, creating them in its own process.
 *
 * Big files are only taken where that is safe: a plain path (no '..', not absolute), not under a
 * symbolic link the archive made, not right after an extended header (which would describe it to
 * tar), and only into directories the archive named before them (makeParent). Chunks are reported
 * released (onRelease) as soon as their bytes were copied: into staging memory, or into tar's queue.
 *
 * The splitter never waits for tar to do anything but read: tar reads 1 MiB records and acts on a
 * member only once it holds the record, so any wait for tar's progress (a directory tar has not
 * made yet) can be a wait for the very bytes the splitter holds back. It deadlocked exactly so on
 * ordinary clusters (a directory header, then less than a record of small members, then a big
 * file). Tar gets its bytes unconditionally; the differential spec (tar-extraction.spec.ts) runs
 * this path and tar alone on generated archives and demands identical trees.
 */
export class DirectTarSplitter extends Writable implements ChunkReleasingSink {
  /** Settles when the stream finished (resolves) or failed (rejects), with no direct write in flight. */
  readonly done: Promise<void>;
  /** Files and bytes written here instead of by tar, and how many of those bytes went with O_DIRECT. */
  readonly stats = { files: 0, bytes: 0, directBytes: 0 };

  private readonly header = Buffer.alloc(TAR_BLOCK);
  private headerFill = 0;
  private offset = 0;
  /** Data and padding of the current member still to come, and whether it goes to a file here. */
  private remaining = 0;
  private padding = 0;
  private file: DirectFileWriter | null = null;
  /** The previous header was an extended one (pax, GNU long name): its member goes to tar as it is. */
  private afterExtended = false;
  private readonly symlinks = new Set<string>();
  /** Directory members passed on to tar (with their mode), and the ones known to exist. */
  private readonly announced = new Map<string, number>();
  private readonly existing = new Set<string>(['']);
  private readonly memory = new DirectWriteMemory();
  private readonly finishing = new Set<Promise<void>>();
  private failure: Error | null = null;
  private listener: ChunkReleaseListener | null = null;

  constructor(private readonly options: DirectTarSplitterOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.done = new Promise<void>((resolve, reject) => {
      this.once('finish', () => resolve());
      this.once('close', () => {
        if (!this.writableFinished) reject(this.errored ?? new Error(`extraction of ${options.label} stopped before its end`));
      });
    });
    this.done.catch(() => undefined);
  }

  onRelease(listener: ChunkReleaseListener): void {
    this.listener = listener;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.consume(chunk).then(
      () => {
        // Its bytes were copied: for a big file into staging memory, for tar into its queue.
        this.listener?.(chunk);
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finishAll().then(
      () => this.options.tar.end(() => callback()),
      (error: Error) => callback(error),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.failure ??= error ?? new Error('extraction aborted');
    this.options.tar.destroy();
    const file = this.file;
    this.file = null;
    // Whatever is in flight lands (or fails) first: then nothing writes behind the caller's cleanup.
    void Promise.all([file?.abort(), this.settle()])
      .catch(() => undefined)
      .then(() => callback(error));
  }

  private async consume(chunk: Buffer): Promise<void> {
    let position = 0;
    while (position < chunk.length) {
      if (this.failure) throw this.failure;
      if (this.remaining > 0) {
        const length = Math.min(this.remaining, chunk.length - position);
        if (this.file) await this.file.append(chunk, position, length);
        else await this.forward(chunk, position, length);
        position += length;
        this.offset += length;
        this.remaining -= length;
        if (this.remaining === 0 && this.file) this.finishFile();
      } else if (this.padding > 0) {
        const length = Math.min(this.padding, chunk.length - position);
        if (!this.file) await this.forward(chunk, position, length);
        position += length;
        this.offset += length;
        this.padding -= length;
        if (this.padding === 0) this.file = null;
      } else {
        const length = Math.min(TAR_BLOCK - this.headerFill, chunk.length - position);
        chunk.copy(this.header, this.headerFill, position, position + length);
        this.headerFill += length;
        position += length;
        this.offset += length;
        if (this.headerFill === TAR_BLOCK) {
          this.headerFill = 0;
          await this.startMember();
        }
      }
    }
  }

  /** A whole header arrived: the member is written here or passed on to tar. */
  private async startMember(): Promise<void> {
    const header = parseTarHeader(this.header, this.options.label, this.offset - TAR_BLOCK);
    // A regular file with an odd path (absolute, '..') is left to tar, which refuses it with its
    // own message; a link or directory with one is refused here (tarMemberPath throws).
    const linkOrDirectory = header?.type === '2' || header?.type === '5';
    const path = header
      ? linkOrDirectory
        ? tarMemberPath(header.name, this.options.label)
        : safeMemberPath(header.name, this.options.label)
      : null;
    const direct = header !== null && path !== null && this.takesDirectly(header, path) && (await this.makeParent(header, path));
    if (path !== null && header?.type === '2') this.symlinks.add(path);
    if (path !== null && header?.type === '5') this.announced.set(path, header.mode & 0o7777);
    if (direct) {
      const member = path === this.options.rename?.from ? this.options.rename.to : path;
      this.file = DirectFileWriter.create(join(this.options.directory, member), {
        mode: header.mode & 0o777,
        mtime: header.mtime,
        owner: this.options.owner,
        memory: this.memory,
      });
      this.stats.files++;
      this.stats.bytes += header.size;
    } else {
      // A copy: the header buffer is reused for the next one.
      await this.passOn(Buffer.from(this.header));
    }
    this.afterExtended = header !== null && 'xgLK'.includes(header.type);
    this.remaining = header?.size ?? 0;
    this.padding = header ? (TAR_BLOCK - (header.size % TAR_BLOCK)) % TAR_BLOCK : 0;
    if (direct && header.size === 0) this.finishFile();
  }

  private takesDirectly(header: TarHeader, member: string): boolean {
    if (
      (header.type !== '0' && header.type !== '7') ||
      header.size < (this.options.directMinBytes ?? DEFAULT_DIRECT_MIN_BYTES) ||
      this.afterExtended
    ) {
      return false;
    }
    if (member === '') return false;
    for (let slash = member.indexOf('/'); slash !== -1; slash = member.indexOf('/', slash + 1)) {
      if (this.symlinks.has(member.slice(0, slash))) return false;
    }
    return !this.symlinks.has(member);
  }

  private finishFile(): void {
    const file = this.file as DirectFileWriter;
    // The padding that follows is skipped: the member is not in tar's stream at all.
    if (this.padding === 0) this.file = null;
    const finished = file.finish().then(
      () => {
        this.stats.directBytes += file.directBytes;
      },
      (error: Error) => {
        this.failure ??= error;
      },
    );
    this.finishing.add(finished);
    void finished.finally(() => this.finishing.delete(finished));
  }

  /**
   * Passes part of `chunk` on to tar, as a copy: tar creates its many small files at its own pace
   * while the big files behind them are already being written, and the
   * decoder gets its chunk back at once. Waits only once TAR_QUEUE_BYTES are queued for tar.
   */
  private async forward(chunk: Buffer, start: number, length: number): Promise<void> {
    await this.passOn(Buffer.from(chunk.subarray(start, start + length)));
  }

  private async passOn(bytes: Buffer): Promise<void> {
    const tar = this.options.tar;
    tar.write(bytes);
    if (tar.writableLength <= TAR_QUEUE_BYTES) return;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        tar.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        tar.off('drain', onDrain);
        reject(this.failure ?? new Error(`tar stopped reading ${this.options.label}`));
      };
      tar.once('drain', onDrain);
      tar.once('close', onClose);
    });
  }

  private async finishAll(): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.file || this.remaining > 0 || this.padding > 0 || this.headerFill > 0) {
      throw new IntegrityError(`${this.options.label} ends in the middle of a member (offset ${this.offset}): the archive is truncated`);
    }
    await this.settle();
    if (this.failure) throw this.failure;
  }

  private async settle(): Promise<void> {
    while (this.finishing.size > 0) await Promise.all([...this.finishing]);
  }

  /**
   * Makes sure the member's directory exists, creating it (and the directories above it) as the
   * archive described them, where tar has not yet: tar may be a whole record behind, and waiting
   * for it could be waiting for bytes held here. A directory is made here as tar's account
   * (makeDirectory: tar must be able to write into it and set its mode and times), with the
   * owner's rwx added; tar reaches its member later, finds it there, and sets the mode and times
   * the archive gives, as it does for any directory that exists (GNU tar's default). A member
   * whose directories the archive never named is left to tar, which creates missing parents its
   * own way.
   */
  private async makeParent(header: TarHeader, member: string): Promise<boolean> {
    const slash = member.lastIndexOf('/');
    const parent = slash === -1 ? '' : member.slice(0, slash);
    if (this.existing.has(parent)) return true;
    const chain: string[] = [];
    for (let path = parent; !this.existing.has(path); path = path.slice(0, Math.max(0, path.lastIndexOf('/')))) {
      if (!this.announced.has(path)) {
        // Not named by the archive: usable only if tar already made it (it makes missing parents).
        if (!(await isDirectory(join(this.options.directory, path)))) return false;
        this.existing.add(path);
        break;
      }
      chain.unshift(path);
    }
    for (const directory of chain) {
      const path = join(this.options.directory, directory);
      const mode = (this.announced.get(directory) ?? 0o700) | 0o700;
      const made = await (this.options.makeDirectory ?? makeOwnDirectory)(path, mode);
      if (!made && !(await isDirectory(path))) {
        // Tar made it first, as something else than the directory the archive named before.
        throw new IntegrityError(
          `tar member '${header.name}' of ${this.options.label} lies under '${directory}', which is not a directory`,
        );
      }
      this.existing.add(directory);
    }
    return true;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  return lstat(path).then(
    (info) => info.isDirectory(),
    () => false,
  );
}

/** Creates a directory as this process's account; false when the path exists. */
async function makeOwnDirectory(path: string, mode: number): Promise<boolean> {
  try {
    await mkdir(path, { mode });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** The member's path inside the directory, or null for one that would leave it (tarMemberPath). */
function safeMemberPath(name: string, label: string): string | null {
  try {
    return tarMemberPath(name, label);
  } catch {
    return null;
  }
}
