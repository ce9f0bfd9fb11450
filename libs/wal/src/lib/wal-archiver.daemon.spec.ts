import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { Store, TierName, WalFileName, parseWalFileName } from '@rookery/core';
import { shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { pollUntil, walSegmentBytes } from '@rookery/testing';
import { WalArchiverDaemon } from './wal-archiver.daemon';
import { WalSpool } from './wal.spool';
import { ChunkBuffers, WalContent, WalPushResult, WalTransfer, readWalContent } from './wal.transfer';
import { walEncodingFor } from './wal.factory';

const SEGMENT_BYTES = 1024 * 1024;
const segment = (n: number) => `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The real WalTransfer, counting pushes in flight and failing the names it is told to fail. */
class ObservedTransfer extends WalTransfer {
  inFlight = 0;
  peak = 0;
  readonly failing = new Set<string>();
  /**
   * The first pushes wait until this many are in flight at once (then none waits again): the
   * archiver's concurrency is seen without a sleep that a slow machine could outlast.
   */
  holdUntilInFlight = 0;
  private held: (() => void)[] | null = [];

  override async pushContent(
    tier: TierName,
    file: WalFileName,
    content: WalContent,
    options: { signal?: AbortSignal },
  ): Promise<WalPushResult> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      if (this.held && this.inFlight >= this.holdUntilInFlight) {
        for (const release of this.held) release();
        this.held = null;
      } else if (this.held) {
        await new Promise<void>((release) => this.held?.push(release));
      }
      await new Promise((done) => setImmediate(done)); // the others started meanwhile count as in flight
      if (this.failing.has(file.name)) throw new Error(`store refused ${file.name}`);
      return await super.pushContent(tier, file, content, options);
    } finally {
      this.inFlight--;
    }
  }
}

describe('WalArchiverDaemon (background archiver of wal.archiveAsync) on a filesystem repository', () => {
  let work: string;
  let pgWal: string;
  let store: Store;
  let transfer: ObservedTransfer;
  let spool: WalSpool;
  const content = new Map<string, Buffer>();

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-archiver-'));
    pgWal = join(work, 'pg_wal');
    await mkdir(join(pgWal, 'archive_status'), { recursive: true });
    const settings = { repositories: [`file://${join(work, 'repo')}`], compression: { codec: 'zstd', level: 1, chunkSizeMb: 0.25 } };
    const config = buildConfig(settings, 'test');
    store = createStore(config.repositories[0]);
    transfer = new ObservedTransfer({ config, repository: new BackupRepository(store), encoding: walEncodingFor(config) });
    spool = WalSpool.forTier(join(work, 'spool'), 'oltp');
    for (let n = 1; n <= 9; n++) {
      const bytes = walSegmentBytes(segment(n), { size: SEGMENT_BYTES, fill: n });
      randomBytes(4096).copy(bytes, SEGMENT_BYTES - 4096);
      content.set(segment(n), bytes);
      await writeFile(join(pgWal, segment(n)), bytes);
      await writeFile(join(pgWal, 'archive_status', `${segment(n)}.ready`), '');
    }
  });

  afterEach(async () => {
    await store.close();
    await rm(work, { recursive: true, force: true });
  });

  afterAll(() => Promise.all([shutdownCompressionPool(), shutdownChunkHasher()]));

  /** Runs the archiver until every ready file has a record, then stops it. */
  async function drain(processMax: number): Promise<void> {
    const controller = new AbortController();
    const running = new WalArchiverDaemon(transfer).run({
      tier: 'oltp',
      walDirectory: pgWal,
      spool,
      store: 'file://test',
      processMax,
      batchMax: 32,
      idleMs: 60_000,
      signal: controller.signal,
    });
    await pollUntil(
      () => spool.recorded(),
      (recorded) => recorded.acknowledged.size + recorded.failed.size === content.size,
      { what: 'a record of every ready file', intervalMs: 10 },
    );
    controller.abort();
    await running;
  }

  it.each([1, 3])(
    'pushes every ready file with at most processMax=%i at once, each acknowledged with its own sha256 once stored',
    async (processMax) => {
      transfer.holdUntilInFlight = processMax;
      await drain(processMax);
      expect(transfer.peak).toBe(processMax);
      for (const [name, bytes] of content) {
        const acknowledgement = await spool.acknowledgement(name);
        expect(acknowledgement?.sha256).toBe(sha256(bytes));
        const [object] = await transfer.archive.versions('oltp', parseWalFileName(name) as WalFileName);
        expect(object?.sha256).toBe(sha256(bytes));
        const fetched = join(work, `fetched-${name}`);
        await transfer.get('oltp', name, fetched);
        expect((await readFile(fetched)).equals(bytes)).toBe(true);
      }
    },
  );

  it('a push that fails gets a failure record and no acknowledgement; the others in flight with it are acknowledged', async () => {
    transfer.failing.add(segment(4));
    await drain(3);
    const recorded = await spool.recorded();
    expect([...recorded.failed]).toEqual([segment(4)]);
    expect(recorded.acknowledged.has(segment(4))).toBe(false);
    expect(recorded.acknowledged.size).toBe(content.size - 1);
    expect((await spool.failure(segment(4)))?.message).toBe(`store refused ${segment(4)}`);
    const stored = await readdir(join(work, 'repo', 'oltp', 'wal', '00000001'));
    expect(stored.some((key) => key.startsWith(segment(4)))).toBe(false);
  });

  it('a conflicting object already in the repository is refused and kept, never overwritten', async () => {
    const other = walSegmentBytes(segment(2), { size: SEGMENT_BYTES });
    await mkdir(join(work, 'elsewhere'));
    await writeFile(join(work, 'elsewhere', segment(2)), other);
    await transfer.push('oltp', join(work, 'elsewhere', segment(2)));
    await drain(2);
    expect((await spool.failure(segment(2)))?.code).toBe('WAL_CONFLICT');
    expect(await spool.acknowledgement(segment(2))).toBeNull();
    expect((await spool.recorded()).acknowledged.size).toBe(content.size - 1);
    const versions = (await readdir(join(work, 'repo', 'oltp', 'wal', '00000001'))).filter((key) => key.startsWith(segment(2)));
    expect(versions).toEqual([expect.stringContaining(sha256(other))]);
  });
});

