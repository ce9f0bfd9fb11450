import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { InvariantError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { connectionFromUrl } from './pg-connection';
import { ProcessRunner } from './process.runner';

/** pg_dump's archive formats rookery takes: one stream (custom) or one file per table (directory). */
export type DumpFormat = 'custom' | 'directory';

/** What to dump: a whole database, shaped by pg_dump's own selection switches. */
export interface DumpSelection {
  /** `--exclude-table-data=PATTERN`: the table's definition is dumped, its rows are not. */
  excludeTableData?: readonly string[];
  /** `--table=PATTERN`: only these tables (and nothing else of the schema). */
  tables?: readonly string[];
  dataOnly?: boolean;
  /** `--snapshot=ID`: read the snapshot another session exported, so several dumps agree. */
  snapshot?: string;
}

export interface DumpArgsOptions extends DumpSelection {
  conninfo: string;
  format: DumpFormat;
  /** pg_dump's own compression level; 0 leaves compression to rookery's pipeline. */
  compressLevel: number;
  /** Parallel workers (directory format only). */
  jobs?: number;
  /** Output directory (directory format); custom format always writes to stdout. */
  directory?: string;
}

/** The argv of `pg_dump`; the connection's secrets are in the environment, never here. */
export function dumpArgs(options: DumpArgsOptions): string[] {
  if (options.format === 'directory' && !options.directory) {
    throw new InvariantError('a directory-format dump needs an output directory');
  }
  if (options.jobs && options.jobs > 1 && options.format !== 'directory') {
    throw new InvariantError('pg_dump runs parallel jobs only for the directory format');
  }
  return [
    `--format=${options.format}`,
    ...(options.format === 'directory' ? [`--file=${options.directory}`] : []),
    `--compress=${options.compressLevel}`,
    ...(options.jobs && options.jobs > 1 ? [`--jobs=${options.jobs}`] : []),
    ...(options.snapshot ? [`--snapshot=${options.snapshot}`] : []),
    ...(options.dataOnly ? ['--data-only'] : []),
    ...(options.tables ?? []).map((pattern) => `--table=${pattern}`),
    ...(options.excludeTableData ?? []).map((pattern) => `--exclude-table-data=${pattern}`),
    '--no-password',
    `--dbname=${options.conninfo}`,
  ];
}

/** Pure: a schema script without comments, blank lines and `\restrict` lines: equal schemas give equal text. */
export function definitionText(script: string): string {
  return script
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.startsWith('--') && !/^\\(un)?restrict\b/.test(line))
    .join('\n');
}

/** A pg_dump pattern that matches exactly one table: both parts double-quoted, so nothing in them is a wildcard. */
export function exactTablePattern(table: { schema: string; name: string }): string {
  const quote = (part: string) => `"${part.replace(/"/g, '""')}"`;
  return `${quote(table.schema)}.${quote(table.name)}`;
}

/** An id pg_export_snapshot() returned: inlined in SQL, so its shape is checked first. */
const SNAPSHOT_ID = /^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i;

/**
 * The argv of psql running `COPY (query) TO STDOUT` in a read-only repeatable-read transaction
 * that reads an exported snapshot, so its rows agree with every other reader of that snapshot.
 * row_security off makes a policy that would hide rows an error instead of a silent gap.
 */
export function copyOutArgs(options: { conninfo: string; snapshot: string; query: string }): string[] {
  if (!SNAPSHOT_ID.test(options.snapshot)) throw new InvariantError(`'${options.snapshot}' is not an exported snapshot id`);
  return [
    '--no-psqlrc',
    '--quiet',
    '--no-password',
    '--set=ON_ERROR_STOP=1',
    `--dbname=${options.conninfo}`,
    '--command=begin isolation level repeatable read, read only',
    `--command=set transaction snapshot '${options.snapshot}'`,
    '--command=set row_security = off',
    `--command=copy (${options.query}) to stdout`,
    '--command=commit',
  ];
}

export interface DumpStartOptions extends DumpSelection {
  /** The source database URL; a password in it reaches pg_dump through PGPASSWORD only. */
  url: string;
  format: DumpFormat;
  compressLevel?: number;
  jobs?: number;
  /** Where a directory-format dump is staged (default the OS temp directory). */
  workDirectory?: string;
  signal?: AbortSignal;
}

export interface RunningDump {
  /**
   * The archive: pg_dump's custom-format output, or for the directory format a tar of the dump
   * directory with toc.dat as its first member. It ends only after every tool succeeded and errors
   * otherwise, so a consumer never mistakes a truncated dump for a complete one.
   */
  stream: Readable;
  result: Promise<void>;
}

