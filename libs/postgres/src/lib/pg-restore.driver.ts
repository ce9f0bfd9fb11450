import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { InvariantError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { connectionFromUrl } from './pg-connection';
import { ProcessResult, ProcessRunner } from './process.runner';

export type RestoreSection = 'pre-data' | 'data' | 'post-data';

/** What to take out of an archive: pg_restore's selection switches. */
export interface RestoreSelection {
  sections?: readonly RestoreSection[];
  /** `--schema=NAME` (exact names: pg_restore has no patterns). */
  schemas?: readonly string[];
  /** `--table=NAME` (exact names, any schema unless `schemas` narrows it). */
  tables?: readonly string[];
  dataOnly?: boolean;
}

export interface RestoreArgsOptions extends RestoreSelection {
  conninfo: string;
  /** Archive file or directory; null reads a custom-format archive from stdin. */
  input: string | null;
  jobs?: number;
  /** Drop each restored object first (`--clean --if-exists`). */
  clean?: boolean;
  /** All or nothing: one transaction, so a failure or a kill leaves the database as it was. */
  singleTransaction?: boolean;
}

/** The argv of `pg_restore` into a database; the connection's secrets travel in env. */
export function restoreArgs(options: RestoreArgsOptions): string[] {
  const jobs = options.jobs ?? 1;
  if (jobs > 1 && options.input === null) throw new InvariantError('pg_restore runs parallel jobs only from a file or directory');
  if (jobs > 1 && options.singleTransaction) throw new InvariantError('pg_restore cannot run parallel jobs in a single transaction');
  return [
    `--dbname=${options.conninfo}`,
    '--no-password',
    '--exit-on-error',
    ...(options.singleTransaction ? ['--single-transaction'] : []),
    ...(jobs > 1 ? [`--jobs=${jobs}`] : []),
    ...(options.clean ? ['--clean', '--if-exists'] : []),
    ...(options.dataOnly ? ['--data-only'] : []),
    ...(options.sections ?? []).map((section) => `--section=${section}`),
    ...(options.schemas ?? []).map((schema) => `--schema=${schema}`),
    ...(options.tables ?? []).map((table) => `--table=${table}`),
    ...(options.input === null ? ['--format=custom'] : [options.input]),
  ];
}

/** The argv of `pg_restore --list` (the archive's table of contents). */
export function listArgs(input: string | null): string[] {
  return ['--list', ...(input === null ? ['--format=custom'] : [input])];
}

/** One line of `pg_restore --list`: `3367; 0 16386 TABLE DATA public content_objects postgres`. */
export interface TocEntry {
  dumpId: number;
  /** 'TABLE', 'TABLE DATA', 'MATERIALIZED VIEW DATA', 'FK CONSTRAINT', … */
  type: string;
  /** Empty for objects outside a schema ('-' in the listing). */
  schema: string;
  name: string;
  owner: string;
}

/** Entry types of more than one word, longest first, so the listing's spaces split correctly. */
const MULTI_WORD_TYPES = [
  'MATERIALIZED VIEW DATA',
  'DEFAULT ACL',
  'FK CONSTRAINT',
  'CHECK CONSTRAINT',
  'EVENT TRIGGER',
  'FOREIGN TABLE',
  'FOREIGN DATA WRAPPER',
  'INDEX ATTACH',
  'LARGE OBJECT',
  'MATERIALIZED VIEW',
  'PUBLICATION TABLE',
  'PUBLICATION TABLES IN SCHEMA',
  'ROW SECURITY',
  'SEQUENCE OWNED BY',
  'SEQUENCE SET',
  'SERVER',
  'STATISTICS DATA',
  'TABLE ATTACH',
  'TABLE DATA',
  'TEXT SEARCH CONFIGURATION',
  'TEXT SEARCH DICTIONARY',
  'TEXT SEARCH PARSER',
  'TEXT SEARCH TEMPLATE',
  'USER MAPPING',
  'BLOBS',
].sort((a, b) => b.length - a.length);

/** Parses `pg_restore --list`; comment lines (';') are skipped. */
export function parseTocList(text: string): TocEntry[] {
  const entries: TocEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^(\d+); \d+ \d+ (.*)$/.exec(line.trim());
    if (!match) continue;
    const rest = match[2];
    const type = MULTI_WORD_TYPES.find((candidate) => rest.startsWith(`${candidate} `)) ?? rest.split(' ')[0];
    const fields = rest.slice(type.length + 1).split(' ');
    const owner = fields.length >= 3 ? (fields.pop() ?? '') : '';
    const schema = fields.shift() ?? '';
    entries.push({ dumpId: Number(match[1]), type, schema: schema === '-' ? '' : schema, name: fields.join(' '), owner });
  }
  return entries;
}

