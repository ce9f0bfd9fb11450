import { Readable } from 'node:stream';
import type { Client } from 'pg';
import { ConfigError, InvariantError, SourceUnavailableError, formatLsn, parseLsn } from '@rookery/core';
import { BasebackupResult, CheckpointMode } from './pg-basebackup.driver';
import { connectionError } from './pg-sql.client';
import { pgDriver } from './pg-driver';
import { describePgUrl } from './pg-connection';
import { DEFAULT_PG_IDLE_TIMEOUT_SECONDS, IdleTimeout, pgStalledError } from './idle-timeout';

/** Compression the server applies to the archive before sending it (PostgreSQL 15+). */
export interface ServerCompression {
  codec: 'zstd' | 'lz4' | 'gzip';
  level: number;
  /** zstd only: compression threads inside the walsender; 0 compresses in the walsender itself. */
  workers?: number;
}

export interface ReplicationBaseBackupOptions {
  /** The source database URL; its password goes to the server in the authentication exchange only. */
  url: string;
  label: string;
  checkpoint: CheckpointMode;
  /** Absent: the server sends plain tars (rookery compresses them, the client-compression path). */
  compression?: ServerCompression;
  signal?: AbortSignal;
  connectTimeoutMs?: number;
  /**
   * Fails the backup when the server sends nothing for this long while rookery reads (time the
   * socket is paused because the store is slower does not count). The start checkpoint is silent:
   * keep it generous. Default DEFAULT_PG_IDLE_TIMEOUT_SECONDS.
   */
  idleTimeoutMs?: number;
  /** The server's count of uncompressed archive bytes sent so far, as it reports it. */
  onProgress?: (bytes: number) => void;
  /**
   * An incremental base backup (PostgreSQL 17+, `summarize_wal = on`): the parent backup's
   * backup_manifest is uploaded (`UPLOAD_MANIFEST`) on the same connection, then `BASE_BACKUP
   * (..., INCREMENTAL)` sends relation files with changes as `INCREMENTAL.<name>` members (read
   * them with writeIncremental's `serverIncremental`). Checked first: a server before 17, or with
   * summarize_wal off, fails with a ConfigError before anything is sent.
   */
  incremental?: IncrementalBaseBackupOptions;
}

export interface IncrementalBaseBackupOptions {
  /**
   * The parent backup's backup_manifest exactly as the server wrote it (JSON, manifest version
   * 2), as bytes or a stream of them: sent as it is read.
   */
  parentManifest: Buffer | AsyncIterable<Buffer>;
  /** Names the parent in errors (its backup id). */
  parentLabel: string;
}

/** server_version_num of the first release with BASE_BACKUP INCREMENTAL (PostgreSQL 17). */
export const INCREMENTAL_BASE_BACKUP_MIN_VERSION = 170_000;

export interface BaseBackupProtocolResult extends BasebackupResult {
  archiveBytes?: number;
  tablespaceBytes: Record<number, number>;
}

/** A user tablespace's archive: its files, relative to the tablespace's directory (PG_<version>_<catversion>/…). */
export interface TablespaceArchive {
  oid: number;
  /** The tablespace's directory on the server (the target of pg_tblspc/<oid>). */
  location: string;
  /** The tar exactly as the server sent it; must be read, like `archive`. */
  stream: Readable;
}

export interface ReplicationBaseBackup {
  /**
   * The data directory's tar with the WAL that makes it consistent (and, with tablespaces, the
   * tablespace_map that lists them instead of pg_tblspc's symbolic links), exactly as the server
   * sent it (compressed by the server when asked). Ends when the server finished the archive;
   * errors when the backup fails. Must be read, or the server's send blocks.
   */
  archive: Readable;
  /**
   * Each user tablespace's archive as the server starts sending it. PostgreSQL sends them one
   * after the other before the data directory's: each must be read (or the server's send
   * blocks before `archive` starts). Ends when the data directory's archive starts; errors when
   * the backup fails. Nothing for a cluster without user tablespaces.
   */
  tablespaces: AsyncIterable<TablespaceArchive>;
  /**
   * PostgreSQL's backup_manifest (JSON, per-file sizes and CRC32C, WAL range), sent after the
   * archive. Readable once the archive has ended.
   */
  manifest: Readable;
  /**
   * Start/stop LSN and timeline, plus the server's count of the data directory archive's
   * uncompressed bytes when it reported one, and each tablespace archive's (by OID). Settles
   * after every stream ended.
   */
  result: Promise<BaseBackupProtocolResult>;
  /**
   * Hands back a chunk of `archive` or `manifest` the consumer keeps no reference to any more
   * (a store's CompletingWriteOptions.onWritten): its memory then takes later bytes instead of fresh memory.
   * The caller must not read the chunk afterwards. Chunks never handed back, or not from these
   * streams, are left to the garbage collector.
   */
  release(chunk: Buffer): void;
}

