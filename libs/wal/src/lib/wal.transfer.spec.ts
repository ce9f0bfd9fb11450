import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { Store } from '@rookery/core';
import { shutdownChunkHasher, shutdownCompressionPool } from '@rookery/pipeline';
import { BackupRepository } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { SeededRandom, differentialSeeds, walSegmentBytes } from '@rookery/testing';
import { WalTransfer } from './wal.transfer';
import { walEncodingFor } from './wal.factory';

/**
 * wal-get with wal.reuseBuffers (zstd decoded into one reused buffer, createZstdSink) against the
 * plain stream pipeline, end to end on a real filesystem repository: generated segments (WAL-like
 * pages, random chunk sizes, codecs, with and without encryption) pushed once, then got through
 * both paths; the landed files must be identical, and a damaged stored object (a flipped byte,
 * cut short) must fail both with the same error. A failure prints its seed; ROOKERY_DIFF_SEED
 * replays it.
 */
const CASES = 12;
const SEGMENT_BYTES = 1024 * 1024;
const KEY = randomBytes(32).toString('hex');

describe('WalTransfer.get with wal.reuseBuffers on and off (differential)', () => {
  let work: string;

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-transfer-'));
  });

  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  afterAll(async () => {
    await Promise.all([shutdownCompressionPool(), shutdownChunkHasher()]);
  });

  function transferFor(store: Store, document: object, encrypted: boolean): WalTransfer {
    const config = buildConfig(document, 'test', {}, encrypted ? { ROOKERY_ENCRYPTION_KEY: KEY } : {});
    return new WalTransfer({ config, repository: new BackupRepository(store), encoding: walEncodingFor(config) });
  }

  async function outcome(
    transfer: WalTransfer,
    name: string,
    destination: string,
  ): Promise<{ bytes: Buffer | null; error: string | null }> {
    try {
      await transfer.get('oltp', name, destination);
      return { bytes: await readFile(destination), error: null };
    } catch (error) {
      return { bytes: null, error: `${(error as Error).constructor.name}: ${(error as Error).message}` };
    }
  }

  it.each(differentialSeeds(CASES))('seed %i: the same file, or the same failure', async (seed) => {
    const random = new SeededRandom(seed);
    const codec = random.pick(['zstd', 'zstd', 'zstd', 'lz4', 'gzip', 'none'] as const);
    const encrypted = random.chance(0.6);
    const compression = { codec, level: random.pick([1, 3]), chunkSizeMb: random.pick([0.0625, 0.25, 1]) };
    const repository = `file://${join(work, 'repo')}`;
    const store = createStore(repository);
    const pushing = transferFor(store, { repositories: [repository], compression }, encrypted);
    const name = `0000000100000000000000${random.int(1, 0xfe).toString(16).toUpperCase().padStart(2, '0')}`;
    const segment = walSegmentBytes(name, { size: SEGMENT_BYTES, fill: 0 });
    for (let at = 4096; at < SEGMENT_BYTES; at += 8192) random.bytes(random.int(0, 8192)).copy(segment, at);
    const source = join(work, name);
    await writeFile(source, segment);
    const pushed = await pushing.push('oltp', source);

    const damage = random.pick(['none', 'none', 'flip', 'cut']);
    const stored = join(work, 'repo', pushed.key);
    if (damage !== 'none') {
      const bytes = await readFile(stored);
      if (damage === 'flip') bytes[random.int(0, bytes.length - 1)] ^= 1 << random.int(0, 7);
      await writeFile(stored, damage === 'cut' ? bytes.subarray(0, random.int(0, bytes.length - 1)) : bytes);
    }

    const reuse = await outcome(
      transferFor(store, { repositories: [repository], compression, wal: { reuseBuffers: true } }, encrypted),
      name,
      join(work, 'reuse'),
    );
    const plain = await outcome(
      transferFor(store, { repositories: [repository], compression, wal: { reuseBuffers: false } }, encrypted),
      name,
      join(work, 'plain'),
    );
    try {
      expect(reuse.error).toBe(plain.error);
      expect(reuse.bytes?.equals(plain.bytes as Buffer) ?? plain.bytes === null).toBe(true);
      if (damage === 'none') expect(reuse.bytes?.equals(segment)).toBe(true);
      // Nothing is left behind by a failed get (its temporary file is removed).
      expect((await readdir(work)).filter((entry) => entry.includes('.rookery-'))).toEqual([]);
    } catch (error) {
      process.stderr.write(`wal-get paths differ for ROOKERY_DIFF_SEED=${seed} (${codec}, encrypted ${encrypted}, damage ${damage})\n`);
      throw error;
    } finally {
      await store.close();
    }
  });
});
