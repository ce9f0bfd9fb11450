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
}

/** Where the PostgreSQL programs are, and the path of each one. */
export class PgBinaries {
  constructor(readonly binDir: string) {}

  /**
   * The explicit directory if given, else what `pg_config --bindir` (on the runner's PATH) says,
   * else DEFAULT_PG_BIN_DIR. Throws ConfigError when the chosen directory has no pg_basebackup.
   */
  static async resolve(options: PgBinariesOptions = {}): Promise<PgBinaries> {
    if (options.binDir) return PgBinaries.checked(options.binDir, 'the configured postgres.binDir');
    const fromPgConfig = options.runner ? await pgConfigBinDir(options.runner) : undefined;
    if (fromPgConfig) return PgBinaries.checked(fromPgConfig, "'pg_config --bindir'");
    return PgBinaries.checked(DEFAULT_PG_BIN_DIR, 'the default PostgreSQL 15 location');
  }

  /** The absolute path of a tool; ConfigError when it is not an executable file. */
  path(tool: PgTool): string {
    const path = join(this.binDir, tool);
    try {
      accessSync(path, constants.X_OK);
    } catch (error) {
      throw new ConfigError(`postgresql program '${tool}' not found in ${this.binDir}`, [], {
        cause: error,
        hint: 'set postgres.binDir to the bin directory of a PostgreSQL 15 installation',
      });
    }
    return path;
  }

  private static checked(binDir: string, origin: string): PgBinaries {
    const binaries = new PgBinaries(binDir);
    try {
      binaries.path('pg_basebackup');
    } catch (error) {
      throw new ConfigError(`no PostgreSQL programs in ${binDir} (from ${origin})`, [], {
        cause: error,
        hint: 'set postgres.binDir to the bin directory of a PostgreSQL 15 installation',
      });
    }
    return binaries;
  }
}

async function pgConfigBinDir(runner: ProcessRunner): Promise<string | undefined> {
  try {
    const { stdout } = await runner.run('pg_config', ['--bindir']);
    return stdout.trim() || undefined;
  } catch {
    // No pg_config on PATH is normal on servers with only client packages: use the default.
    return undefined;
  }
}
