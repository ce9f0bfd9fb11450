import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { ProcessRunner } from './process.runner';

export interface VerifybackupResult {
  ok: boolean;
  /** pg_verifybackup's error lines ('"base/1/1259" has size 0 on disk but size 8192 in the manifest'), prefix removed. */
  problems: string[];
}

/** The argv of `pg_verifybackup` over an extracted base backup whose WAL is in its pg_wal/. */
export function verifybackupArgs(directory: string, options: { parseWal?: boolean; ignore?: string[] } = {}): string[] {
  return [
    ...(options.parseWal === false ? ['--no-parse-wal'] : []),
    ...(options.ignore ?? []).map((path) => `--ignore=${path}`),
    directory,
  ];
}

/** pg_verifybackup's stderr lines, without the program prefix and without its hints. */
export function parseVerifybackupStderr(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/^(pg_verifybackup: )?hint:/i.test(line))
    .map((line) => line.replace(/^pg_verifybackup: (error: )?/, ''));
}

/**
 * pg_verifybackup: checks an extracted base backup against the backup_manifest pg_basebackup
 * embedded in it (every file present, no extra file, sizes and CRC32C checksums) and, unless told
 * not to, parses with pg_waldump the WAL from the backup's start to its end LSN, which is what
 * makes the copy consistent.
 */
export class PgVerifybackupDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  /** Verifies `directory`; a failed verification is a result, a tool that cannot run an error. */
  /** `ignore`: paths (relative to `directory`) pg_verifybackup leaves out, files or directories. */
  async verify(
    directory: string,
    options: { parseWal?: boolean; ignore?: string[]; signal?: AbortSignal } = {},
  ): Promise<VerifybackupResult> {
    try {
      await this.runner.run(this.binaries.path('pg_verifybackup'), verifybackupArgs(directory, options), {
        env: { LC_MESSAGES: 'C' },
        signal: options.signal,
      });
      return { ok: true, problems: [] };
    } catch (error) {
      if (!(error instanceof ToolFailedError) || error.exitCode === null) throw error;
      const problems = parseVerifybackupStderr(error.stderrTail);
      return { ok: false, problems: problems.length ? problems : [error.message] };
    }
  }
}
