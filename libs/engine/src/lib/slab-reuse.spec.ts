import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Store } from '@rookery/core';
import { createDecryptStream, parseEncryptionKey } from '@rookery/pipeline';
import { SlabGatherer } from '@rookery/postgres';
import { createStore } from '@rookery/storage';
import { SeededRandom, differentialSeeds } from '@rookery/testing';
import { ArtifactEncoding, artifactBinding, writeArtifact } from './artifact.codec';

/**
 * Differential proof of slab reuse (backup.reuseBuffers): the replication client's archive goes
 * through SlabGatherer into writeArtifact and a real filesystem store, once with the store handing
 * written chunks back (onWritten → release: the slab takes later bytes) and once without (fresh
 * memory, the plain path). Both stored objects must hold exactly the bytes the server sent, over
 * generated inputs: COPY message sizes around the slab size (±1 byte, several slabs, tiny ones),
 * a parser buffer overwritten after each message, a reader that pauses the feed on backpressure
 * (as the protocol pauses its socket), random pauses in the feed, encryption on and off. A failure
 * prints its seed; ROOKERY_DIFF_SEED=<seed> replays that case alone.
 */
const SLAB = SlabGatherer.SLAB_BYTES;
const CASES = 120;
const KEY = Buffer.alloc(32, 7).toString('base64');
const BACKUP = { tier: 'oltp' as const, id: '20261207T010000Z-oltp' };

interface Feed {
  /** Sizes of the COPY messages' payloads, in order. */
  sizes: number[];
  /** Where in the random pool each message's bytes start. */
  offsets: number[];
  /** Messages after which the feed yields to the event loop (a slow socket). */
  pauses: Set<number>;
  pool: Buffer;
}

function generateFeed(random: SeededRandom): Feed {
  const pool = streamBytes(random.int(0, 0xffffffff), 2 * SLAB + 4099);
  const sizes: number[] = [];
  const boundary = () => random.pick([SLAB - 1, SLAB, SLAB + 1, SLAB - random.int(1, 64), 1, 0]);
  // A few MiB at most per case: enough for several slabs to go round, cheap enough for every npm test.
  const style = random.pick(['copy-data', 'boundaries', 'mixed', 'tiny']);
  const messages = random.int(0, { 'copy-data': 64, boundaries: 6, mixed: 12, tiny: 40 }[style] as number);
  for (let index = 0; index < messages; index++) {
    if (style === 'copy-data')
      sizes.push(random.int(1, 65_536)); // PostgreSQL sends ~32 KiB
    else if (style === 'boundaries') sizes.push(boundary());
    else if (style === 'tiny') sizes.push(random.int(0, 17));
    else sizes.push(random.chance(0.2) ? boundary() : random.chance(0.1) ? random.int(SLAB + 2, 2 * SLAB) : random.int(1, 300_000));
  }
  const offsets = sizes.map((size) => random.int(0, pool.length - size));
  const pauses = new Set(sizes.map((_, index) => index).filter(() => random.chance(0.15)));
  return { sizes, offsets, pauses, pool };
}

/** The bytes the server sent, in order. */
function expected(feed: Feed): Buffer {
  return Buffer.concat(feed.sizes.map((size, index) => feed.pool.subarray(feed.offsets[index], feed.offsets[index] + size)));
}

/**
 * The archive stream as startReplicationBaseBackup builds it: each message copied from a parser
 * buffer that is overwritten right after, gathered into slabs, pushed into a Readable whose
 * backpressure pauses the feed until the consumer reads again.
 */
