import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Parser } from 'tar';
import { DecompressStream } from 'zstd-napi';
import { SourceUnavailableError, parseLsn } from '@rookery/core';
import { baseBackupCommand, startReplicationBaseBackup } from './base-backup.protocol';
import { PgBinaries } from './pg-binaries';
import { PgVerifybackupDriver } from './pg-verifybackup.driver';
import { ProcessRunner } from './process.runner';
import { ScratchCluster, createScratchCluster, freeLoopbackPort } from './scratch-cluster';

jest.setTimeout(90_000);

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('startReplicationBaseBackup (BASE_BACKUP over the replication protocol, server-side compression)', () => {
  let cluster: ScratchCluster;
  let runner: ProcessRunner;

  beforeAll(async () => {
    cluster = await createScratchCluster({ name: 'bbproto', fsync: false, baseEnv: process.env });
    runner = new ProcessRunner({ baseEnv: process.env });
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('asks for what pg_basebackup -Ft -X fetch --compress=server-zstd asks for', () => {
    expect(baseBackupCommand({ label: "it's", checkpoint: 'fast', compression: { codec: 'zstd', level: 3, workers: 2 } })).toBe(
      "BASE_BACKUP (LABEL 'it''s', CHECKPOINT 'fast', WAL true, WAIT false, MANIFEST 'yes', MANIFEST_CHECKSUMS 'CRC32C', " +
        "TABLESPACE_MAP true, COMPRESSION 'zstd', COMPRESSION_DETAIL 'level=3,workers=2')",
    );
    expect(baseBackupCommand({ label: 'x', checkpoint: 'spread', compression: { codec: 'lz4', level: 1, workers: 2 } })).toMatch(
      /CHECKPOINT 'spread'.*COMPRESSION 'lz4', COMPRESSION_DETAIL 'level=1'\)$/,
    );
  });

  it('streams a zstd-compressed tar and the backup manifest that pg_verifybackup accepts once extracted', async () => {
    await cluster.query('create table t as select g, md5(g::text) as h from generate_series(1, 20000) g');
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'int-spec',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 3, workers: 2 },
    });
    const compressed = await collect(backup.archive);
    const manifest = await collect(backup.manifest);
    const result = await backup.result;

    // A zstd frame: magic number 28 b5 2f fd.
    expect(compressed.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    const entries: string[] = [];
    const directory = await mkdtemp(join(tmpdir(), 'rookery-bbproto-'));
    try {
      const tar = new Parser({ onReadEntry: (entry) => (entries.push(entry.path), entry.resume()) });
      let tarBytes = 0;
      const decoded = new DecompressStream();
      decoded.on('data', (chunk: Buffer) => (tarBytes += chunk.length));
      await pipeline(Readable.from([compressed]), decoded, tar);
      // The server's final progress report is the tar's exact size.
      expect(result.archiveBytes).toBe(tarBytes);
      expect(entries).toEqual(expect.arrayContaining(['backup_label', 'global/pg_control', 'PG_VERSION']));
      expect(entries.some((path) => /^pg_wal\/[0-9A-F]{24}$/.test(path))).toBe(true);
      expect(entries).not.toContain('backup_manifest');

      const parsed = JSON.parse(manifest.toString('utf8')) as { 'PostgreSQL-Backup-Manifest-Version': number; Files: { Path: string }[] };
      expect(parsed['PostgreSQL-Backup-Manifest-Version']).toBe(1);
      expect(parsed.Files.map((file) => file.Path)).toEqual(expect.arrayContaining(['PG_VERSION', 'global/pg_control']));
      expect(result.timeline).toBe(1);
      expect(parseLsn(result.stopLsn)).toBeGreaterThanOrEqual(parseLsn(result.startLsn));
      expect(tarBytes).toBeGreaterThan(compressed.length);

      // Extract, add the manifest, and let PostgreSQL's own checker read every file and WAL record.
      const extract = runner.spawn('tar', ['--extract', '--file=-', `--directory=${directory}`], {
        stdin: Readable.from([compressed]).pipe(new DecompressStream()),
      });
      await extract.result;
      await writeFile(join(directory, 'backup_manifest'), manifest);
      const verify = new PgVerifybackupDriver(runner, await PgBinaries.resolve({ runner }));
      const verdict = await verify.verify(directory);
      expect(verdict).toMatchObject({ ok: true });
      expect((await readFile(join(directory, 'backup_label'), 'utf8')).includes('LABEL: int-spec')).toBe(true);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it.each([
    ['reads the archive slowly', false],
    ['starts reading the archive only once its buffer is full', true],
  ])('completes when its reader %s (the server held back by backpressure)', async (_name, late) => {
    // Well over the archive stream's 4 MiB buffer even compressed, so the socket is paused and
    // resumed many times (where the last pieces meet backpressure is up to timing here: the
    // scripted socket of the unit spec makes that case deterministic).
    await cluster.query(
      'create table if not exists noise as select g, md5(random()::text) || md5(random()::text) as h from generate_series(1, 300000) g',
    );
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'slow reader',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
    });
    let archiveBytes = 0;
    const manifest = collect(backup.manifest);
    const archive = (async () => {
      // Not reading at first: the server sends until the archive's buffer is full and the socket is paused.
      if (late) {
        await waitUntil(
          () => backup.archive.readableLength >= backup.archive.readableHighWaterMark || backup.archive.destroyed,
          'the archive stream to fill',
        );
      }
      for await (const chunk of backup.archive) {
        archiveBytes += (chunk as Buffer).length;
        await new Promise(setImmediate);
      }
    })();
    await Promise.all([archive, manifest]);
    const result = await backup.result;
    expect(archiveBytes).toBeGreaterThan(backup.archive.readableHighWaterMark);
    expect(JSON.parse((await manifest).toString('utf8'))).toMatchObject({ 'PostgreSQL-Backup-Manifest-Version': 1 });
    expect(parseLsn(result.stopLsn)).toBeGreaterThanOrEqual(parseLsn(result.startLsn));
  });

  it('refuses a server it cannot reach with SourceUnavailableError and errors both streams', async () => {
    const port = await freeLoopbackPort();
    const backup = startReplicationBaseBackup({
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      label: 'dead',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 3 },
    });
    await expect(backup.result).rejects.toBeInstanceOf(SourceUnavailableError);
    await expect(collect(backup.archive)).rejects.toBeInstanceOf(SourceUnavailableError);
  });

  it('fails the stream with the server error when the server refuses the command', async () => {
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'bad',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 99 },
    });
    await expect(collect(backup.archive)).rejects.toThrow(/base backup of .* failed: .*level/i);
    await expect(backup.result).rejects.toBeInstanceOf(SourceUnavailableError);
  });

  it('stops the backup when its reader gives up (a failed store write), freeing the server', async () => {
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'reader gone',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
    });
    backup.archive.once('data', () => backup.archive.destroy(new Error('store write failed')));
    await expect(backup.result).rejects.toThrow('store write failed');
    await expect(collect(backup.manifest)).rejects.toThrow('store write failed');
    const next = startReplicationBaseBackup({
      url: cluster.url,
      label: 'after reader gone',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
    });
    await Promise.all([collect(next.archive), collect(next.manifest)]);
    await expect(next.result).resolves.toMatchObject({ timeline: 1 });
  });

  it('does not count the time its reader holds the connection paused against idleTimeoutMs', async () => {
    // About 50 MB of hex text: its archive is many times the 4 MiB the archive stream buffers.
    await cluster.query('create table paused as select g, md5(g::text) || md5((-g)::text) as h from generate_series(1, 500000) g');
    const idleTimeoutMs = 2_000;
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'slow reader',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
      idleTimeoutMs,
    });
    // Nobody reads until the archive stream is full (so the socket is paused: the server cannot
    // send), and then for three idle timeouts more: a slow store, not a stalled server.
    await waitUntil(() => backup.archive.readableLength >= backup.archive.readableHighWaterMark, 'the archive stream to fill');
    // A sleep on purpose: the time paused is what the case is about (no condition to poll for).
    await new Promise((later) => setTimeout(later, 3 * idleTimeoutMs));
    const [archive] = await Promise.all([collect(backup.archive), collect(backup.manifest)]);
    await expect(backup.result).resolves.toMatchObject({ timeline: 1 });
    expect(archive.length).toBeGreaterThan(4 * backup.archive.readableHighWaterMark);
    await cluster.query('drop table paused');
  });

  it('fails naming the server and the phase when the server sends nothing for idleTimeoutMs', async () => {
    // A spread checkpoint over checkpoint_timeout (5 min by default) keeps the server silent for
    // far longer than the 1 s allowed here.
    await cluster.query('create table dirty as select g from generate_series(1, 100000) g');
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'silent',
      checkpoint: 'spread',
      compression: { codec: 'zstd', level: 1 },
      idleTimeoutMs: 1_000,
    });
    await expect(backup.result).rejects.toThrow(
      /^no data from PostgreSQL at 127\.0\.0\.1:\d+\/\S+ for 1 s while waiting for the base backup to start \(the server runs its start checkpoint first\)$/,
    );
    await expect(backup.result).rejects.toBeInstanceOf(SourceUnavailableError);
    await expect(collect(backup.archive)).rejects.toThrow(/no data from PostgreSQL/);
    await cluster.query('drop table dirty');
  });

  it('stops the backup when aborted', async () => {
    const controller = new AbortController();
    const backup = startReplicationBaseBackup({
      url: cluster.url,
      label: 'aborted',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
      signal: controller.signal,
    });
    controller.abort(new Error('shutting down'));
    backup.archive.on('error', () => undefined);
    backup.manifest.on('error', () => undefined);
    await expect(backup.result).rejects.toThrow('shutting down');
    // The server is free for the next backup (no backup left in progress on it).
    const next = startReplicationBaseBackup({
      url: cluster.url,
      label: 'after',
      checkpoint: 'fast',
      compression: { codec: 'zstd', level: 1 },
    });
    const [archive] = await Promise.all([collect(next.archive), collect(next.manifest)]);
    expect(archive.length).toBeGreaterThan(0);
    await next.result;
  });
});

/**
 * Polls until `condition` holds (never a fixed sleep). Local: libs/testing builds on this library,
 * so its pollUntil would make the two depend on each other.
 */
async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 180_000; !condition(); await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}
