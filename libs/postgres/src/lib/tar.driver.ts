import { lstat } from 'node:fs/promises';
import { ProcessRunner, SpawnOptions, SpawnedProcess } from './process.runner';

export interface TarExtractRequest {
  /** What tar reads: the archive as it streams. */
  stdin: SpawnOptions['stdin'];
  /** tar prints one line per member as it starts it (named as written to disk) on stdout. */
  listMembers?: boolean;
  signal?: AbortSignal;
  /** Run tar as this OS account (root runs it as postgres, so files get the right owner). */
  user?: 'postgres';
}

/**
 * GNU tar, as a restore extracts a base backup's tar: the argv (no shell) and the account it runs
 * as. What feeds it (the direct-write splitter, or the stream itself) is the caller's.
 */
export class TarDriver {
  constructor(private readonly runner: ProcessRunner) {}

  /**
   * Extracts the archive on stdin into `directory`, renaming the member `rename.from` to
   * `rename.to` (a base backup's pg_control goes under its pending name).
   */
  extract(directory: string, rename: { from: string; to: string }, request: TarExtractRequest): SpawnedProcess {
    return this.runner.spawn(
      'tar',
      [
        '--extract',
        // One line per member as tar starts it (flushed per line), named as written to disk.
        ...(request.listMembers ? ['--verbose', '--show-transformed-names'] : []),
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
      { stdin: request.stdin, signal: request.signal, ...(request.user ? { user: request.user } : {}) },
    );
  }

  /**
   * Creates a directory as `user` with exactly `mode` (mkdir -m ignores the umask): tar, running as
   * that account, can use it from the moment it exists. False when the path already exists.
   */
  async makeDirectoryAs(user: 'postgres', path: string, mode: number): Promise<boolean> {
    try {
      await this.runner.run('mkdir', ['-m', mode.toString(8), '--', path], { user });
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
}

function escapeSed(path: string): string {
  return path.replace(/[.[\]*^$\\,]/g, (character) => `\\${character}`);
}