/** The BASE_BACKUP replication command pg_basebackup -Ft -X fetch [--compress=server-…] would send. */
export function baseBackupCommand(options: {
  label: string;
  checkpoint: CheckpointMode;
  compression?: ServerCompression;
  incremental?: IncrementalBaseBackupOptions;
}): string {
  const parts = [
    `LABEL ${quoteLiteral(options.label)}`,
    `CHECKPOINT '${options.checkpoint}'`,
    // The WAL from start to stop goes into the archive; not waiting for it to be archived, as
    // pg_basebackup does when it includes the WAL itself.
    'WAL true',
    'WAIT false',
    "MANIFEST 'yes'",
    "MANIFEST_CHECKSUMS 'CRC32C'",
    'TABLESPACE_MAP true',
  ];
  const compression = options.compression;
  if (compression) {
    const detail = [`level=${compression.level}`];
    if (compression.codec === 'zstd' && compression.workers) detail.push(`workers=${compression.workers}`);
    parts.push(`COMPRESSION '${compression.codec}'`, `COMPRESSION_DETAIL '${detail.join(',')}'`);
  }
  // Against the manifest UPLOAD_MANIFEST gave this connection.
  if (options.incremental) parts.push('INCREMENTAL');
  return `BASE_BACKUP (${parts.join(', ')})`;
}

