import { Transform, TransformCallback } from 'node:stream';
import { IntegrityError } from '@rookery/core';
import { ByteQueue } from './byte-queue';

interface Lz4Natives {
  /** The `lz4` package's native bindings (see codec.worker.js): block decoding into our buffers, xxHash32. */
  block: { uncompress(input: Buffer, output: Buffer): number };
  hash: { xxHash(input: Buffer, seed: number): number };
  /** lz4-napi, whose whole-frame decoder takes the frames the block path does not. */
  napi: typeof import('lz4-napi');
}

let natives: Lz4Natives | null = null;

/**
 * Loaded on the first LZ4 frame, not with the pipeline: a process that never reads LZ4 (a wal-get
 * of a zstd segment, one process per WAL file) does not map the two native modules (~3.7 MiB RSS).
 */
function lz4Natives(): Lz4Natives {
  natives ??= {
    block: require('lz4/build/Release/lz4.node') as Lz4Natives['block'],
    hash: require('lz4/build/Release/xxhash.node') as Lz4Natives['hash'],
    napi: require('lz4-napi') as typeof import('lz4-napi'),
  };
  return natives;
}

const FRAME_MAGIC = 0x184d2204;
const SKIPPABLE_MAGIC_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
const BLOCK_MAX_SIZES: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };
const UNCOMPRESSED_BLOCK_FLAG = 0x80000000;

/** Largest LZ4 frame the decoder will buffer; rookery writes frames of one chunk (≤ 64 MiB). */
export const LZ4_MAX_FRAME_BYTES = 64 * 1024 * 1024 + 1024 * 1024;

/**
 * A stream of concatenated LZ4 frames (lz4 frame format v1.6.x), decoded one frame at a time.
 * This decoder walks the frame structure itself (descriptor, block sizes, end mark, optional
 * checksums) and rejects anything malformed or cut short. Skippable frames are skipped. Frames of
 * independent blocks without block checksums (all that rookery writes) are decoded block by block
 * by the `lz4` package into buffers of ours, and their content checksum checked, before any of the
 * frame is pushed. Other frames, and any that fails that way, go whole to lz4-napi, which names
 * the fault (it decodes only the first frame of a buffer and does not insist on the end mark).
 * lz4-napi's natively allocated output is what the first path avoids: V8 did not count it, and
 * it was ~16 times slower (allocation included). Memory: one frame (at most LZ4_MAX_FRAME_BYTES
 * of input) plus its decoded output.
 */
export class Lz4FrameDecoder extends Transform {
  private readonly queue = new ByteQueue();
  /** Bytes consumed before the queue's first byte, for error positions. */
  private consumed = 0;
  private frames = 0;
  /** Parse position inside the current frame, relative to the queue's first byte; 0 means "at a frame start". */
  private cursor = 0;
  private blockChecksums = false;
  private contentChecksum = false;
  private blockMax = 0;
  private independentBlocks = false;
  private headerLength = 0;
  private skipRemaining = 0;

