import { Writable } from 'node:stream';

/** Called once a chunk written to a ReleasingWriter is no longer held by anyone downstream. */
export type ChunkReleaseListener = (chunk: Buffer) => void;

/** A sink that says when it is done with each chunk written to it (ReleasingWriter, DirectTarSplitter). */
export interface ChunkReleasingSink {
  onRelease(listener: ChunkReleaseListener): void;
}

export function releasesChunks(sink: unknown): sink is ChunkReleasingSink {
  return typeof (sink as Partial<ChunkReleasingSink> | null)?.onRelease === 'function';
}

/**
 * A Writable in front of another (a child's stdin) that tells, chunk by chunk, when the target's
 * write callback fired: the bytes are in the kernel, and nothing downstream holds the chunk any
 * more. A producer that owns its chunks' memory (OffloadedZstdDecompressStream) can then reuse
 * it instead of allocating fresh memory for every MiB, whose page faults cost more than the decoding.
 *
 * Writes go to the target one at a time. A target that fails (the child exited) is not an error
 * here: the chunks are dropped, as a pipe() into it would drop them, and the child's own exit
 * status says what went wrong.
 */
export class ReleasingWriter extends Writable implements ChunkReleasingSink {
  private target: NodeJS.WritableStream | null = null;
  private broken = false;
  private listener: ChunkReleaseListener | null = null;

  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }

  /** Where the bytes go: set once, before the first write (ProcessRunner does, as it spawns). */
  attach(target: NodeJS.WritableStream): void {
    this.target = target;
    target.on('error', () => (this.broken = true));
  }

  /** The one listener told of released chunks (readArtifact connects the decoder). */
  onRelease(listener: ChunkReleaseListener): void {
    this.listener = listener;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const target = this.target;
    if (!target || this.broken) {
      this.release(chunk);
      return callback();
    }
    target.write(chunk, (error) => {
      if (error) this.broken = true;
      this.release(chunk);
      callback();
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.target || this.broken) return callback();
    this.target.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    (this.target as (NodeJS.WritableStream & { destroy?: () => void }) | null)?.destroy?.();
    callback(error);
  }

  private release(chunk: Buffer): void {
    this.listener?.(chunk);
  }
}