function archiveStream(feed: Feed, gatherer: SlabGatherer): Readable {
  let next = 0;
  let paused = false;
  const parserBuffer = Buffer.alloc(2 * SLAB + 1);
  const archive = new Readable({
    highWaterMark: 4 * 1024 * 1024,
    read() {
      if (paused) {
        paused = false;
        setImmediate(feedMore);
      }
    },
  });
  const push = (piece: Buffer) => {
    if (!archive.push(piece)) paused = true;
  };
  const feedMore = () => {
    while (!paused && next < feed.sizes.length) {
      const index = next++;
      const size = feed.sizes[index];
      const message = parserBuffer.subarray(0, size);
      feed.pool.copy(message, 0, feed.offsets[index], feed.offsets[index] + size);
      gatherer.append(message, push);
      message.fill(0xee); // the parser's next socket read
      if (feed.pauses.has(index)) return void setImmediate(feedMore);
    }
    if (next === feed.sizes.length && !paused) {
      const last = gatherer.take();
      if (last) archive.push(last);
      archive.push(null);
      next++;
    }
  };
  setImmediate(feedMore);
  return archive;
}

async function readAll(store: Store, key: string, encrypted: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const stages = encrypted
    ? [
        createDecryptStream(parseEncryptionKey(Buffer.from(KEY)), {
          label: key,
          binding: artifactBinding(BACKUP, 'base.tar.zst'),
        }),
      ]
    : [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  await pipeline([await store.read(key), ...stages, sink]);
  return Buffer.concat(chunks);
}

describe('slab reuse (backup.reuseBuffers) against fresh memory, over generated archives', () => {
  let work: string;
  let store: Store;

  beforeAll(async () => {
    // tmpfs where there is one: the store's fsyncs cost nothing there, the bytes are what is compared.
    work = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rookery-slab-diff-'));
    store = createStore(`file://${work}`);
  });

  afterAll(async () => {
    await store.close();
    await rm(work, { recursive: true, force: true });
  });

  it(`stores the same bytes with and without reuse (${CASES} cases)`, async () => {
    let reused = 0;
    for (const seed of differentialSeeds(CASES, 11_300)) {
      const random = new SeededRandom(seed);
      const feed = generateFeed(random);
      const encrypted = random.chance(0.25);
      const material = parseEncryptionKey(Buffer.from(KEY));
      const encoding: ArtifactEncoding = {
        compression: { codec: 'none', level: 0 },
        workers: 1,
        chunkSize: 1024 * 1024,
        serverCompression: true,
        key: encrypted ? { material, id: 'test' } : null,
      };
      const source = expected(feed);
      const stored: Buffer[] = [];
      for (const reuse of [true, false]) {
        const gatherer = new SlabGatherer();
        const release = gatherer.release.bind(gatherer);
        let released = 0;
        const key = `case-${seed}-${reuse ? 'reuse' : 'plain'}`;
        await writeArtifact(store, key, archiveStream(feed, gatherer), {
          name: 'base.tar.zst',
          kind: 'base-tar',
          backup: BACKUP,
          encoding,
          precompressed: { codec: 'zstd', level: 1 },
          onWritten: reuse ? (chunk) => (released++, release(chunk)) : undefined,
        });
        if (reuse) reused += released;
        stored.push(await readAll(store, key, encrypted));
        await store.remove(key);
      }
      const [withReuse, plain] = stored;
      const where = `seed ${seed} (replay: ROOKERY_DIFF_SEED=${seed}); ${feed.sizes.length} messages, ${source.length} bytes, encrypted ${encrypted}`;
      if (!plain.equals(source)) throw new Error(`the plain path stored other bytes than the server sent: ${where}`);
      if (!withReuse.equals(plain))
        throw new Error(
          `slab reuse stored other bytes than the plain path (first difference at byte ${firstDifference(withReuse, plain)}): ${where}`,
        );
    }
    // The fast path was taken: slabs went back to the gatherer (unless a single seed replays).
    if (!process.env['ROOKERY_DIFF_SEED']) expect(reused).toBeGreaterThan(CASES);
  }, 300_000);
});

/** `length` bytes that look random, fast (AES-CTR keystream), the same for the same seed. */
function streamBytes(seed: number, length: number): Buffer {
  const key = createHash('sha256').update(`slab-reuse ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function firstDifference(a: Buffer, b: Buffer): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) if (a[index] !== b[index]) return index;
  return length;
}