  constructor(
    private readonly label: string,
    private readonly maxFrameBytes = LZ4_MAX_FRAME_BYTES,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.append(chunk);
      this.drainFrames();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.queue.length > 0 || this.skipRemaining > 0) {
      callback(this.corrupt(`stream ends inside a frame (${this.queue.length} bytes left over)`));
    } else if (this.frames === 0) {
      callback(this.corrupt('stream holds no lz4 frame'));
    } else {
      callback();
    }
  }

  private append(chunk: Buffer): void {
    if (this.skipRemaining > 0) {
      const skipped = Math.min(this.skipRemaining, chunk.length);
      this.skipRemaining -= skipped;
      this.consumed += skipped;
      chunk = chunk.subarray(skipped);
    }
    if (chunk.length === 0) return;
    this.queue.push(chunk);
  }

  /** Parses as far as the buffered bytes allow, emitting every complete frame. */
  private drainFrames(): void {
    for (;;) {
      if (this.cursor === 0) {
        if (this.queue.length < 4) return;
        const magic = this.queue.uint32LE(0);
        if ((magic & SKIPPABLE_MAGIC_MASK) >>> 0 === SKIPPABLE_MAGIC) {
          if (this.queue.length < 8) return;
          const size = this.queue.uint32LE(4);
          this.queue.shiftPieces(8);
          this.consumed += 8;
          this.skip(size);
          continue;
        }
        if (magic !== FRAME_MAGIC) throw this.corrupt(`no lz4 frame magic number (found 0x${magic.toString(16)})`);
        if (!this.readDescriptor()) return;
      }
      if (!this.readBlocks()) return;
      this.emitFrame(this.queue.shift(this.cursor));
      this.consumed += this.cursor;
      this.cursor = 0;
    }
  }

  /** Frame descriptor: FLG, BD, optional content size and dictionary id, header checksum. */
  private readDescriptor(): boolean {
    if (this.queue.length < 6) return false;
    const flg = this.queue.byteAt(4);
    const bd = this.queue.byteAt(5);
    if (flg >> 6 !== 1) throw this.corrupt(`unsupported lz4 frame version ${flg >> 6}`);
    if (flg & 0x01) throw this.corrupt('lz4 frames with a dictionary are not supported');
    const blockMax = BLOCK_MAX_SIZES[(bd >> 4) & 0x07];
    if (blockMax === undefined) throw this.corrupt(`invalid lz4 block size code ${(bd >> 4) & 0x07}`);
    const headerLength = 4 + 2 + (flg & 0x08 ? 8 : 0) + 1;
    if (this.queue.length < headerLength) return false;
    this.blockChecksums = (flg & 0x10) !== 0;
    this.contentChecksum = (flg & 0x04) !== 0;
    this.blockMax = blockMax;
    this.independentBlocks = (flg & 0x20) !== 0;
    this.headerLength = headerLength;
    this.cursor = headerLength;
    return true;
  }

  /** Advances the cursor over whole blocks; true once the end mark (and checksum) is buffered. */
  private readBlocks(): boolean {
    for (;;) {
      if (this.cursor > this.maxFrameBytes) {
        throw this.corrupt(`lz4 frame larger than ${this.maxFrameBytes} bytes; only chunked frames are supported`);
      }
      if (this.queue.length < this.cursor + 4) return false;
      const word = this.queue.uint32LE(this.cursor);
      if (word === 0) {
        const end = this.cursor + 4 + (this.contentChecksum ? 4 : 0);
        if (this.queue.length < end) return false;
        this.cursor = end;
        return true;
      }
      const size = (word & ~UNCOMPRESSED_BLOCK_FLAG) >>> 0;
      if (size > this.blockMax) throw this.corrupt(`lz4 block of ${size} bytes exceeds the frame's ${this.blockMax}-byte maximum`);
      const next = this.cursor + 4 + size + (this.blockChecksums ? 4 : 0);
      if (this.queue.length < next) return false;
      this.cursor = next;
    }
  }

  private emitFrame(frame: Buffer): void {
    let output: Buffer[];
    try {
      output = this.decodeBlocks(frame) ?? [lz4Natives().napi.decompressFrameSync(frame)];
    } catch (cause) {
      throw this.corrupt(`lz4 frame ${this.frames} does not decode: ${(cause as Error).message}`, cause);
    }
    this.frames++;
    for (const block of output) if (block.length > 0) this.push(block);
  }

  /**
   * The frame's content, one buffer per block, when its blocks are independent and without block
   * checksums and every block and the content checksum check out; otherwise null.
   */
  private decodeBlocks(frame: Buffer): Buffer[] | null {
    if (!this.independentBlocks || this.blockChecksums) return null;
    const blocks: Buffer[] = [];
    let at = this.headerLength;
    for (let word = frame.readUInt32LE(at); word !== 0; word = frame.readUInt32LE(at)) {
      const size = (word & ~UNCOMPRESSED_BLOCK_FLAG) >>> 0;
      const block = frame.subarray(at + 4, at + 4 + size);
      at += 4 + size;
      if (word & UNCOMPRESSED_BLOCK_FLAG) {
        blocks.push(block);
        continue;
      }
      const decoded = Buffer.allocUnsafeSlow(this.blockMax);
      const length = lz4Natives().block.uncompress(block, decoded);
      if (length < 0) return null;
      blocks.push(decoded.subarray(0, length));
    }
    if (this.contentChecksum) {
      const content = blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
      if (lz4Natives().hash.xxHash(content, 0) >>> 0 !== frame.readUInt32LE(at + 4)) return null;
    }
    return blocks;
  }

  private corrupt(detail: string, cause?: unknown): IntegrityError {
    return new IntegrityError(`cannot decompress artifact '${this.label}' (lz4) at byte ${this.consumed}: ${detail}`, {
      cause,
      hint: 'the stored bytes are damaged or not in this format; run rookery verify on the backup',
    });
  }

  private skip(size: number): void {
    const available = Math.min(size, this.queue.length);
    this.queue.shiftPieces(available);
    this.consumed += available;
    this.skipRemaining = size - available;
  }
}
