import { lstat } from 'node:fs/promises';
import { Readable, Writable } from 'node:stream';
import { rootCauseOf } from '@rookery/core';
import { ProcessRunner } from '@rookery/postgres';
import { DirectTarSplitter, ReleasingWriter } from '@rookery/pipeline';

export interface TarExtractionOptions {
  /** Hears each member tar extracts (path relative to the directory, after the rename) as tar starts it. */
  onMember?: (member: string) => void;
  /** Names the archive in errors. */
  label?: string;
  /** Given when running as root: the account tar runs as, and the owner of what the splitter writes. */
  owner?: { uid: number; gid: number } | null;
  /**
   * The big regular files are written by this process with O_DIRECT (DirectTarSplitter) instead
   * of by tar through the page cache (config `restore.directWrites`, default true). Off, GNU tar
   * extracts everything itself: the plain path.
   */
  directWrites: boolean;
  /** Regular files from this size take the direct path (the splitter's default: 1 MiB). */
  directMinBytes?: number;
  /** Run tar as this OS account (root runs it as postgres, so files get the right owner). */
  tarUser?: 'postgres';
}

export interface TarExtraction {
  /** Where the caller writes the tar stream. */
  sink: Writable;
  /** Settles when tar exited and every direct write landed (rejects with the first failure). */
  done: Promise<void>;
  /** Stops tar and the splitter; `done` settles once nothing writes into the directory any more. */
  abort(): void;
  /** Files and bytes the fast path wrote itself, and how many of those bytes went with O_DIRECT (zeros without it). */
  stats(): { files: number; bytes: number; directBytes: number };
}

/**
 * Extracts a tar stream into `directory` with GNU tar, renaming the member `rename.from` to
 * `rename.to` (a base backup's pg_control goes under its pending name); with `directWrites`, the
 * big files bypass tar (DirectTarSplitter says why).
 */
export function startTarExtraction(
  runner: ProcessRunner,
  directory: string,
  rename: { from: string; to: string },
  options: TarExtractionOptions,
): TarExtraction {
  // Written straight into tar's stdin (the splitter queues copies for it).
  const stdin = new ReleasingWriter();
  const controller = new AbortController();
  const onMember = options.onMember;
  const tar = runner.spawn(
    'tar',
    [
      '--extract',
      // One line per member as tar starts it (flushed per line), named as written to disk.
      ...(onMember ? ['--verbose', '--show-transformed-names'] : []),
      '--file=-',
      // 1 MiB records, reassembled from short pipe reads: tar then reads and writes in 1 MiB
      // calls instead of 10 KiB ones, half the CPU (BENCHMARKS.md). Tar acts
      // on a member only once its whole record is in: nothing may wait for tar but its input.
      '--blocking-factor=2048',
      '--read-full-records',
      `--directory=${directory}`,
      '--no-same-owner',
      `--transform=s,^\\(\\./\\)\\?${escapeSed(rename.from)}$,${rename.to},`,
    ],
    { stdin, signal: controller.signal, ...(options.tarUser ? { user: options.tarUser } : {}) },
  );
  if (onMember) eachLine(tar.stdout, onMember);
  else tar.stdout.resume();
  const splitter = options.directWrites
    ? new DirectTarSplitter({
        directory,
        label: options.label ?? 'base.tar',
        tar: stdin,
        owner: options.owner ?? null,
        rename,
        directMinBytes: options.directMinBytes,
        ...(options.tarUser
          ? { makeDirectory: (path: string, mode: number) => makeDirectoryAs(runner, options.tarUser as 'postgres', path, mode) }
          : {}),
      })
    : null;
  const sink: Writable = splitter ?? stdin;
  // Settles once both did: after a failure nothing is still writing into the directory. The
  // failure that explains the other is reported: tar's ENOSPC, not the splitter's broken pipe.
  const done = Promise.allSettled([splitter?.done, tar.result]).then((outcomes) => {
    const failures = outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    if (failures.length > 0) throw rootCauseOf(failures);
  });
  done.catch(() => undefined);
  const abort = () => {
    // An abort, not a failure of its own: the caller's reason is what it reports.
    const reason = new DOMException('extraction aborted', 'AbortError');
    sink.destroy(reason);
    controller.abort(reason);
  };
  return { sink, done, abort, stats: () => ({ ...(splitter?.stats ?? { files: 0, bytes: 0, directBytes: 0 }) }) };
}

/**
 * Creates a directory as `user` with exactly `mode` (mkdir -m ignores the umask): tar, running as
 * that account, can use it from the moment it exists. False when the path already exists.
 */
async function makeDirectoryAs(runner: ProcessRunner, user: 'postgres', path: string, mode: number): Promise<boolean> {
  try {
    await runner.run('mkdir', ['-m', mode.toString(8), '--', path], { user });
    return true;
  } catch (error) {
    if (
      await lstat(path).then(
        () => true,
        () => false,
      )
    )
      return false;
    throw error;
  }
}

/** Calls `onLine` with each complete line of `stream` (without its newline). */
function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    const lines = (rest + text).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line) onLine(line);
  });
  stream.on('error', () => undefined);
}

function escapeSed(path: string): string {
  return path.replace(/[.[\]*^$\\,]/g, (character) => `\\${character}`);
}