function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * A physical base backup taken over the replication protocol, with the server compressing the
 * archive (what `pg_basebackup --compress=server-zstd` does): the walsender reads and compresses
 * the data files with its own threads, and only the compressed bytes cross the wire and this
 * process. pg_basebackup itself cannot hand over a server-compressed tar together with the
 * backup_manifest without decompressing the tar to inject the manifest into it; here the manifest
 * is a stream of its own.
 *
 * Every tablespace comes as an archive of its own (`tablespaces`, announced with its OID and
 * location, then the data directory's `archive`): what pg_basebackup -Ft writes as <oid>.tar and
 * base.tar, and cannot write to a pipe. Without `compression` the archives are plain tars.
 */
export function startReplicationBaseBackup(options: ReplicationBaseBackupOptions): ReplicationBaseBackup {
  const target = describePgUrl(options.url);
  const command = baseBackupCommand(options);
  const client = new (pgDriver().Client)({
    connectionString: options.url,
    // Physical replication: the connection speaks the replication command language.
    replication: true,
    application_name: 'rookery',
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    // A long backup's connection is mostly one-way: TCP keepalives notice a vanished server.
    keepAlive: true,
  } as ConstructorParameters<typeof Client>[0]);
  client.on('error', () => undefined);
  const connection = (client as unknown as { connection?: PgConnection }).connection;

  // Counts the server's silence from BASE_BACKUP on, except while the streams paused the socket.
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_PG_IDLE_TIMEOUT_SECONDS * 1000;
  let onIdle: () => void = () => undefined;
  const idle = new IdleTimeout(idleTimeoutMs, () => onIdle());
  connection?.on('message', () => idle.touch());
  const flow: FlowControlledSocket = {
    pause: () => {
      idle.pause();
      connection?.stream?.pause();
    },
    resume: () => {
      idle.resume();
      connection?.stream?.resume();
    },
  };
  const streams = new BaseBackupStreams(() => flow);
  const { archive, manifest } = streams;
  // Failures are reported through result too; these keep a stream nobody reads yet (the manifest
  // while the archive is stored) from crashing the process with an unhandled 'error' event.
  archive.on('error', () => undefined);
  manifest.on('error', () => undefined);
  // The tablespaces' archives, in an object stream the caller iterates (ended when the data
  // directory's archive starts).
  const tablespaces = new Readable({ objectMode: true, read: () => undefined });
  tablespaces.on('error', () => undefined);
  let current: Readable | null = null;

  const result = new Promise<BaseBackupProtocolResult>((resolve, reject) => {
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      idle.stop();
      options.signal?.removeEventListener('abort', onAbort);
      for (const stream of [current, archive, manifest, tablespaces]) stream?.destroy(error);
      reject(error);
      void client.end().catch(() => undefined);
    };
    const onAbort = () => fail(options.signal?.reason instanceof Error ? options.signal.reason : new Error('base backup aborted'));
    // A consumer that stops reading (its store write failed) stops the backup, or the paused
    // connection would hold the server's walsender and this process forever.
    for (const stream of [archive, manifest]) {
      stream.once('close', () => {
        if (!stream.readableEnded) fail(stream.errored ?? new Error('base backup stream closed before its end'));
      });
    }
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    // The server answers: a result set with the start point, one listing the tablespaces, the
    // COPY stream ('n' new archive, 'd' data, 'p' progress, 'm' manifest follows), a result set
    // with the end point, CommandComplete, ReadyForQuery.
    const resultSets: string[][][] = [];
    let phase: 'before-copy' | 'archive' | 'manifest' | 'after-copy' = 'before-copy';
    // Another archive follows: the one before it is complete. The data directory's comes last.
    const startArchive = (message: Buffer) => {
      const [name = '', location = ''] = message.subarray(1).toString('utf8').split('\0');
      if (current === archive) return fail(new InvariantError(`base backup of ${target}: an archive after the data directory's`));
      if (current) streams.end(current);
      if (currentOid !== null && archiveBytes !== undefined) tablespaceBytes[currentOid] = archiveBytes - bytesBefore;
      bytesBefore = archiveBytes ?? 0;
      phase = 'archive';
      if (!location) {
        current = archive;
        currentOid = null;
        tablespaces.push(null);
        return;
      }
      // The tablespace list (second result set: oid, location, size) names the OID.
      const listed = resultSets[1]?.find((row) => row[1] === location);
      const oid = Number(listed?.[0] ?? /^(\d+)\.tar/.exec(name)?.[1]);
      if (!Number.isInteger(oid) || oid <= 0)
        return fail(new InvariantError(`base backup of ${target}: archive '${name}' of ${location} has no tablespace OID`));
      const stream = streams.openArchive();
      stream.on('error', () => undefined);
      stream.once('close', () => {
        if (!stream.readableEnded) fail(stream.errored ?? new Error('base backup stream closed before its end'));
      });
      current = stream;
      currentOid = oid;
      tablespaces.push({ oid, location, stream } satisfies TablespaceArchive);
    };
    // The server's progress count runs over all archives: each one's size is the count at its
    // end (the server reports it as an archive ends) less the count at the one before's.
    let archiveBytes: number | undefined;
    let bytesBefore = 0;
    let currentOid: number | null = null;
    const tablespaceBytes: Record<number, number> = {};
    onIdle = () => {
      fail(pgStalledError(target, idleTimeoutMs, WAITING_FOR[phase]));
      // The stalled peer may never answer the goodbye client.end() sends: drop the connection, or
      // its open socket alone would keep this process waiting.
      connection?.stream?.destroy();
    };

    const submittable = {
      submit(connection: { query(text: string): void }) {
        connection.query(command);
        idle.start();
      },
      handleRowDescription() {
        if (phase === 'archive' || phase === 'manifest') {
          if (phase === 'archive')
            return fail(new InvariantError(`base backup of ${target} ended without the backup manifest it asked for`));
          streams.end(manifest);
          phase = 'after-copy';
        }
        resultSets.push([]);
      },
      handleDataRow(message: { fields: (string | null)[] }) {
        const rows = resultSets[resultSets.length - 1];
        rows?.push(message.fields.map((field) => field ?? ''));
      },
      handleCopyData(message: { chunk: Buffer }) {
        const chunk = message.chunk;
        switch (chunk[0]) {
          case 0x6e: // 'n': a new archive (name, tablespace location; empty for the data directory)
            return startArchive(chunk);
          case 0x64: // 'd': archive or manifest bytes
            if (phase === 'archive' && current) streams.append(current, chunk.subarray(1));
            else if (phase === 'manifest') streams.append(manifest, chunk.subarray(1));
            else fail(new InvariantError(`base backup of ${target}: data outside an archive`));
            return;
          case 0x6d: // 'm': the archives are complete, the manifest follows
            if (current !== archive)
              return fail(new InvariantError(`base backup of ${target}: the manifest before the data directory's archive`));
            phase = 'manifest';
            streams.end(archive);
            return;
          case 0x70: // 'p': uncompressed bytes the server has sent so far
            if (chunk.length >= 9) {
              archiveBytes = Number(chunk.readBigInt64BE(1));
              options.onProgress?.(archiveBytes);
            }
            return;
          default:
            fail(new InvariantError(`base backup of ${target}: unknown COPY message type ${chunk[0]}`));
        }
      },
      handleCommandComplete() {
        /* the end point result set came before it */
      },
      handleEmptyQuery() {
        /* not sent for BASE_BACKUP */
      },
      handleError(error: Error) {
        fail(
          new SourceUnavailableError(`base backup of ${target} failed: ${error.message}`, {
            cause: error,
            retryable: false,
            hint: options.incremental ? incrementalRefusalHint(error.message) : undefined,
          }),
        );
      },
      handleReadyForQuery() {
        const start = resultSets[0]?.[0];
        const end = resultSets[2]?.[0];
        if (phase !== 'after-copy' || !start || !end) {
          return fail(new InvariantError(`base backup of ${target} ended without its archive, manifest and end point`));
        }
        settled = true;
        idle.stop();
        options.signal?.removeEventListener('abort', onAbort);
        resolve({
          startLsn: formatLsn(parseLsn(start[0])),
          stopLsn: formatLsn(parseLsn(end[0])),
          timeline: Number(start[1]),
          archiveBytes: archiveBytes === undefined ? undefined : archiveBytes - bytesBefore,
          tablespaceBytes,
        });
        void client.end().catch(() => undefined);
      },
    };

    client.connect().then(
      async () => {
        if (settled) return void client.end().catch(() => undefined);
        if (options.incremental) {
          try {
            await prepareIncremental(client, target, options.incremental);
          } catch (error) {
            return fail(error as Error);
          }
          if (settled) return;
        }
        client.query(submittable as never);
      },
      (error: unknown) => fail(connectionError(options.url, error)),
    );
    // A connection lost before the end fails the backup (after the end, fail is a no-op).
    client.on('end', () => fail(new SourceUnavailableError(`connection to ${target} closed during the base backup`)));
  });
  result.catch(() => undefined);
  return {
    archive,
    manifest,
    tablespaces: tablespaces as AsyncIterable<TablespaceArchive>,
    result,
    release: (chunk) => streams.release(chunk),
  };
}