export interface StreamedRestore {
  /**
   * Write the archive here. The last bytes are held back until the writer ends, so pg_restore
   * cannot finish (and commit) before the writer's own checks at end of stream passed; destroying
   * the sink never ends pg_restore's input. Once pg_restore exited, writes are discarded, so the
   * writer can still read its source to the end and report what was wrong with it.
   */
  sink: Writable;
  result: Promise<ProcessResult>;
  /** Kills pg_restore: with a single transaction, nothing it did is kept. */
  abort(reason: Error): void;
}

/** Runs pg_restore: listing, restoring from a local archive, or from a stream. */
export class PgRestoreDriver {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly binaries: PgBinaries,
  ) {}

  /** The table of contents of a local archive (file or directory). */
  async list(input: string, options: { signal?: AbortSignal } = {}): Promise<TocEntry[]> {
    const { stdout } = await this.runner.run(this.binaries.path('pg_restore'), listArgs(input), { signal: options.signal });
    return parseTocList(stdout);
  }

  /** The definitions (pre-data section) of a local archive as the SQL script pg_restore would run. */
  async preDataScript(input: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const { stdout } = await this.runner.run(this.binaries.path('pg_restore'), ['--section=pre-data', '--file=-', input], {
      signal: options.signal,
    });
    return stdout;
  }

  /** Lists a custom-format archive written to the returned sink (pg_restore reads only its head). */
  listStream(options: { signal?: AbortSignal } = {}): { sink: Writable; result: Promise<TocEntry[]> } {
    const input = new PassThrough();
    const child = this.runner.spawn(this.binaries.path('pg_restore'), listArgs(null), { stdin: input, signal: options.signal });
    const sink = new ChildInput(input, 0);
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    const result = child.result.then(
      () => {
        sink.detach();
        return parseTocList(Buffer.concat(chunks).toString('utf8'));
      },
      (error: Error) => {
        sink.detach();
        throw error;
      },
    );
    result.catch(() => undefined);
    return { sink, result };
  }

  /**
   * Lists a directory-format dump that arrives as a tar (PgDumpDriver's directory stream): only
   * toc.dat is extracted, into a scratch directory, and the rest of the tar is read and dropped.
   */
  listTarStream(options: { signal?: AbortSignal; workDirectory?: string } = {}): { sink: Writable; result: Promise<TocEntry[]> } {
    const input = new PassThrough();
    const sink = new ChildInput(input, 0);
    const result = (async () => {
      const stage = await mkdtemp(join(options.workDirectory ?? tmpdir(), 'rookery-toc-'));
      try {
        await this.runner
          .run('tar', ['--extract', '--file=-', `--directory=${stage}`, 'toc.dat'], { stdin: input, signal: options.signal })
          .finally(() => sink.detach());
        return await this.list(stage, options);
      } finally {
        await rm(stage, { recursive: true, force: true });
      }
    })();
    result.catch(() => undefined);
    return { sink, result };
  }

  /** Unpacks a directory-format dump that arrives as a tar into `directory` (which must exist). */
  unpackDirectoryDump(directory: string, options: { signal?: AbortSignal } = {}): { sink: Writable; done: Promise<void> } {
    const sink = new PassThrough();
    const done = this.runner
      .run('tar', ['--extract', '--file=-', `--directory=${directory}`, '--no-same-owner'], { stdin: sink, signal: options.signal })
      .then(() => undefined);
    done.catch(() => undefined);
    return { sink, done };
  }

  /** Restores a local archive (file or directory), with parallel jobs where asked. */
  async restore(
    options: RestoreSelection & {
      url: string;
      input: string;
      jobs?: number;
      clean?: boolean;
      singleTransaction?: boolean;
      signal?: AbortSignal;
    },
  ): Promise<ProcessResult> {
    const connection = connectionFromUrl(options.url);
    return this.runner.run(this.binaries.path('pg_restore'), restoreArgs({ ...options, conninfo: connection.conninfo }), {
      env: connection.env,
      signal: options.signal,
    });
  }

  /** Restores a custom-format archive streamed into the returned sink, in one transaction. */
  restoreStream(options: RestoreSelection & { url: string; clean?: boolean; signal?: AbortSignal }): StreamedRestore {
    const connection = connectionFromUrl(options.url);
    return this.streamInto(
      'pg_restore',
      restoreArgs({ ...options, conninfo: connection.conninfo, input: null, singleTransaction: true }),
      connection.env,
      options.signal,
    );
  }

  /**
   * Applies a plain SQL script (a rookery changeset) streamed into the returned sink with psql, in
   * one transaction: psql commits only at the end of its input, which the sink gives it only when
   * the writer ended; aborting kills psql and nothing it did is kept.
   */
  applyScriptStream(options: { url: string; signal?: AbortSignal }): StreamedRestore {
    const connection = connectionFromUrl(options.url);
    return this.streamInto('psql', applyScriptArgs(connection.conninfo), connection.env, options.signal);
  }

  /** A tool reading its input from the returned sink, which holds back the tail until it ends. */
  private streamInto(tool: 'pg_restore' | 'psql', args: string[], env: Record<string, string>, outer?: AbortSignal): StreamedRestore {
    const controller = new AbortController();
    const signal = outer ? AbortSignal.any([outer, controller.signal]) : controller.signal;
    const input = new PassThrough();
    const child = this.runner.spawn(this.binaries.path(tool), args, { env, signal, stdin: input });
    const sink = new ChildInput(input, HOLD_BACK_BYTES);
    const result = child.result.finally(() => sink.detach());
    result.catch(() => undefined);
    return { sink, result, abort: (reason) => controller.abort(reason) };
  }
}

