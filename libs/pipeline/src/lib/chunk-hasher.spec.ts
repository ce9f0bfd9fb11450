import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { CompressionCodec, IntegrityError } from '@rookery/core';
import { ChunkHasher, HashedChunks, InlineChunkHasher, WorkerChunkHasher } from './chunk-hasher';
import { compressChunks, compressHashedChunks, createDecompressStream } from './compression';
import { InlineFrameCompressor, shutdownCompressionPool } from './compression-pool';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const CHUNK = 64 * 1024;

/** Pieces of `bytes` as readWalContent makes them: each owns its whole ArrayBuffer. */
function owned(bytes: Buffer, size = CHUNK): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += size) {
    const piece = Buffer.allocUnsafeSlow(Math.min(size, bytes.length - offset));
    bytes.copy(piece, 0, offset);
    chunks.push(piece);
  }
  return chunks;
}

describe('WorkerChunkHasher', () => {
  const hasher = new WorkerChunkHasher();
  afterAll(() => hasher.shutdown());

  it.each([
    ['no chunks', 0],
    ['one short chunk', 1000],
    ['several chunks and a tail', 3 * CHUNK + 5],
  ])('%s: the digest is the sha256 of the raw bytes, and every chunk comes back unchanged', async (_label, size) => {
    const bytes = randomBytes(size);
    const chunks = owned(bytes);
    const hashed = hasher.hash(chunks);
    expect(chunks.every((chunk) => chunk.length === 0)).toBe(true); // handed over, not copied
    const back = await Promise.all(hashed.chunks);
    expect(Buffer.concat(back).equals(bytes)).toBe(true);
    expect(await hashed.digest).toEqual({ sha256: sha256(bytes), bytes: size });
  });

  it('keeps a digest per file when several are hashed at once', async () => {
    const files = [randomBytes(2 * CHUNK + 1), randomBytes(CHUNK), randomBytes(5 * CHUNK)];
    const runs = files.map((bytes) => hasher.hash(owned(bytes)));
    const digests = await Promise.all(runs.map((run) => run.digest));
    expect(digests.map((digest) => digest.sha256)).toEqual(files.map(sha256));
  });

  it('copies a chunk that shares its memory instead of detaching the rest', async () => {
    const whole = randomBytes(3 * CHUNK);
    const first = whole.subarray(0, CHUNK);
    const hashed = hasher.hash([first]);
    expect(whole.length).toBe(3 * CHUNK);
    expect((await hashed.digest).sha256).toBe(sha256(whole.subarray(0, CHUNK)));
  });
});

describe('compressHashedChunks', () => {
  const worker = new WorkerChunkHasher();
  afterAll(() => Promise.all([worker.shutdown(), shutdownCompressionPool()]));

  it.each<[CompressionCodec, string]>([
    ['zstd', 'worker'],
    ['lz4', 'worker'],
    ['none', 'worker'],
    ['zstd', 'inline'],
  ])('%s, %s hasher: the same frames as compressChunks, and the sha256 of the raw input', async (codec, kind) => {
    const hasher: ChunkHasher = kind === 'worker' ? worker : new InlineChunkHasher();
    const spec = { codec, level: 1 };
    const bytes = Buffer.concat([Buffer.alloc(2 * CHUNK, 7), randomBytes(CHUNK + 3)]);
    const result = await compressHashedChunks(spec, owned(bytes), { hasher, label: 'segment' });
    expect(result.sha256).toBe(sha256(bytes));
    expect(result.bytes).toBe(bytes.length);
    const expected = await compressChunks(spec, owned(bytes));
    expect(Buffer.concat(result.frames).equals(Buffer.concat(expected))).toBe(true);
    const decoded = await buffer(Readable.from(result.frames).pipe(createDecompressStream(spec)));
    expect(decoded.equals(bytes)).toBe(true);
  });

  it('empty input: one empty frame and the sha256 of nothing', async () => {
    const result = await compressHashedChunks({ codec: 'zstd', level: 1 }, [], { hasher: worker, pool: new InlineFrameCompressor() });
    expect(result.sha256).toBe(sha256(Buffer.alloc(0)));
    expect(result.frames).toHaveLength(1);
  });

  it('refuses a digest that did not cover exactly the bytes compressed', async () => {
    // A hasher that loses the last chunk: its digest is of other bytes than the ones compressed.
    const lossy: ChunkHasher = {
      hash(chunks): HashedChunks {
        const inline = new InlineChunkHasher().hash(chunks.slice(0, -1));
        return { chunks: chunks.map((chunk) => Promise.resolve(chunk)), digest: inline.digest };
      },
    };
    await expect(
      compressHashedChunks({ codec: 'zstd', level: 1 }, owned(randomBytes(3 * CHUNK)), { hasher: lossy, label: 'segment' }),
    ).rejects.toThrow(new IntegrityError(`sha256 of 'segment' covered ${2 * CHUNK} bytes, but ${3 * CHUNK} were compressed`));
  });
});