/**
 * Readies a replication connection for `BASE_BACKUP ... INCREMENTAL`: checks the server can take
 * one (PostgreSQL 17+, summarize_wal on; the walsender answers SHOW), then uploads the parent's
 * backup_manifest (`UPLOAD_MANIFEST`: CopyInResponse, the manifest as CopyData, CopyDone,
 * CommandComplete). The server keeps it for the connection's next BASE_BACKUP.
 */
async function prepareIncremental(client: Client, target: string, incremental: IncrementalBaseBackupOptions): Promise<void> {
  const show = async (name: string) => {
    const result = await client.query<{ [name: string]: string }>(`SHOW ${name}`);
    return String(Object.values(result.rows[0] ?? {})[0] ?? '');
  };
  const version = Number(await show('server_version_num'));
  if (!(version >= INCREMENTAL_BASE_BACKUP_MIN_VERSION)) {
    throw new ConfigError(`incremental base backup of ${target} needs PostgreSQL 17 or later; the server is version ${version}`, [], {
      hint: 'take a full backup, or an incremental compared on the client (without the server INCREMENTAL option)',
    });
  }
  if ((await show('summarize_wal')) !== 'on') {
    throw new ConfigError(`incremental base backup of ${target} needs summarize_wal = on; the server has it off`, [], {
      hint: 'set summarize_wal = on (a reload is enough), then take a full backup: incrementals need WAL summaries from their parent on',
    });
  }
  const refused = (error: unknown) =>
    new SourceUnavailableError(
      `${target} refused the backup_manifest of ${incremental.parentLabel} for an incremental base backup: ${(error as Error).message}`,
      {
        cause: error,
        retryable: false,
        hint: incrementalRefusalHint((error as Error).message),
      },
    );
  await new Promise<void>((resolve, reject) => {
    let failed: Error | undefined;
    const upload = {
      submit(connection: { query(text: string): void }) {
        connection.query('UPLOAD_MANIFEST');
      },
      handleCopyInResponse(connection: {
        sendCopyFromChunk(chunk: Buffer): void;
        endCopyFrom(): void;
        sendCopyFail(message: string): void;
      }) {
        void (async () => {
          try {
            const manifest = incremental.parentManifest;
            for await (const chunk of Buffer.isBuffer(manifest) ? [manifest] : manifest) connection.sendCopyFromChunk(chunk);
            connection.endCopyFrom();
          } catch (error) {
            failed = error as Error;
            connection.sendCopyFail(`rookery could not read the parent manifest: ${failed.message}`);
          }
        })();
      },
      handleRowDescription() {
        /* none expected */
      },
      handleDataRow() {
        /* none expected */
      },
      handleCommandComplete() {
        /* ReadyForQuery follows */
      },
      handleEmptyQuery() {
        /* not sent */
      },
      // pg's client forgets the command on an error: ReadyForQuery then reaches no one.
      handleError(error: Error) {
        reject(failed ?? refused(error));
      },
      handleReadyForQuery() {
        if (failed) reject(failed);
        else resolve();
      },
    };
    client.query(upload as never);
  });
}

