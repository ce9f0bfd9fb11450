import { Readable } from 'node:stream';
import { WriteSource } from './write-source';

/** A source of `count` chunks that fails with `failure` after them, if given. */
function chunks(count: number, failure?: Error): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: 1024,
    read() {
      if (sent === count) return void (failure ? this.destroy(failure) : this.push(null));
      sent++;
      this.push(Buffer.alloc(1024, sent));
    },
  });
}

/** Reads `take` chunks of the write's stream, then stops as a store does when its own write failed. */
async function readThenGiveUp(source: WriteSource, take: number): Promise<void> {
  let taken = 0;
  for await (const chunk of source.stream) {
    if ((chunk as Buffer).length > 0 && ++taken === take) break;
  }
  await new Promise(setImmediate);
}

describe('WriteSource.callerFailure', () => {
  it("is none when the store stops reading (its own failure is the store's to report)", async () => {
    const source = WriteSource.of(chunks(64));
    await readThenGiveUp(source, 2);
    expect(source.callerFailure()).toBeUndefined();
  });

  it("is the source's error when the source fails", async () => {
    const failure = new Error('pg_basebackup failed');
    const source = WriteSource.of(chunks(2, failure));
    await expect(readThenGiveUp(source, 64)).rejects.toBe(failure);
    expect(source.callerFailure()).toEqual({ error: failure });
  });

  it("is the abort's reason when the caller aborts", async () => {
    const controller = new AbortController();
    const source = WriteSource.of(chunks(64), controller.signal);
    const reason = new Error('the service is shutting down');
    controller.abort(reason);
    await expect(readThenGiveUp(source, 64)).rejects.toThrow();
    expect(source.callerFailure()).toEqual({ error: reason });
  });
});
