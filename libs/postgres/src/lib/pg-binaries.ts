import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@rookery/core';
import { ProcessRunner } from './process.runner';

/** The PostgreSQL client and server programs rookery runs. */
export type PgTool =
  | 'initdb'
  | 'pg_basebackup'
  | 'pg_config'
  | 'pg_controldata'
  | 'pg_ctl'
  | 'pg_dump'
  | 'pg_isready'
  | 'pg_receivewal'
  | 'pg_restore'
  | 'pg_verifybackup'
  | 'pg_waldump'
  | 'postgres'
  | 'psql';

/** Debian's location for PostgreSQL 15, the version this platform is built against. */
export const DEFAULT_PG_BIN_DIR = '/usr/lib/postgresql/15/bin';

export interface PgBinariesOptions {
  /** Explicit bin directory (config `postgres.binDir`); wins over every lookup. */
  binDir?: string;
  /** Runs `pg_config --bindir` when no bin directory is given. */
  runner?: ProcessRunner;
  /**
   * The program an explicit directory must hold (default pg_basebackup). A scratch cluster needs
   * the server programs only: a server-only build (another major's, for tests) has no client tools.
   */
  requiredTool?: PgTool;
}

/**
 * Where the PostgreSQL programs are, and the path of each one. Without an explicit directory the
 * lookup (`pg_config --bindir`, slow through Debian's wrapper script: BENCHMARKS.md) runs when a
 * program's path is first asked for: a backup the server compresses over the
 * replication protocol, and `rookery info`, never run one.
 */
export class PgBinaries {
  private located: string | undefined;

  private constructor(private readonly locate: () => string) {}

  /**
   * The explicit directory if given (checked now), else what `pg_config --bindir` (on the runner's
   * PATH) says, else DEFAULT_PG_BIN_DIR, looked up on first use. ConfigError when the chosen
   * directory has no pg_basebackup: from here for an explicit directory, from the first path()
   * otherwise.
   */
  static async resolve(options: PgBinariesOptions = {}): Promise<PgBinaries> {
    const { binDir, runner } = options;
    if (binDir) {
      const checked = PgBinaries.checked(binDir, 'the configured postgres.binDir', options.requiredTool);
      return new PgBinaries(() => checked);
    }
    return new PgBinaries(() => {
      const fromPgConfig = runner ? pgConfigBinDir(runner) : undefined;
      if (fromPgConfig) return PgBinaries.checked(fromPgConfig, "'pg_config --bindir'");
      return PgBinaries.checked(DEFAULT_PG_BIN_DIR, 'the default PostgreSQL 15 location');
    });
  }

  /** The directory of the PostgreSQL programs (looked up on first use). */
  get binDir(): string {
    this.located ??= this.locate();
    return this.located;
  }

  /** The absolute path of a tool; ConfigError when it is not an executable file. */
  path(tool: PgTool): string {
    return executable(this.binDir, tool);
  }

  private static checked(binDir: string, origin: string, tool: PgTool = 'pg_basebackup'): string {
    try {
      executable(binDir, tool);
    } catch (error) {
      throw new ConfigError(`no PostgreSQL programs in ${binDir} (from ${origin})`, [], {
        cause: error,
        hint: 'set postgres.binDir to the bin directory of a PostgreSQL 15 installation',
      });
    }
    return binDir;
  }
}

function executable(binDir: string, tool: PgTool): string {
  const path = join(binDir, tool);
  try {
    accessSync(path, constants.X_OK);
  } catch (error) {
    throw new ConfigError(`postgresql program '${tool}' not found in ${binDir}`, [], {
      cause: error,
      hint: 'set postgres.binDir to the bin directory of a PostgreSQL 15 installation',
    });
  }
  return path;
}

/** No pg_config on PATH is normal on servers with only client packages: the caller uses the default. */
function pgConfigBinDir(runner: ProcessRunner): string | undefined {
  return runner.runSync('pg_config', ['--bindir'])?.trim() || undefined;
}
