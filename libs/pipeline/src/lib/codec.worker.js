'use strict';
// Compression worker of the codec pool (compression-pool.ts). Plain CommonJS so the same file runs
// under ts-jest (source tree) and from dist/ (tsconfig.build.json copies *.worker.js).
//
// Protocol, one job at a time per worker:
//   in:  { id, codec: 'gzip' | 'zstd' | 'lz4', level, input: ArrayBuffer, offset, length } (input transferred)
//   out: { id, output: ArrayBuffer, length }                                         (output transferred)
//    or: { id, error: string }
// Every output is one complete, independent frame (gzip member, zstd frame, LZ4 frame) that the
// standard CLIs decode, so concatenating outputs in job order yields a valid stream.
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');

let zstd;
let lz4;
const zstdCompressors = new Map();

function zstdCompress(input, level) {
  zstd ??= require('zstd-napi');
  let compressor = zstdCompressors.get(level);
  if (!compressor) {
    compressor = new zstd.Compressor();
    // The content checksum makes `zstd -d` and our decompress stream detect corruption per frame.
    compressor.setParameters({ compressionLevel: level, checksumFlag: true });
    zstdCompressors.set(level, compressor);
  }
  return compressor.compress(input);
}

// LZ4 frames (format v1.6.x) are written here around lz4-wasm-nodejs's block compressor. lz4-napi's
// compressFrameSync returned natively allocated frames: V8 did not count them, the worker's GC ran
// too late, and glibc kept the freed memory in each worker thread's arena, ~100–140 MiB per worker,
// growing with the artifact. The WebAssembly compressor works in its own linear memory, which grows
// to one block's input and output once and is reused; what it returns is an ordinary JS buffer.
// Each frame: independent blocks of at most 4 MiB, a block stored raw when it does not shrink, end
// mark, content checksum (xxHash32), no content size: the layout lz4-napi wrote, so `lz4 -d` and
// Lz4FrameDecoder read old and new artifacts alike.
const LZ4_BLOCK_MAX = 4 * 1024 * 1024;
/** FLG: version 01, independent blocks, content checksum. BD: 4 MiB maximum block size. */
const LZ4_FLG = 0x64;
const LZ4_BD = 0x70;
const LZ4_UNCOMPRESSED_BLOCK = 0x80000000;
let lz4FrameHeader;

function lz4Compress(input) {
  lz4 ??= require('lz4-wasm-nodejs');
  lz4FrameHeader ??= Buffer.from([0x04, 0x22, 0x4d, 0x18, LZ4_FLG, LZ4_BD, (xxh32(Buffer.from([LZ4_FLG, LZ4_BD])) >>> 8) & 0xff]);
  const blocks = [];
  let length = lz4FrameHeader.length + 4 + 4;
  for (let offset = 0; offset < input.length; offset += LZ4_BLOCK_MAX) {
    const raw = input.subarray(offset, offset + LZ4_BLOCK_MAX);
    // lz4-wasm-nodejs puts the uncompressed size (4 bytes) before the block.
    const sized = lz4.compress(raw);
    const stored = sized.length - 4 >= raw.length;
    blocks.push({ data: stored ? raw : sized.subarray(4), stored });
    length += 4 + (stored ? raw.length : sized.length - 4);
  }
  const frame = Buffer.allocUnsafeSlow(length);
  let at = lz4FrameHeader.copy(frame, 0);
  for (const { data, stored } of blocks) {
    at = frame.writeUInt32LE(stored ? (data.length | LZ4_UNCOMPRESSED_BLOCK) >>> 0 : data.length, at);
    frame.set(data, at);
    at += data.length;
  }
  at = frame.writeUInt32LE(0, at);
  frame.writeUInt32LE(xxh32(input), at);
  return frame;
}

const PRIME32_1 = 0x9e3779b1;
const PRIME32_2 = 0x85ebca77;
const PRIME32_3 = 0xc2b2ae3d;
const PRIME32_4 = 0x27d4eb2f;
const PRIME32_5 = 0x165667b1;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function rotl32(x, r) {
  return (x << r) | (x >>> (32 - r));
}

function lane(acc, word) {
  return Math.imul(rotl32((acc + Math.imul(word, PRIME32_2)) | 0, 13), PRIME32_1);
}

function word32(bytes, i) {
  return bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
}

/**
 * xxHash32 of `bytes` with seed 0: the LZ4 frame's content and header checksums. The stripes and
 * the tail are separate functions so that the optimised stripe loop is not thrown away at every
 * call on reaching a tail that a whole chunk never has (~8 GB/s instead of ~3).
 */
function xxh32(bytes) {
  const stripes = bytes.length >>> 4;
  let h = stripes > 0 ? xxh32Stripes(bytes, stripes) : PRIME32_5 | 0;
  h = xxh32Tail(bytes, stripes * 16, (h + bytes.length) | 0);
  h ^= h >>> 15;
  h = Math.imul(h, PRIME32_2);
  h ^= h >>> 13;
  h = Math.imul(h, PRIME32_3);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The four lanes over the first `stripes` 16-byte stripes, merged. Aligned input is read as words. */
function xxh32Stripes(bytes, stripes) {
  let v1 = (PRIME32_1 + PRIME32_2) | 0;
  let v2 = PRIME32_2 | 0;
  let v3 = 0;
  let v4 = -PRIME32_1 | 0;
  if (LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, stripes * 4);
    for (let w = 0; w < words.length; w += 4) {
      v1 = lane(v1, words[w]);
      v2 = lane(v2, words[w + 1]);
      v3 = lane(v3, words[w + 2]);
      v4 = lane(v4, words[w + 3]);
    }
  } else {
    for (let b = 0; b < stripes * 16; b += 16) {
      v1 = lane(v1, word32(bytes, b));
      v2 = lane(v2, word32(bytes, b + 4));
      v3 = lane(v3, word32(bytes, b + 8));
      v4 = lane(v4, word32(bytes, b + 12));
    }
  }
  return (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0;
}

/** Folds the bytes from `i` on (fewer than 16) into `h`. */
function xxh32Tail(bytes, i, h) {
  for (; i + 4 <= bytes.length; i += 4) h = Math.imul(rotl32((h + Math.imul(word32(bytes, i), PRIME32_3)) | 0, 17), PRIME32_4);
  for (; i < bytes.length; i++) h = Math.imul(rotl32((h + Math.imul(bytes[i], PRIME32_5)) | 0, 11), PRIME32_1);
  return h;
}

function compress(codec, level, input) {
  switch (codec) {
    case 'gzip':
      return zlib.gzipSync(input, { level });
    case 'zstd':
      return zstdCompress(input, level);
    case 'lz4':
      return lz4Compress(input);
    default:
      throw new Error(`unknown codec '${codec}'`);
  }
}

/** An ArrayBuffer holding exactly `buf`, safe to transfer (never a slice of Node's shared pool). */
function exactArrayBuffer(buf) {
  if (buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}

// Loaded in the main thread (InlineFrameCompressor), it only lends its compress().
module.exports = { compress, xxh32 };
if (parentPort) parentPort.on('message', (job) => {
  try {
    const output = compress(job.codec, job.level, Buffer.from(job.input, job.offset ?? 0, job.length));
    const buffer = exactArrayBuffer(output);
    parentPort.postMessage({ id: job.id, output: buffer, length: output.byteLength }, [buffer]);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
