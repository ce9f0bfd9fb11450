import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CompressionCodec, IntegrityError, InvariantError } from '@rookery/core';
import { compressFrameSync } from 'lz4-napi';
import { compressChunks, createCompressStream, createDecompressStream, ParallelCompressStream } from './compression';
import { CompressionPool, FrameCompressor, InlineFrameCompressor, PooledCodec, shutdownCompressionPool } from './compression-pool';

const CHUNK = 64 * 1024;
const CODECS: CompressionCodec[] = ['none', 'gzip', 'zstd', 'lz4'];
const FRAMED: PooledCodec[] = ['gzip', 'zstd', 'lz4'];
const CLI: Record<PooledCodec, string> = { gzip: 'gzip', zstd: 'zstd', lz4: 'lz4' };

function text(bytes: number): Buffer {
  const rows: string[] = [];
  let length = 0;
  for (let id = 0; length < bytes; id++) {
    const row = `${id}\t2026-11-26 02:00:${String(id % 60).padStart(2, '0')}\tcustomer-${id % 977}\t${(id * 7.31).toFixed(2)}\tshipped\n`;
    rows.push(row);
    length += row.length;
  }
  return Buffer.from(rows.join('')).subarray(0, bytes);
}

const INPUTS: [string, () => Buffer][] = [
  ['empty', () => Buffer.alloc(0)],
  ['1 byte', () => Buffer.from([0x2a])],
  ['exactly one chunk', () => text(CHUNK)],
  ['many chunks', () => text(CHUNK * 9 + 12_345)],
  ['random incompressible', () => randomBytes(CHUNK * 3 + 7)],
  ['compressible text', () => text(CHUNK * 2 + 1)],
];

/** Feeds `input` in uneven writes so chunk assembly crosses write boundaries. */
function source(input: Buffer, piece = 10_007): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= input.length) return void this.push(null);
      this.push(input.subarray(offset, offset + piece));
      offset += piece;
    },
  });
}

