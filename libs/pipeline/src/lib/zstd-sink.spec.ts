import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '@rookery/core';
import { SeededRandom, differentialSeeds, randomlyChunked } from '@rookery/testing';
import { compress } from 'zstd-napi';
import { createDecompressStream } from './compression';
import { ZstdContexts, createZstdSink } from './zstd-sink';

/**
 * Differential proof of the zstd sink (wal.reuseBuffers: wal-get decodes into one reused buffer)
 * against the plain path (createDecompressStream, then a Writable): over generated inputs (frames
 * of random sizes and compressibility and levels, empty frames, a single frame, many small ones;
 * damaged: a flipped byte, cut short, garbage appended, not zstd at all) fed in random pieces, with
 * random output buffer sizes and contexts shared from case to case, both must hand on the same
 * bytes, or fail with the same IntegrityError message. The consumer sometimes yields before it
 * copies what it got (as a file write reads the buffer later), so a sink that overwrote its
 * buffer before the consumer was done would hand on wrong bytes. A failure prints its seed; ROOKERY_DIFF_SEED=<seed> replays that case alone.
 */
const CASES = 100;

interface Generated {
  stream: Buffer;
  description: string;
}

function generate(random: SeededRandom): Generated {
  const frames: Buffer[] = [];
  const style = random.pick(['wal-like', 'tiny', 'one', 'empty', 'big']);
  const count = { 'wal-like': random.int(1, 5), tiny: random.int(1, 40), one: 1, empty: random.int(0, 3), big: 1 }[style] as number;
  for (let index = 0; index < count; index++) {
    const size =
      style === 'tiny'
        ? random.int(0, 300)
        : style === 'empty'
          ? 0
          : style === 'big'
            ? random.int(1, 3) * 1024 * 1024
            : random.int(1, 600_000);
    const content = Buffer.alloc(size);
    // Pages of random bytes then zeros (as WAL pages), or all random, or all zeros.
    const kind = random.pick(['pages', 'random', 'zeros']);
    if (kind === 'random') random.bytes(size).copy(content);
    if (kind === 'pages') for (let at = 0; at < size; at += 8192) random.bytes(random.int(0, 8192)).copy(content, at);
    frames.push(compress(content, { compressionLevel: random.pick([1, 3, 9]) }));
  }
  let stream: Buffer = Buffer.concat(frames);
  const damage = random.pick(['none', 'none', 'none', 'flip', 'cut', 'append', 'not-zstd']);
  if (damage === 'flip' && stream.length > 0) {
    stream = Buffer.from(stream);
    stream[random.int(0, stream.length - 1)] ^= 1 << random.int(0, 7);
  }
  if (damage === 'cut' && stream.length > 1) stream = stream.subarray(0, random.int(1, stream.length - 1));
  if (damage === 'append') stream = Buffer.concat([stream, random.bytes(random.int(1, 40))]);
  if (damage === 'not-zstd') stream = random.bytes(random.int(1, 5000));
  return { stream, description: `${style}, ${count} frame(s), ${stream.length} bytes, damage ${damage}` };
}

/** What a path handed on, copied as it came, and how it ended. */
interface Outcome {
  bytes: Buffer;
  error: string | null;
}

/** A consumer as wal-get's: takes its time (a file write), then is done with the bytes. */
function collector(random: SeededRandom): { consume: (decoded: Buffer) => Promise<void>; received: Buffer[] } {
  const received: Buffer[] = [];
  return {
    received,
    consume: async (decoded: Buffer) => {
      // Read only after a turn of the event loop, as a file write does: the bytes must still be there.
      if (random.chance(0.3)) await new Promise((resolve) => setImmediate(resolve));
      received.push(Buffer.from(decoded));
    },
  };
}

async function outcome(run: () => Promise<void>, received: Buffer[]): Promise<Outcome> {
  try {
    await run();
    return { bytes: Buffer.concat(received), error: null };
  } catch (error) {
    const name = error instanceof IntegrityError ? 'IntegrityError' : (error as Error).constructor.name;
    return { bytes: Buffer.concat(received), error: `${name}: ${(error as Error).message}` };
  }
}

describe('createZstdSink against createDecompressStream (differential)', () => {
  const contexts = new ZstdContexts(2);

  it.each(differentialSeeds(CASES))('seed %i: the same bytes or the same failure', async (seed) => {
    const random = new SeededRandom(seed);
    const { stream, description } = generate(random);
    const label = 'oltp/wal/00000001/000000010000000000000003.zst';

    const plainCollector = collector(new SeededRandom(seed + 1));
    const plain = await outcome(
      () =>
        pipeline([
          randomlyChunked(stream, new SeededRandom(seed + 2)),
          createDecompressStream({ codec: 'zstd', level: 0 }, { label }),
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              plainCollector.consume(chunk).then(() => callback(), callback);
            },
          }),
        ]),
      plainCollector.received,
    );

    const sinkCollector = collector(new SeededRandom(seed + 1));
    // Tiny output buffers only for small inputs (a run per byte of 3 MiB would take minutes).
    const outputBytes = random.pick(stream.length < 20_000 ? [1, 7, 4096, 131_072] : [4096, 65_536, 131_072, 1024 * 1024]);
    const sink = await outcome(
      () =>
        pipeline([
          randomlyChunked(stream, new SeededRandom(seed + 2)),
          createZstdSink(sinkCollector.consume, { label, contexts: random.chance(0.7) ? contexts : undefined, outputBytes }),
        ]),
      sinkCollector.received,
    );

    try {
      expect(sink.error).toBe(plain.error);
      // On success every byte; on a failure the sink may have handed on more or fewer bytes before
      // it (output runs of another size), never other ones.
      if (plain.error === null) expect(sink.bytes.equals(plain.bytes)).toBe(true);
      else {
        const shorter = Math.min(sink.bytes.length, plain.bytes.length);
        expect(sink.bytes.subarray(0, shorter).equals(plain.bytes.subarray(0, shorter))).toBe(true);
      }
    } catch (error) {
      process.stderr.write(
        `zstd sink differs from the plain path for ROOKERY_DIFF_SEED=${seed} (${description}, output ${outputBytes} bytes)\n`,
      );
      throw error;
    }
  });

  it('is not vacuous: the generated cases include successes and every kind of failure', () => {
    const errors = new Set<string>();
    let successes = 0;
    for (const seed of differentialSeeds(CASES, undefined, '')) {
      const { description } = generate(new SeededRandom(seed));
      const damage = /damage (\S+)/.exec(description)?.[1] ?? '';
      if (damage === 'none') successes++;
      else errors.add(damage);
    }
    expect(successes).toBeGreaterThan(CASES / 3);
    expect([...errors].sort()).toEqual(['append', 'cut', 'flip', 'not-zstd']);
  });

  it('a stream cut inside a frame fails with an IntegrityError naming the object', async () => {
    const stream = compress(Buffer.alloc(100_000, 3));
    const run = pipeline([
      randomlyChunked(stream.subarray(0, stream.length - 5), new SeededRandom(1)),
      createZstdSink(async () => undefined, { label: 'x.zst' }),
    ]);
    await expect(run).rejects.toThrow(IntegrityError);
    await expect(run).rejects.toThrow("cannot decompress artifact 'x.zst' (zstd): Stream ended in middle of compressed data frame");
  });
});
