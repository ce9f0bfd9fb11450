'use strict';
// Compression worker of the codec pool (compression-pool.ts). Plain CommonJS so the same file runs
// under ts-jest (source tree) and from dist/ (tsconfig.build.json copies *.worker.js).
//
// Protocol, one job at a time per worker:
//   in:  { id, codec: 'gzip' | 'zstd' | 'lz4', level, input: ArrayBuffer, offset, length, giveBack? } (input transferred)
//   out: { id, output: ArrayBuffer, length, input? }            (output transferred; input too, with giveBack)
//    or: { id, error: string, input? }
// Every output is one complete, independent frame (gzip member, zstd frame, LZ4 frame) that the
// standard CLIs decode, so concatenating outputs in job order yields a valid stream.
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');

let zstd;
let zstdBinding;
let lz4;
const zstdCompressors = new Map();

// Each frame is compressed into a scratch buffer reused from job to job (Compressor.compress
// allocated a fresh compressBound-sized one per chunk, whose pages fault in every time) and copied
// out at its exact size: a frame that owns its whole ArrayBuffer transfers without another copy.
let zstdScratch = Buffer.alloc(0);

function zstdCompress(input, level) {
  zstd ??= require('zstd-napi');
  let compressor = zstdCompressors.get(level);
  if (!compressor) {
    compressor = new zstd.Compressor();
    // The content checksum makes `zstd -d` and our decompress stream detect corruption per frame.
    compressor.setParameters({ compressionLevel: level, checksumFlag: true });
    zstdCompressors.set(level, compressor);
  }
  zstdBinding ??= require('zstd-napi/binding');
  const bound = zstdBinding.compressBound(input.length);
  if (zstdScratch.length < bound) zstdScratch = Buffer.allocUnsafeSlow(bound);
  const length = compressor.cctx.compress2(zstdScratch, input);
  const frame = Buffer.allocUnsafeSlow(length);
  zstdScratch.copy(frame, 0, 0, length);
  return frame;
}

// LZ4 frames (format v1.6.x) are written here around the native block compressor and xxHash32 of
// the `lz4` package, which compress into and read from buffers of ours: each block goes into a
// scratch buffer reused from job to job, then once into the frame. lz4-napi's compressFrameSync
// returned natively allocated frames instead: V8 did not count them, the worker's GC ran too late,
// and glibc kept the freed memory in each worker thread's arena, ~100–140 MiB per worker, growing
// with the artifact. Each frame: independent blocks of at most 4 MiB, a block stored raw when it
// does not shrink, end mark, content checksum (xxHash32), no content size: the layout lz4-napi
// wrote, so `lz4 -d` and Lz4FrameDecoder read old and new artifacts alike.
const LZ4_BLOCK_MAX = 4 * 1024 * 1024;
/** Magic, FLG (version 01, independent blocks, content checksum), BD (4 MiB blocks), header checksum. */
const LZ4_FRAME_HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9]);
const LZ4_UNCOMPRESSED_BLOCK = 0x80000000;
let lz4Scratch = Buffer.alloc(0);

function lz4Compress(input) {
  // The package's two native bindings, by file name (its lib/ loads stream code we do not use).
  lz4 ??= { block: require('lz4/build/Release/lz4.node'), xxhash: require('lz4/build/Release/xxhash.node') };
  const bound = lz4.block.compressBound(LZ4_BLOCK_MAX);
  const blocks = [];
  let length = LZ4_FRAME_HEADER.length + 4 + 4;
  for (let offset = 0; offset < input.length; offset += LZ4_BLOCK_MAX) {
    const raw = input.subarray(offset, offset + LZ4_BLOCK_MAX);
    const start = blocks.length * bound;
    if (lz4Scratch.length < start + bound) lz4Scratch = growScratch(lz4Scratch, start + bound);
    const size = lz4.block.compress(raw, lz4Scratch.subarray(start, start + bound));
    const stored = size <= 0 || size >= raw.length;
    blocks.push({ data: stored ? raw : lz4Scratch.subarray(start, start + size), stored });
    length += 4 + (stored ? raw.length : size);
  }
  const frame = Buffer.allocUnsafeSlow(length);
  let at = LZ4_FRAME_HEADER.copy(frame, 0);
  for (const { data, stored } of blocks) {
    at = frame.writeUInt32LE(stored ? (data.length | LZ4_UNCOMPRESSED_BLOCK) >>> 0 : data.length, at);
    frame.set(data, at);
    at += data.length;
  }
  at = frame.writeUInt32LE(0, at);
  frame.writeUInt32LE(lz4.xxhash.xxHash(input, 0) >>> 0, at);
  return frame;
}

/** A scratch buffer of at least `length` bytes that keeps what `scratch` holds (the blocks so far). */
function growScratch(scratch, length) {
  const grown = Buffer.allocUnsafeSlow(length);
  scratch.copy(grown);
  return grown;
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
module.exports = { compress };
if (parentPort) parentPort.on('message', (job) => {
  // With giveBack the input's memory goes back to the caller, which reads the next chunk into it.
  const input = job.giveBack ? job.input : undefined;
  try {
    const output = compress(job.codec, job.level, Buffer.from(job.input, job.offset ?? 0, job.length));
    const buffer = exactArrayBuffer(output);
    parentPort.postMessage({ id: job.id, output: buffer, length: output.byteLength, input }, input ? [buffer, input] : [buffer]);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error), input }, input ? [input] : []);
  }
});
