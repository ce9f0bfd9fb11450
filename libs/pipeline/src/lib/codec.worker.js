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

function lz4Compress(input) {
  lz4 ??= require('lz4-napi');
  return lz4.compressFrameSync(input, { contentChecksum: true });
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

/**
 * An ArrayBuffer holding exactly `buf`, safe to transfer (never a slice of Node's shared pool).
 * lz4-napi returns natively allocated buffers that V8 does not count, so the worker's GC ran too
 * rarely to free them and RSS grew with the artifact (measured: 395 → 315 MiB peak on a 970 MiB
 * backup): they are always copied into a V8-accounted ArrayBuffer and left to die young.
 */
function exactArrayBuffer(buf, alwaysCopy) {
  if (!alwaysCopy && buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength) return buf.buffer;
  const copy = new ArrayBuffer(buf.byteLength);
  new Uint8Array(copy).set(buf);
  return copy;
}

// Loaded in the main thread (InlineFrameCompressor), it only lends its compress().
module.exports = { compress };
if (parentPort) parentPort.on('message', (job) => {
  try {
    const output = compress(job.codec, job.level, Buffer.from(job.input, job.offset ?? 0, job.length));
    const buffer = exactArrayBuffer(output, job.codec === 'lz4');
    parentPort.postMessage({ id: job.id, output: buffer, length: output.byteLength }, [buffer]);
  } catch (error) {
    parentPort.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
  }
});
