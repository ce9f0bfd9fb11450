import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, InvariantError } from '@rookery/core';
import { createDigestStream, createVerifyStream } from './digest';

function sink(): Writable {
  return new Writable({ write: (_chunk, _encoding, callback) => callback() });
}

describe('createDigestStream', () => {
  it.each([
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from([1])],
    ['several chunks', randomBytes(200_000)],
  ])('counts and hashes %s while passing it through', async (_name, input) => {
    const progress: number[] = [];
    const digest = createDigestStream({ onProgress: (bytes) => progress.push(bytes) });
    const out: Buffer[] = [];
    const pieces = [input.subarray(0, 1000), input.subarray(1000)].filter((piece) => piece.length > 0);
    await pipeline(
      Readable.from(pieces),
      digest,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          out.push(chunk);
          callback();
        },
      }),
    );
    expect(Buffer.concat(out).equals(input)).toBe(true);
    expect(digest.bytes).toBe(input.length);
    expect(digest.sha256()).toBe(createHash('sha256').update(input).digest('hex'));
    expect(progress.at(-1) ?? 0).toBe(input.length);
  });

  it('refuses to give a digest before the stream ends', () => {
    expect(() => createDigestStream().sha256()).toThrow(InvariantError);
  });
});

describe('createVerifyStream', () => {
  const input = Buffer.from('the bytes the manifest describes');
  const sha256 = createHash('sha256').update(input).digest('hex');

  it('passes matching bytes', async () => {
    await expect(
      pipeline(Readable.from([input]), createVerifyStream({ sha256, bytes: input.length, label: 'a' }), sink()),
    ).resolves.toBeUndefined();
  });

  it.each([
    ['the checksum differs', { sha256: 'ab'.repeat(32), bytes: input.length }, /expected sha256 abab/],
    ['the size differs', { sha256, bytes: input.length + 1 }, new RegExp(`expected ${input.length + 1} bytes, got ${input.length}`)],
  ])('fails with an IntegrityError naming the artifact when %s', async (_name, expected, detail) => {
    const failure = pipeline(Readable.from([input]), createVerifyStream({ ...expected, label: 'base.tar.zst' }), sink());
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(/^checksum mismatch for artifact 'base.tar.zst': /);
    await expect(failure).rejects.toThrow(detail);
    await expect(failure).rejects.toHaveProperty('hint', expect.stringContaining('rookery verify'));
  });
});

describe('offloaded hashing (worker thread)', () => {
  const MiB = 1024 * 1024;

  it.each([
    ['empty', 0],
    ['one byte', 1],
    ['exactly one batch', 4 * MiB],
    ['many batches and a tail', 21 * MiB + 7],
  ])('gives the same digest as hashing inline: %s', async (_name, size) => {
    const input = randomBytes(size);
    const digest = createDigestStream({ offload: true });
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < input.length; offset += 300_000) pieces.push(input.subarray(offset, offset + 300_000));
    await pipeline(Readable.from(pieces), digest, sink());
    expect(digest.bytes).toBe(size);
    expect(digest.sha256()).toBe(createHash('sha256').update(input).digest('hex'));
  });

  it('verifies, and names the artifact on a mismatch', async () => {
    const input = randomBytes(9 * MiB);
    const sha256 = createHash('sha256').update(input).digest('hex');
    await pipeline(Readable.from([input]), createVerifyStream({ sha256, bytes: input.length, label: 'base.tar', offload: true }), sink());
    const flipped = Buffer.from(input);
    flipped[5 * MiB] ^= 1;
    await expect(
      pipeline(Readable.from([flipped]), createVerifyStream({ sha256, bytes: input.length, label: 'base.tar', offload: true }), sink()),
    ).rejects.toThrow("checksum mismatch for artifact 'base.tar'");
  });
});