async function transform(input: Buffer, stream: NodeJS.ReadWriteStream): Promise<Buffer> {
  const sink: Buffer[] = [];
  await pipeline(
    source(input),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        sink.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(sink);
}

function hasCli(name: string): boolean {
  return spawnSync('which', [name]).status === 0;
}

afterAll(() => shutdownCompressionPool());

describe('createCompressStream / createDecompressStream', () => {
  const cases = CODECS.flatMap((codec) => INPUTS.flatMap(([name, make]) => [1, 2].map((workers) => [codec, name, workers, make] as const)));

  it.each(cases)('%s round trip: %s, %i worker(s)', async (codec, _name, workers, make) => {
    const input = make();
    const compressed = await transform(input, createCompressStream({ codec, level: 1 }, { chunkSize: CHUNK, workers }));
    const restored = await transform(compressed, createDecompressStream({ codec, level: 1 }));
    expect(restored.equals(input)).toBe(true);
    if (codec !== 'none') expect(compressed.length).toBeGreaterThan(0);
  });

  it.each(FRAMED)('%s output is decoded by the system CLI', async (codec) => {
    if (!hasCli(CLI[codec])) return;
    const input = Buffer.concat([text(CHUNK * 5), randomBytes(CHUNK), text(999)]);
    const compressed = await transform(input, createCompressStream({ codec, level: 3 }, { chunkSize: CHUNK, workers: 2 }));
    const cli = spawnSync(CLI[codec], ['-d', '-c'], { input: compressed, maxBuffer: 64 * 1024 * 1024 });
    expect(cli.stderr.toString()).toBe('');
    expect(cli.status).toBe(0);
    expect(cli.stdout.equals(input)).toBe(true);
  });

  it.each([
    ['zstd', ['-3', '-c']],
    ['gzip', ['-6', '-c']],
    ['lz4', ['-c']],
    ['lz4', ['-c', '-BD', '-BX', '--content-size']],
    ['lz4', ['-c', '-B4', '--no-frame-crc']],
  ] as const)('%s stream written by the CLI (%j), twice concatenated, decodes', async (codec, args) => {
    if (!hasCli(CLI[codec])) return;
    const part = Buffer.concat([text(300_000), randomBytes(70_000)]);
    const cli = spawnSync(CLI[codec], [...args], { input: part, maxBuffer: 64 * 1024 * 1024 });
    expect(cli.status).toBe(0);
    const restored = await transform(Buffer.concat([cli.stdout, cli.stdout]), createDecompressStream({ codec, level: 0 }));
    expect(restored.equals(Buffer.concat([part, part]))).toBe(true);
  });

  it.each(FRAMED)('%s output keeps its frames in input order under concurrency', async (codec) => {
    const input = randomBytes(CHUNK * 17 + 3);
    const compressed = await transform(input, createCompressStream({ codec, level: 1 }, { chunkSize: CHUNK, workers: 4 }));
    const restored = await transform(compressed, createDecompressStream({ codec, level: 1 }));
    expect(restored.equals(input)).toBe(true);
  });

  it.each(FRAMED)('%s compressed in the calling thread (InlineFrameCompressor) decodes to the input, like the pool', async (codec) => {
    const input = Buffer.concat([text(CHUNK * 3), randomBytes(CHUNK + 5)]);
    const inline = await transform(
      input,
      createCompressStream({ codec, level: 1 }, { chunkSize: CHUNK, pool: new InlineFrameCompressor() }),
    );
    expect(inline.length).toBeGreaterThan(0);
    expect((await transform(inline, createDecompressStream({ codec, level: 1 }))).equals(input)).toBe(true);
  });

  describe('lz4 frames', () => {
    const BLOCK = 4 * 1024 * 1024;

    it('a chunk larger than one block: 4 MiB independent blocks, an incompressible one stored raw, content checksum, read by lz4 -d and by restore', async () => {
      const input = Buffer.concat([text(BLOCK), randomBytes(BLOCK), text(123_457)]);
      const frame = await transform(input, createCompressStream({ codec: 'lz4', level: 1 }, { chunkSize: input.length + 1, workers: 1 }));
      // Magic, FLG (version 1, independent blocks, content checksum), BD (4 MiB blocks), header checksum.
      expect([...frame.subarray(0, 7)]).toEqual([0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9]);
      const blocks: { size: number; raw: boolean }[] = [];
      let at = 7;
      for (let word = frame.readUInt32LE(at); word !== 0; word = frame.readUInt32LE(at)) {
        blocks.push({ size: word & 0x7fffffff, raw: word >>> 31 === 1 });
        at += 4 + (word & 0x7fffffff);
      }
      expect(blocks.map((block) => block.raw)).toEqual([false, true, false]);
      expect(blocks[1].size).toBe(BLOCK);
      expect(frame.length).toBe(at + 8);
      expect((await transform(frame, createDecompressStream({ codec: 'lz4', level: 1 }))).equals(input)).toBe(true);
      if (!hasCli('lz4')) return;
      const cli = spawnSync('lz4', ['-d', '-c'], { input: frame, maxBuffer: 64 * 1024 * 1024 });
      expect(cli.stderr.toString()).toBe('');
      expect(cli.stdout.equals(input)).toBe(true);
    });

    it('frames that rookery wrote with lz4-napi (older artifacts) decode', async () => {
      const input = Buffer.concat([text(300_000), randomBytes(70_000), text(5)]);
      const frame = compressFrameSync(input, { contentChecksum: true });
      expect(
        (await transform(Buffer.concat([frame, frame]), createDecompressStream({ codec: 'lz4', level: 1 }))).equals(
          Buffer.concat([input, input]),
        ),
      ).toBe(true);
    });

    it('frames of independent blocks are decoded without lz4-napi; others (linked blocks) by it', async () => {
      const napi = jest.spyOn(require('lz4-napi') as typeof import('lz4-napi'), 'decompressFrameSync');
      try {
        const input = Buffer.concat([text(CHUNK * 3), randomBytes(CHUNK)]);
        const ours = await transform(input, createCompressStream({ codec: 'lz4', level: 1 }, { chunkSize: CHUNK, workers: 2 }));
        expect((await transform(ours, createDecompressStream({ codec: 'lz4', level: 1 }))).equals(input)).toBe(true);
        expect(napi).not.toHaveBeenCalled();
        const old = compressFrameSync(input, { contentChecksum: true });
        expect((await transform(old, createDecompressStream({ codec: 'lz4', level: 1 }))).equals(input)).toBe(true);
        expect(napi).not.toHaveBeenCalled();
        if (!hasCli('lz4')) return;
        const linked = spawnSync('lz4', ['-c', '-BD', '-B4'], { input, maxBuffer: 64 * 1024 * 1024 }).stdout;
        expect((await transform(linked, createDecompressStream({ codec: 'lz4', level: 1 }))).equals(input)).toBe(true);
        expect(napi).toHaveBeenCalledTimes(1);
      } finally {
        napi.mockRestore();
      }
    });

    it('a wrong content checksum is an IntegrityError', async () => {
      const frame = await transform(text(CHUNK), createCompressStream({ codec: 'lz4', level: 1 }, { chunkSize: CHUNK }));
      const failure = transform(flip(frame, frame.length - 1), createDecompressStream({ codec: 'lz4', level: 1 }, { label: 'base.tar' }));
      await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    });
  });

  /** `input` cut into pieces of CHUNK bytes, each a buffer of its own (as a WAL push reads a file). */
  function pieces(input: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let offset = 0; offset < input.length; offset += CHUNK) out.push(Buffer.from(input.subarray(offset, offset + CHUNK)));
    return out;
  }

  it.each(CODECS.flatMap((codec) => INPUTS.map(([name, make]) => [codec, name, make] as const)))(
    'compressChunks (%s, %s) writes the same bytes as the stream with that chunk size',
    async (codec, _name, make) => {
      const input = make();
      const streamed = await transform(input, createCompressStream({ codec, level: 1 }, { chunkSize: CHUNK, workers: 2 }));
      const frames = await compressChunks({ codec, level: 1 }, pieces(input), { label: 'wal' });
      expect(Buffer.concat(frames).equals(streamed)).toBe(true);
    },
  );

  it('compressChunks takes over the chunks it hands to the pool, and names the input when a frame fails', async () => {
    const chunks = pieces(text(CHUNK * 2));
    await compressChunks({ codec: 'zstd', level: 1 }, chunks);
    expect(chunks.every((chunk) => chunk.length === 0)).toBe(true); // transferred to the workers: detached
    const failing: FrameCompressor = { size: 1, compress: () => Promise.reject(new Error('worker died')) };
    await expect(
      compressChunks({ codec: 'zstd', level: 1 }, pieces(text(10)), { pool: failing, label: '000000010000000000000003' }),
    ).rejects.toThrow("cannot compress chunk 0 of '000000010000000000000003' with zstd: worker died");
  });

  it.each([
    ['the worker pool', () => new CompressionPool({ size: 2 })],
    ['the calling thread', () => new InlineFrameCompressor()],
  ])(
    'with recycle, %s hands each input back once compressed; frames read into recycled memory decode to their input',
    async (_label, make) => {
      const pool = make();
      const returned: ArrayBuffer[] = [];
      const recycle = (memory: ArrayBuffer) => returned.push(memory);
      try {
        const first = [text(CHUNK), randomBytes(CHUNK), text(CHUNK)].map((chunk) => Buffer.from(chunk)); // each owning its memory
        const inputs = first.map((chunk) => Buffer.from(chunk));
        const frames = await compressChunks({ codec: 'zstd', level: 1 }, first, { pool, recycle });
        expect(returned.map((memory) => memory.byteLength)).toEqual([CHUNK, CHUNK, CHUNK]);
        for (const [index, frame] of frames.entries()) {
          expect(frame.byteOffset === 0 && frame.buffer.byteLength === frame.length).toBe(true); // a frame owns its memory
          expect(await transform(frame, createDecompressStream({ codec: 'zstd', level: 1 }))).toEqual(inputs[index]);
        }
        // The next chunks go into that memory (holding the old bytes until overwritten): smaller, larger, other.
        const again = returned.splice(0).map((memory) => Buffer.from(memory));
        const next = [text(CHUNK / 2), randomBytes(CHUNK), text(CHUNK)];
        next[0].copy(again[0]);
        next[1].copy(again[1]);
        next[2].copy(again[2]);
        const chunks = [again[0].subarray(0, CHUNK / 2), again[1], again[2]];
        const refrained = await compressChunks({ codec: 'zstd', level: 1 }, chunks, { pool, recycle });
        for (const [index, frame] of refrained.entries()) {
          expect(await transform(frame, createDecompressStream({ codec: 'zstd', level: 1 }))).toEqual(next[index]);
        }
        // The half chunk does not own its whole memory: the calling thread keeps away from it, the pool
        // compressed (and hands back) a copy.
        const sizes = returned.map((memory) => memory.byteLength).sort((a, b) => a - b);
        expect(sizes).toEqual(pool instanceof CompressionPool ? [CHUNK / 2, CHUNK, CHUNK] : [CHUNK, CHUNK]);
      } finally {
        if (pool instanceof CompressionPool) await pool.shutdown();
      }
    },
  );

  it('with recycle, a failing job still hands its input back', async () => {
    const pool = new CompressionPool({ size: 1 });
    const returned: ArrayBuffer[] = [];
    try {
      await expect(pool.compress('nope' as PooledCodec, 1, text(100), { recycle: (memory) => returned.push(memory) })).rejects.toThrow(
        "unknown codec 'nope'",
      );
      expect(returned.map((memory) => memory.byteLength)).toEqual([100]);
    } finally {
      await pool.shutdown();
    }
  });

  it('emits frames in order when jobs finish out of order', async () => {
    const pool = delayingPool((seq) => (seq % 3) * 7);
    const input = randomBytes(CHUNK * 12 + 5);
    const stream = createCompressStream({ codec: 'zstd', level: 1 }, { chunkSize: CHUNK, workers: 3, pool }) as ParallelCompressStream;
    const output = await transform(input, stream);
    expect(output.equals(input)).toBe(true);
    expect(pool.maxConcurrent).toBeGreaterThan(1);
    expect(stream.peakInFlightChunks).toBeLessThanOrEqual(6);
  });

  it('keeps memory bounded when the consumer is slow', async () => {
    const pool = delayingPool(() => 0);
    const total = CHUNK * 64;
    const input = randomBytes(total);
    const stream = createCompressStream({ codec: 'lz4', level: 1 }, { chunkSize: CHUNK, workers: 2, pool }) as ParallelCompressStream;
    let produced = 0;
    let consumed = 0;
    let maxLead = 0;
    const src = new Readable({
      read() {
        if (produced >= total) return void this.push(null);
        this.push(input.subarray(produced, produced + 16 * 1024));
        produced += 16 * 1024;
      },
    });
    const slowSink = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        consumed += chunk.length;
        maxLead = Math.max(maxLead, produced - consumed);
        // A slow consumer on purpose: the case measures how far the producer runs ahead of it.
        setTimeout(callback, 2);
      },
    });
    await pipeline(src, stream, slowSink);
    expect(consumed).toBe(total);
    expect(stream.peakInFlightChunks).toBeLessThanOrEqual(4);
    // Source, writable buffer, assembly, 4 in flight, readable buffer + one burst, sink: ~12 chunks.
    expect(maxLead).toBeLessThanOrEqual(12 * CHUNK);
  });

  it('fails the stream with a clear error when a worker cannot compress', async () => {
    const stream = createCompressStream({ codec: 'gzip', level: 42 }, { chunkSize: CHUNK, workers: 1, label: 'base.tar.gz' });
    await expect(transform(text(CHUNK * 2), stream)).rejects.toThrow(
      expect.objectContaining({
        name: 'InvariantError',
        message: expect.stringMatching(/^cannot compress chunk 0 of artifact 'base.tar.gz' with gzip: /),
      }),
    );
  });

  it('rejects an out-of-range chunk size', () => {
    expect(() => createCompressStream({ codec: 'zstd', level: 1 }, { chunkSize: 10 })).toThrow(InvariantError);
  });

  describe('corrupt input', () => {
    const corruptions: [string, (stream: Buffer) => Buffer][] = [
      ['a flipped byte', (stream) => flip(stream, Math.floor(stream.length / 2))],
      ['truncation', (stream) => stream.subarray(0, stream.length - 7)],
      ['a foreign prefix', (stream) => Buffer.concat([Buffer.from('not compressed at all'), stream])],
    ];
    const cases = FRAMED.flatMap((codec) => corruptions.map(([name, damage]) => [codec, name, damage] as const));

    it.each(cases)('%s: %s is an IntegrityError naming the artifact', async (codec, _name, damage) => {
      const input = text(CHUNK * 3);
      const compressed = await transform(input, createCompressStream({ codec, level: 1 }, { chunkSize: CHUNK, workers: 2 }));
      const failure = transform(damage(compressed), createDecompressStream({ codec, level: 1 }, { label: 'base.tar' }));
      await expect(failure).rejects.toBeInstanceOf(IntegrityError);
      await expect(failure).rejects.toThrow(new RegExp(`^cannot decompress artifact 'base.tar' \\(${codec}\\)`));
    });
  });
});

function flip(buffer: Buffer, index: number): Buffer {
  const copy = Buffer.from(buffer);
  copy[index] ^= 0xff;
  return copy;
}

/** Identity "compressor" whose jobs finish after a per-job delay, recording concurrency. */
function delayingPool(delayMs: (seq: number) => number): FrameCompressor & { maxConcurrent: number } {
  let seq = 0;
  let running = 0;
  const pool = {
    size: 4,
    maxConcurrent: 0,
    compress(_codec: PooledCodec, _level: number, input: Buffer): Promise<Buffer> {
      running++;
      pool.maxConcurrent = Math.max(pool.maxConcurrent, running);
      return new Promise((resolve) =>
        setTimeout(() => {
          running--;
          resolve(input);
        }, delayMs(seq++)),
      );
    },
  };
  return pool;
}