/** What to do when the server refused an incremental base backup, by its message. */
function incrementalRefusalHint(message: string): string {
  if (/summar/i.test(message)) {
    return 'the server lacks WAL summaries from the parent backup on (summarize_wal was off for a while, or wal_summary_keep_time removed them): take a full backup';
  }
  if (/system identifier/i.test(message)) return 'the parent backup is of another database system: take a full backup of this one';
  if (/timeline|WAL from/i.test(message)) return "the parent backup is not on this server's timeline history: take a full backup";
  return "upload the parent backup's own backup_manifest (manifest version 2, PostgreSQL 17+), or take a full backup";
}

/** What a stalled base backup was waiting for, by the phase it stalled in. */
const WAITING_FOR = {
  'before-copy': 'while waiting for the base backup to start (the server runs its start checkpoint first)',
  archive: 'while streaming the base backup',
  manifest: 'while streaming the backup manifest',
  'after-copy': 'while waiting for the end of the base backup',
} as const;

/** The parts of pg's internal connection the base backup uses: every parsed message, and its socket. */
interface PgConnection {
  on(event: 'message', listener: () => void): void;
  stream?: FlowControlledSocket & { destroy(): void };
}

/** What the flow control needs of the replication connection's socket. */
export interface FlowControlledSocket {
  pause(): void;
  resume(): void;
}

/**
 * The archive and manifest streams of one base backup, fed in turn from one socket, and the flow
 * control between them. The socket is paused when the stream receiving the bytes is full, and
 * only that stream resumes it: when its reader asks for more, or when it ends (an ended stream is
 * never read again, and what follows on the socket is the next stream's bytes or the end of the
 * command). A socket paused by a stream that can no longer ask for more would stall the backup
 * with nothing left to wake it.
 */
export class BaseBackupStreams {
  readonly archive: Readable;
  readonly manifest: Readable;
  /** The stream whose full buffer paused the socket, or null while the socket flows. */
  private pausedBy: Readable | null = null;
  private readonly gathered = new SlabGatherer();

  constructor(private readonly socket: () => FlowControlledSocket | undefined) {
    this.archive = this.openArchive();
    this.manifest = new Readable({ highWaterMark: 1024 * 1024, read: () => this.resumeFor(this.manifest) });
  }