/**
 * The argv of psql applying a plain SQL script read from stdin, all or nothing: one transaction,
 * committed only when the script's input ended, stopped at the first error.
 */
export function applyScriptArgs(conninfo: string): string[] {
  return ['--no-psqlrc', '--quiet', '--no-password', '--set=ON_ERROR_STOP=1', '--single-transaction', `--dbname=${conninfo}`, '--file=-'];
}

/** Enough to cover the end of the archive's last data block. */
const HOLD_BACK_BYTES = 64 * 1024;

/**
 * The writable end of a child's stdin that (a) keeps the last `holdBack` bytes until it is ended,
 * (b) never ends the child's input when destroyed, and (c) drops everything once detached (the
 * child exited), so the writer is never stalled by a reader that is gone.
 */
class ChildInput extends Writable {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private detached = false;
  private waiting: (() => void) | null = null;

  constructor(
    private readonly target: PassThrough,
    private readonly holdBack: number,
  ) {
    super();
    target.on('error', () => undefined);
  }

  detach(): void {
    this.detached = true;
    this.held = [];
    this.heldBytes = 0;
    this.target.removeAllListeners('drain');
    this.target.resume();
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.detached) return callback();
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    let ready = true;
    while (this.held.length > 0 && this.heldBytes - this.held[0].length >= this.holdBack) {
      const released = this.held.shift() as Buffer;
      this.heldBytes -= released.length;
      ready = this.target.write(released) && ready;
    }
    if (ready || this.detached) return callback();
    this.waiting = callback;
    this.target.once('drain', () => {
      const waiting = this.waiting;
      this.waiting = null;
      waiting?.();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.detached) {
      for (const chunk of this.held) this.target.write(chunk);
      this.held = [];
      this.target.end();
    }
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Not ending the target is the point: the child must not see a clean end of input.
    this.held = [];
    callback(error);
  }
}
