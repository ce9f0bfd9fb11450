import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { ProcessRunner } from './process.runner';

export interface WalRestorePoint {
  name: string;
  /** The LSN where the RESTORE_POINT record starts, as pg_waldump prints it ('0/03000028'). */
  lsn: string;
}

/**
 * pg_waldump over a directory of WAL segments of one timeline, reading only the XLOG resource
 * manager: restore points (pg_create_restore_point) are XLOG records, and PostgreSQL keeps no
 * index of them, so reading the WAL is the only way to learn where one is.
 */
export class PgWaldumpDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  /**
   * Every restore point between `startLsn` and `endLsn`. pg_waldump exits non-zero when it meets
   * the end of valid WAL before `endLsn` (a segment cut short, zeroes after the last record): the
   * records printed up to there are still right, so its status is not an error here.
   */
  async restorePoints(walDir: string, options: { timeline: number; startLsn: string; endLsn: string }): Promise<WalRestorePoint[]> {
    const args = [
      `--path=${walDir}`,
      `--timeline=${options.timeline}`,
      `--start=${options.startLsn}`,
      `--end=${options.endLsn}`,
      '--rmgr=XLOG',
    ];
    const child = this.runner.spawn(this.binaries.path('pg_waldump'), args, { env: { LC_MESSAGES: 'C' } });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stdout.on('error', () => undefined);
    await child.result.catch((error: unknown) => {
      if (!(error instanceof ToolFailedError)) throw error;
    });
    return parseRestorePoints(Buffer.concat(chunks).toString('utf8'));
  }
}

const RESTORE_POINT_LINE = /\blsn: ([0-9A-F]+\/[0-9A-F]+), prev [0-9A-F]+\/[0-9A-F]+, desc: RESTORE_POINT (.*)$/;

/** Restore points in pg_waldump output, in WAL order. */
export function parseRestorePoints(output: string): WalRestorePoint[] {
  const points: WalRestorePoint[] = [];
  for (const line of output.split('\n')) {
    const match = RESTORE_POINT_LINE.exec(line.trimEnd());
    if (match) points.push({ lsn: match[1], name: match[2] });
  }
  return points;
}