  /** Another archive fed from the same socket (a tablespace's), under the same flow control. */
  openArchive(): Readable {
    const stream: Readable = new Readable({ highWaterMark: 4 * 1024 * 1024, read: () => this.resumeFor(stream) });
    return stream;
  }

  /**
   * Copies `bytes` towards `stream`. The parser reuses its buffer for the next socket read: the
   * bytes are copied, and gathered into pieces of up to a slab before they go downstream.
   */
  append(stream: Readable, bytes: Buffer): void {
    this.gathered.append(bytes, (piece) => this.push(stream, piece));
  }

  /** Sends what is gathered and ends `stream`; the socket flows on for whatever comes next. */
  end(stream: Readable): void {
    const tail = this.gathered.take();
    if (tail) this.push(stream, tail);
    stream.push(null);
    this.resumeFor(stream);
  }

  /** See ReplicationBaseBackup.release. */
  release(chunk: Buffer): void {
    this.gathered.release(chunk);
  }

  private push(stream: Readable, piece: Buffer): void {
    if (stream.push(piece) || this.pausedBy) return;
    this.pausedBy = stream;
    this.socket()?.pause();
  }

  private resumeFor(stream: Readable): void {
    if (this.pausedBy !== stream) return;
    this.pausedBy = null;
    this.socket()?.resume();
  }
}

/**
 * Copies the COPY messages' bytes (~32 KiB each) into 1 MiB slabs and hands them downstream a
 * slab at a time: one chunk through the store pipeline per ~30 messages. A slab the consumer hands
 * back (release) takes later bytes: fresh memory costs a page fault per 4 KiB on the bench
 * machine, and a garbage collection per 64 MiB allocated, CPU the server compressing on the same
 * cores was waiting for.
 */
export class SlabGatherer {
  static readonly SLAB_BYTES = 1024 * 1024;
  /** Slabs kept for reuse at most: more than the archive stream and a store write hold at once. */
  static readonly SPARE_SLABS = 16;
  private slab: Buffer | null = null;
  private filled = 0;
  /**
   * The memory of each slab handed downstream and not handed back yet. Weak: a slab the consumer
   * never hands back (compressed or encrypted on the way, the store writes other buffers) is the
   * garbage collector's once the consumer is done with it. A strong set kept every such slab: a
   * whole backup's worth of memory.
   */
  private readonly downstream = new WeakSet<ArrayBuffer>();
  private readonly spare: ArrayBuffer[] = [];

  /**
   * Copies `bytes` in; `emit` receives each piece as it is completed: a full slab, the part of a
   * slab filled before `bytes` did not fit, or a copy of `bytes` alone when they exceed a slab.
   * An emitted piece is never written again unless it is released.
   */
  append(bytes: Buffer, emit: (piece: Buffer) => void): void {
    if (this.slab && this.filled + bytes.length > this.slab.length) emit(this.takeFilled());
    if (bytes.length > SlabGatherer.SLAB_BYTES) return emit(Buffer.from(bytes));
    if (!this.slab) {
      const memory = this.spare.pop();
      this.slab = memory ? Buffer.from(memory) : Buffer.allocUnsafeSlow(SlabGatherer.SLAB_BYTES);
    }
    this.filled += bytes.copy(this.slab, this.filled);
    if (this.filled === this.slab.length) emit(this.takeFilled());
  }

  /** The bytes gathered and not yet emitted (the end of a stream), or null when there are none. */
  take(): Buffer | null {
    return this.slab && this.filled > 0 ? this.takeFilled() : null;
  }

  /** Takes back the memory of an emitted piece for later bytes; anything else is ignored. */
  release(piece: Buffer): void {
    const memory = piece.buffer as ArrayBuffer;
    if (!this.downstream.delete(memory)) return;
    if (this.spare.length < SlabGatherer.SPARE_SLABS) this.spare.push(memory);
  }

  private takeFilled(): Buffer {
    const slab = this.slab as Buffer;
    const piece = slab.subarray(0, this.filled);
    this.downstream.add(slab.buffer as ArrayBuffer);
    this.slab = null;
    this.filled = 0;
    return piece;
  }
}