/** Runs pg_dump as a stream for the backup pipeline. */
export class PgDumpDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  /**
   * Rows of a query in COPY text format (one line per row, tab-separated, escaped), read from an
   * exported snapshot. The stream ends only if psql exited 0.
   */
  copyOut(options: { url: string; snapshot: string; query: string; signal?: AbortSignal }): RunningDump {
    const connection = connectionFromUrl(options.url);
    const child = this.runner.spawn(this.binaries.path('psql'), copyOutArgs({ ...options, conninfo: connection.conninfo }), {
      // The changeset declares UTF8: rows come out in it whatever the database's encoding.
      env: { ...connection.env, PGCLIENTENCODING: 'UTF8' },
      signal: options.signal,
    });
    return { stream: child.stdout, result: child.result.then(() => undefined) };
  }

  /**
   * `pg_dump --schema-only --format=plain` at an exported snapshot, its TOC entry headers kept
   * (`-- Name: …; Type: …; Schema: …; Owner: …`) and the per-run `\restrict` lines removed, so the
   * script runs in any psql and equal schemas give equal text. With `tables`, only those tables
   * (exact names; one that does not exist fails the dump) and what belongs to them: columns,
   * defaults, constraints, indexes, triggers, owned sequences, its partition and index
   * attachments, in UTF8 (they go into a changeset, which declares it).
   */
  async schemaScript(options: {
    url: string;
    snapshot: string;
    tables?: readonly { schema: string; name: string }[];
    signal?: AbortSignal;
  }): Promise<string> {
    if (!SNAPSHOT_ID.test(options.snapshot)) throw new InvariantError(`'${options.snapshot}' is not an exported snapshot id`);
    const connection = connectionFromUrl(options.url);
    const tables = options.tables ?? [];
    const { stdout } = await this.runner.run(
      this.binaries.path('pg_dump'),
      [
        '--schema-only',
        '--format=plain',
        `--snapshot=${options.snapshot}`,
        ...(tables.length ? ['--strict-names', '--encoding=UTF8', ...tables.map((table) => `--table=${exactTablePattern(table)}`)] : []),
        '--no-password',
        `--dbname=${connection.conninfo}`,
      ],
      { env: connection.env, signal: options.signal },
    );
    return stdout
      .split('\n')
      .filter((line) => !/^\\(un)?restrict\b/.test(line))
      .join('\n');
  }

  start(options: DumpStartOptions): RunningDump {
    return options.format === 'custom' ? this.startCustom(options) : this.startDirectory(options);
  }

  private startCustom(options: DumpStartOptions): RunningDump {
    const connection = connectionFromUrl(options.url);
    const child = this.runner.spawn(
      this.binaries.path('pg_dump'),
      dumpArgs({ ...options, conninfo: connection.conninfo, compressLevel: options.compressLevel ?? 0 }),
      { env: connection.env, signal: options.signal },
    );
    return { stream: child.stdout, result: child.result.then(() => undefined) };
  }

  /**
   * pg_dump cannot write a directory dump to a pipe: it is staged on local disk (with -j workers),
   * then streamed as one tar, toc.dat first so a reader can list it without the data files.
   */
  private startDirectory(options: DumpStartOptions): RunningDump {
    const connection = connectionFromUrl(options.url);
    const stream = new PassThrough();
    stream.on('error', () => undefined);
    const result = (async () => {
      const stage = await mkdtemp(join(options.workDirectory ?? tmpdir(), 'rookery-dump-'));
      try {
        const directory = join(stage, 'dump');
        await this.runner.run(
          this.binaries.path('pg_dump'),
          dumpArgs({ ...options, conninfo: connection.conninfo, compressLevel: options.compressLevel ?? 0, directory }),
          { env: connection.env, signal: options.signal },
        );
        const files = (await readdir(directory)).filter((name) => name !== 'toc.dat').sort();
        const tar = this.runner.spawn('tar', ['--create', '--file=-', `--directory=${directory}`, '--', 'toc.dat', ...files], {
          signal: options.signal,
        });
        tar.stdout.pipe(stream);
        tar.stdout.on('error', (error) => stream.destroy(error));
        await tar.result;
        await new Promise<void>((resolve) => (stream.writableFinished ? resolve() : stream.once('finish', resolve).once('close', resolve)));
      } finally {
        await rm(stage, { recursive: true, force: true });
      }
    })();
    result.catch((error: Error) => stream.destroy(error));
    return { stream, result };
  }
}