describe('readWalContent', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-content-'));
  });

  afterAll(() => rm(work, { recursive: true, force: true }));

  it.each([
    ['empty', 0],
    ['smaller than a chunk', 1000],
    ['exactly two chunks', 2 * 65536],
    ['two chunks and a tail', 2 * 65536 + 3],
  ])('%s: pieces of the chunk size, each owning its memory', async (_label, size) => {
    const bytes = randomBytes(size);
    const path = join(work, `file-${size}`);
    await writeFile(path, bytes);
    const read = await readWalContent(path, 65536);
    expect(read.bytes).toBe(size);
    expect(Buffer.concat(read.chunks).equals(bytes)).toBe(true);
    expect(read.chunks.map((chunk) => chunk.length)).toEqual(
      Array.from({ length: Math.ceil(size / 65536) }, (_, index) => Math.min(65536, size - index * 65536)),
    );
    expect(read.chunks.every((chunk) => chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length)).toBe(true);
  });

  it('reads full chunks into memory handed back (ChunkBuffers), holding exactly the file whatever that memory held', async () => {
    const buffers = new ChunkBuffers(65536, 3);
    const stale = Array.from({ length: 4 }, () => Buffer.alloc(65536, 0xee).buffer as ArrayBuffer);
    for (const memory of [...stale, new ArrayBuffer(1000)]) buffers.give(memory);
    expect(buffers.size).toBe(3); // at most `max`, and only chunk-sized memory

    const bytes = randomBytes(2 * 65536 + 3);
    const path = join(work, 'reused');
    await writeFile(path, bytes);
    const read = await readWalContent(path, 65536, buffers);
    expect(Buffer.concat(read.chunks).equals(bytes)).toBe(true);
    // The two full chunks are in recycled memory; the tail has its own.
    expect(read.chunks.slice(0, 2).every((chunk) => stale.includes(chunk.buffer as ArrayBuffer))).toBe(true);
    expect(stale.includes(read.chunks[2].buffer as ArrayBuffer)).toBe(false);
    expect(read.chunks.every((chunk) => chunk.byteOffset === 0 && chunk.buffer.byteLength === chunk.length)).toBe(true);
    expect(buffers.size).toBe(1);
  });
});
