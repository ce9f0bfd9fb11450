import { Writable } from 'node:stream';
import { IntegrityError } from '@rookery/core';
// zstd-napi's own binding (its DecompressStream allocates a fresh buffer per 128 KiB of output).
import { DCtx, ResetDirective } from 'zstd-napi/binding';

/** Decoded bytes handed to the consumer at a time: one buffer, reused for the whole stream. */
export const ZSTD_SINK_OUTPUT_BYTES = 1024 * 1024;

/**
 * zstd decompression contexts kept for reuse. A context holds the decoding window natively (up to
 * 8 MiB at the frame sizes rookery writes) that V8 does not see: one per decoded object, left to
 * the garbage collector, would pile up in a process that decodes many (the WAL prefetcher). At
 * most `max` are kept.
 */
export class ZstdContexts {
  private readonly free: DCtx[] = [];

  constructor(private readonly max = 4) {}

  /** A context at the start of a frame (reset when it was used before). */
  take(): DCtx {
    const context = this.free.pop();
    if (!context) return new DCtx();
    context.reset(ResetDirective.sessionOnly);
    return context;
  }

  give(context: DCtx): void {
    if (this.free.length < this.max) this.free.push(context);
  }
}

export interface ZstdSinkOptions {
  /** Artifact name used in error messages. */
  label: string;
  /** Where the decompression context comes from and goes back to (default: one of its own). */
  contexts?: ZstdContexts;
  /** Size of the one output buffer (default ZSTD_SINK_OUTPUT_BYTES). */
  outputBytes?: number;
}

/**
 * The end of a pipeline that decompresses a zstd stream (concatenated frames) into one output
 * buffer, reused: `consume` gets each run of decoded bytes and must be done with them (hashed,
 * written) when its promise resolves, since the next run overwrites them. Decoding a 16 MiB WAL
 * segment then allocates 1 MiB instead of 128 fresh 128 KiB buffers that stay in memory until the
 * garbage collector runs (V8 does not count their native memory towards its next collection
 * until 64 MiB of it piled up: the bulk of a wal-get's RSS).
 *
 * The same bytes and the same failures as createDecompressStream (zstd) followed by a Writable
 * that calls `consume`: an IntegrityError `cannot decompress artifact '<label>' (zstd): …` for
 * corrupt input and for a stream that ends inside a frame (apps' wal-get compares both paths).
 */
export function createZstdSink(consume: (decoded: Buffer) => Promise<void>, options: ZstdSinkOptions): Writable {
  const contexts = options.contexts ?? new ZstdContexts(1);
  const output = Buffer.allocUnsafeSlow(options.outputBytes ?? ZSTD_SINK_OUTPUT_BYTES);
  let context: DCtx | null = null;
  let inFrame = false;
  const corrupt = (cause: unknown) =>
    new IntegrityError(`cannot decompress artifact '${options.label}' (zstd): ${(cause as Error).message}`, {
      cause,
      hint: 'the stored bytes are damaged or not in this format; run rookery verify on the backup',
    });
  /** Decodes `chunk` whole, handing every filled stretch of the output to `consume`. */
  const decode = async (chunk: Buffer): Promise<void> => {
    context ??= contexts.take();
    let input = chunk;
    for (;;) {
      let step: ReturnType<DCtx['decompressStream']>;
      try {
        step = context.decompressStream(output, input);
      } catch (error) {
        throw corrupt(error);
      }
      const [remaining, produced, consumed] = step;
      if (produced > 0) await consume(output.subarray(0, produced));
      input = input.subarray(consumed);
      // As zstd-napi's DecompressStream: done with this chunk once it is used up and the output
      // was not filled (nothing left to flush), or a frame just ended.
      if (input.length === 0 && (produced < output.length || remaining === 0)) {
        inFrame = remaining !== 0;
        return;
      }
    }
  };
  const release = () => {
    if (context) contexts.give(context);
    context = null;
  };
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      decode(chunk).then(() => callback(), callback);
    },
    final(callback) {
      if (inFrame) {
        callback(corrupt(new Error('Stream ended in middle of compressed data frame')));
        return;
      }
      release();
      callback();
    },
    destroy(error, callback) {
      // A context left in the middle of a frame is dropped (take() resets reused ones anyway).
      context = null;
      callback(error);
    },
  });
}
