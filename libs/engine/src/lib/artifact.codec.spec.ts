import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ObjectInfo, Store, StorageUnavailableError, ToolFailedError, WriteOptions } from '@rookery/core';
import { ArtifactEncoding, writeArtifact } from './artifact.codec';

const KEY = 'oltp/backups/2026-12-06/20261206T010000Z-oltp/base.tar.zst';
const ENCODING: ArtifactEncoding = { compression: { codec: 'zstd', level: 1 }, key: null };

function enospc(): StorageUnavailableError {
  const cause = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  return new StorageUnavailableError(`write of object '${KEY}' failed: ENOSPC`, { cause, retryable: false });
}

/**
 * A store that reads `failAfter` bytes of a write, then gives up on a full disk: it tears the
 * stream down first (the pipeline sees "The operation was aborted" at once) and rejects after its
 * cleanup (slow, as aborting a multipart upload is), with the real reason unless its caller
 * aborted the write meanwhile.
 */
function fullStore(failAfter: number): Store & { writes: number } {
  const store = {
    description: 'file:///srv/backups',
    writes: 0,
    async write(_key: string, body: Readable | Buffer, options: WriteOptions = {}): Promise<ObjectInfo> {
      store.writes++;
      const stream = body as Readable;
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += (chunk as Buffer).length;
        options.signal?.throwIfAborted();
        if (bytes < failAfter) continue;
        stream.destroy(Object.assign(new Error('The operation was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      // As the filesystem store does: a write whose caller aborted it reports the caller's reason.
      if (options.signal?.aborted) throw options.signal.reason;
      throw enospc();
    },
  };
  return store as unknown as Store & { writes: number };
}

const NOISE = randomBytes(8 * 1024 * 1024);

/** Incompressible bytes, in chunks, optionally failing before the end. */
function source(bytes: number, failure?: Error): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return void (failure ? this.destroy(failure) : this.push(null));
      const chunk = NOISE.subarray(sent % NOISE.length, (sent % NOISE.length) + 64 * 1024);
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

const options = { name: 'base.tar.zst', kind: 'base-tar' as const, encoding: ENCODING };

describe('writeArtifact failures', () => {
  it("reports the store's ENOSPC naming the artifact, backup and store, not the abort it caused", async () => {
    const failure = await writeArtifact(fullStore(256 * 1024), KEY, source(8 * 1024 * 1024), options).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect((failure as Error).message).toBe(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to file:///srv/backups: no space left on device (ENOSPC)",
    );
    expect(failure).toMatchObject({ code: 'STORAGE_UNAVAILABLE', retryable: false, hint: expect.stringContaining('free space') });
  });

  it("reports the source's own failure as it is", async () => {
    const toolFailed = new ToolFailedError('pg_basebackup', 1, 'pg_basebackup: error: connection lost');
    const store = fullStore(Number.MAX_SAFE_INTEGER);
    await expect(writeArtifact(store, KEY, source(512 * 1024, toolFailed), options)).rejects.toBe(toolFailed);
  });

  it('settles when the store fails before reading anything', async () => {
    const store = {
      description: 's3://bucket/prefix',
      write: async () => {
        throw new StorageUnavailableError('cannot reach s3://bucket/prefix', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
      },
    } as unknown as Store;
    await expect(writeArtifact(store, KEY, source(64 * 1024 * 1024), options)).rejects.toThrow(
      "cannot write artifact 'base.tar.zst' of backup 20261206T010000Z-oltp to s3://bucket/prefix: connection refused (ECONNREFUSED)",
    );
  });
});
