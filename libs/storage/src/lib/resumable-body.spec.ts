import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ResumableBody, ResumableBodyOptions, TruncatedBodyError } from './resumable-body';

const reset = () => Object.assign(new Error('aborted'), { code: 'ECONNRESET' });

/**
 * A body like the SDK's: the object's bytes from `start`, in `chunk`-sized pieces, that fails
 * with `error` (or just ends, when `error` is 'end') once `failAfter` bytes have gone out.
 */
function fakeBody(object: Buffer, start: number, chunk: number, failAfter?: number, error: Error | 'end' = reset()): Readable {
  let sent = 0;
  let position = start;
  // No read-ahead: what the fake pushed has reached the reader before it fails (a destroyed
  // stream drops what it buffered, and the test wants exact offsets).
  return new Readable({
    highWaterMark: 0,
    read() {
      if (failAfter !== undefined && sent >= failAfter) {
        if (error === 'end') this.push(null);
        else this.destroy(error);
        return;
      }
      if (position >= object.length) return void this.push(null);
      const size = Math.min(chunk, object.length - position, failAfter === undefined ? Infinity : failAfter - sent);
      const piece = object.subarray(position, position + size);
      position += size;
      sent += size;
      this.push(piece);
    },
  });
}

interface Run {
  bytes: Buffer;
  error?: Error;
  reopenedAt: number[];
}

/** Reads the whole body through a slow writer, as the restore's pipeline would. */
async function readAll(body: ResumableBody, reopenedAt: number[]): Promise<Run> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk);
      setImmediate(done);
    },
  });
  try {
    await pipeline(body, sink);
    return { bytes: Buffer.concat(chunks), reopenedAt };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), error: error as Error, reopenedAt };
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A read of `object` whose n-th body (0 = the first) fails after `failAfter[n]` bytes; bodies past
 * the list run to the end.
 */
function read(
  object: Buffer,
  failAfter: (number | undefined)[],
  overrides: Partial<ResumableBodyOptions> = {},
  error?: () => Error | 'end',
) {
  const reopenedAt: number[] = [];
  let opened = 0;
  const open = (start: number) => fakeBody(object, start, 700, failAfter[opened++], error?.());
  const body = new ResumableBody(open(0), {
    length: object.length,
    maxAttempts: 3,
    isResumable: (cause) => cause instanceof TruncatedBodyError || (cause as { code?: string }).code === 'ECONNRESET',
    failure: (cause, position, attempts) =>
      new Error(`gave up at byte ${position} after ${attempts} attempts: ${(cause as Error).message}`),
    backoffMs: () => 0,
    reopen: async (start) => {
      reopenedAt.push(start);
      return open(start);
    },
    ...overrides,
  });
  return { body, run: () => readAll(body, reopenedAt) };
}

describe('ResumableBody', () => {
  const object = randomBytes(64 * 1024 + 13);

  it('resumes a body that fails mid-stream from the byte where it stopped; the reader sees every byte once', async () => {
    const { run } = read(object, [10_000]);
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.reopenedAt).toEqual([10_000]);
    expect(sha256(result.bytes)).toBe(sha256(object));
  });

  it('keeps going while each body makes progress, past maxAttempts failures in total', async () => {
    const failures = [5_000, 1, 7_000, 300, 9_999, 4_096, 1_000];
    const { body, run } = read(object, failures);
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.reopenedAt).toHaveLength(failures.length);
    expect(body.resumes).toBe(failures.length);
    expect(result.bytes.equals(object)).toBe(true);
  });

  it('fails after maxAttempts bodies in a row that deliver nothing, naming where it stopped', async () => {
    const { run } = read(object, [20_000, 0, 0, 0, 0]);
    const result = await run();
    expect(result.reopenedAt).toEqual([20_000, 20_000]);
    expect(result.error?.message).toBe('gave up at byte 20000 after 3 attempts: aborted');
    // The reader got a prefix of the object, never a byte past where it stopped (what the failing
    // pipeline had still queued for the slow writer is dropped, so the prefix may be shorter).
    expect(result.bytes.length).toBeLessThanOrEqual(20_000);
    expect(result.bytes.equals(object.subarray(0, result.bytes.length))).toBe(true);
  });

  it('resumes a body that ends short of the known length without an error', async () => {
    const { run } = read(object, [33_333], {}, () => 'end');
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.reopenedAt).toEqual([33_333]);
    expect(result.bytes.equals(object)).toBe(true);
  });

  it('without a known length, an early end is the end', async () => {
    const { run } = read(object, [33_333], { length: undefined }, () => 'end');
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.reopenedAt).toEqual([]);
    expect(result.bytes.length).toBe(33_333);
  });

  it('does not resume after an error that is not resumable', async () => {
    const { run } = read(object, [8_000], {}, () => new Error('checksum failed'));
    const result = await run();
    expect(result.reopenedAt).toEqual([]);
    expect(result.error?.message).toBe('gave up at byte 8000 after 1 attempts: checksum failed');
  });

  it('an error after the last byte is moot', async () => {
    const { run } = read(object, [object.length]);
    const result = await run();
    expect(result.error).toBeUndefined();
    expect(result.reopenedAt).toEqual([]);
    expect(result.bytes.equals(object)).toBe(true);
  });

  it('fails with the reopen error, such as the object having changed', async () => {
    const { run } = read(object, [12_000], {
      reopen: async () => {
        throw new Error("object 'k' changed while it was being read");
      },
    });
    const result = await run();
    expect(result.error?.message).toBe("object 'k' changed while it was being read");
  });

  it('a reader that stops early destroys the body and opens no other', async () => {
    const { body } = read(object, [10_000]);
    let seen = 0;
    const bodyClosed = new Promise<void>((done) => {
      body.once('data', (chunk: Buffer) => {
        seen += chunk.length;
        body.destroy();
      });
      body.once('close', done);
    });
    await bodyClosed;
    expect(seen).toBeGreaterThan(0);
    expect(body.resumes).toBe(0);
  });

  it('a reader that gives up while it waits to resume opens no other body', async () => {
    const reopen = jest.fn();
    const { body } = read(object, [10_000], { reopen, backoffMs: () => 60_000 });
    body.resume();
    await new Promise<void>((done) => {
      const check = () => (body.bytesRead >= 10_000 ? done() : setImmediate(check));
      check();
    });
    const closed = new Promise((done) => body.once('close', done));
    body.once('error', () => undefined);
    body.destroy(new Error('restore cancelled'));
    await closed;
    expect(reopen).not.toHaveBeenCalled();
  });

  it('uses the backoff it is given for each failure in a row', async () => {
    const backoffMs = jest.fn(() => 0);
    const { run } = read(object, [10_000, 0, 5_000], { backoffMs });
    expect((await run()).error).toBeUndefined();
    expect(backoffMs.mock.calls).toEqual([[1], [2], [1]]);
  });
});
