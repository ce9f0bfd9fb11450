import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '@rookery/core';
import { pollUntil } from '@rookery/testing';
import { Compressor } from 'zstd-napi';
import { createDecompressStream } from './compression';
import { ReleasingWriter } from './releasing-writer';
import { OffloadedZstdDecompressStream } from './zstd-decode';

function zstdFrames(...parts: Buffer[]): Buffer {
  const compressor = new Compressor();
  compressor.setParameters({ compressionLevel: 1, checksumFlag: true });
  return Buffer.concat(parts.map((part) => compressor.compress(part)));
}

/** Feeds `input` in pieces of `pieceSize` and collects the decoded bytes. */
async function decode(input: Buffer, pieceSize: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += pieceSize) pieces.push(input.subarray(offset, offset + pieceSize));
  const out: Buffer[] = [];
  await pipeline(
    Readable.from(pieces),
    createDecompressStream({ codec: 'zstd', level: 1 }, { label: 'base.tar.zst', offload: true }),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

describe('zstd decompression in a worker (offload)', () => {
  const original = Buffer.concat([randomBytes(3 * 1024 * 1024 + 17), Buffer.alloc(5 * 1024 * 1024, 7), Buffer.from('end')]);
  const frames = zstdFrames(original.subarray(0, 4 << 20), original.subarray(4 << 20), Buffer.alloc(0));

  it.each([1000, 65_536, 3 * 1024 * 1024])('decodes concatenated frames fed in pieces of %i bytes', async (pieceSize) => {
    expect((await decode(frames, pieceSize)).equals(original)).toBe(true);
  });

  it('reuses the memory of buffers a ReleasingWriter wrote, and every byte still comes out as it went in', async () => {
    // 24 MiB of varied data: more decoded MiB than the decoder's credit, so buffers must come back.
    const big = Buffer.concat(
      Array.from({ length: 24 }, (_, index) => (index % 3 === 0 ? randomBytes(1 << 20) : Buffer.alloc(1 << 20, index))),
    );
    const decoder = createDecompressStream(
      { codec: 'zstd', level: 1 },
      { label: 'base.tar.zst', offload: true },
    ) as OffloadedZstdDecompressStream;
    const sink = new ReleasingWriter();
    decoder.enableRecycling();
    sink.onRelease((chunk) => decoder.recycle(chunk));
    // The target reads each chunk a turn after it was written and only then calls back: a buffer
    // handed back before that would be decoded into before this hash saw it.
    const seen = createHash('sha256');
    sink.attach(
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          setImmediate(() => {
            seen.update(chunk);
            callback();
          });
        },
      }),
    );
    await pipeline(Readable.from([zstdFrames(big)]), decoder, sink);
    expect(seen.digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
    expect(decoder.recycledBuffers).toBeGreaterThan(8);
  });

  it('keeps and hands back nothing unless recycling was enabled', async () => {
    const decoder = createDecompressStream(
      { codec: 'zstd', level: 1 },
      { label: 'base.tar.zst', offload: true },
    ) as OffloadedZstdDecompressStream;
    const chunks: Buffer[] = [];
    await pipeline(
      Readable.from([frames]),
      decoder,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          decoder.recycle(chunk); // ignored: the chunk stays the consumer's
          chunks.push(chunk);
          callback();
        },
      }),
    );
    expect(decoder.recycledBuffers).toBe(0);
    expect(Buffer.concat(chunks).equals(original)).toBe(true);
  });

  it('fails with an IntegrityError naming the artifact on corrupt or truncated input', async () => {
    const corrupt = Buffer.from(frames);
    corrupt[corrupt.length >> 1] ^= 0xff;
    await expect(decode(corrupt, 65_536)).rejects.toThrow(IntegrityError);
    await expect(decode(frames.subarray(0, frames.length - 10), 65_536)).rejects.toThrow(/base\.tar\.zst.*zstd/);
    await expect(decode(Buffer.from('not zstd at all'), 65_536)).rejects.toThrow(IntegrityError);
  });

  it('decodes only a few MiB ahead of a consumer that does not read (empty pages decode to 1000× their size)', async () => {
    const zeros = zstdFrames(Buffer.alloc(256 * 1024 * 1024));
    expect(zeros.length).toBeLessThan(64 * 1024);
    const stream = createDecompressStream({ codec: 'zstd', level: 1 }, { offload: true });
    stream.end(zeros);
    await pollUntil(
      async () => stream.readableLength,
      (length) => length >= stream.readableHighWaterMark,
      {
        what: 'the readable buffer to fill',
        intervalMs: 10,
      },
    );
    // A sleep on purpose: time for a decoder that ignored backpressure to run past the buffer.
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The readable buffer (4 MiB) plus the credit (4 × 1 MiB) at most, not 256 MiB.
    expect(stream.readableLength).toBeLessThanOrEqual(9 * 1024 * 1024);
    let total = 0;
    for await (const chunk of stream) total += (chunk as Buffer).length;
    expect(total).toBe(256 * 1024 * 1024);
  });
});
