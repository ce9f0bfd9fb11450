import { Readable } from 'node:stream';
import { SeededRandom } from './seeded-random';

/**
 * `bytes` delivered in chunks of random sizes (single bytes to 64 KiB), as a network or a pipe may
 * cut them: stream parsers must not care where a chunk ends.
 */
export function randomlyChunked(bytes: Buffer, random: SeededRandom): Readable {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const size = random.chance(0.05) ? random.int(1, 7) : random.int(1, 65_536);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(chunks, { objectMode: false });
}

/** Every byte of a stream, in one buffer (specs only: unbounded memory). */
export async function collectBytes(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
