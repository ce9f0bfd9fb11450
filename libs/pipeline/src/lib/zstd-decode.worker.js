'use strict';
// Streaming zstd decoder of an offloaded decompress stream (zstd-decode.ts). Plain CommonJS so
// the same file runs under ts-jest (source tree) and from dist/ (tsconfig.build.json copies *.worker.js).
//
// Protocol (one stream per worker, messages in order):
//   in  { input: ArrayBuffer, length }  (transferred)  compressed bytes → out { consumed: ArrayBuffer } once decoded
//                                                      (its memory, transferred back for the next batch)
//   in  { credit: n }                                   the stream may take n more outputs
//   in  { end: true }                                   no more input  → out { done: true } after the last output
//   in  { spare: ArrayBuffer }          (transferred)   an output the main thread is done with: decoded into again
//   out { output: ArrayBuffer, length } (transferred)   decoded bytes, in order; each uses one credit
//   out { error: string }                               corrupt or truncated input; nothing follows
//   in  { stop: true }                                  the stream is done or destroyed: the worker closes its port and exits
// The main thread stops the worker with { stop: true } rather than worker.terminate(): a
// terminate() that lands while decompressStream runs makes the binding throw a C++ Napi::Error
// it cannot hand to JavaScript any more, which aborts the whole process (seen on Node 22 when a
// restore into a full disk destroyed its stream). A message is handled between two calls.
// Outputs are sent only against credit, so a slow consumer stops the decoder instead of letting
// decoded bytes (up to ~1000× the input for empty pages) pile up in memory.
const { parentPort } = require('node:worker_threads');
const binding = require('zstd-napi/binding');

const OUTPUT_BYTES = 1024 * 1024;

const dctx = new binding.DCtx();
const inputs = [];
/** Outputs handed back: reused (warm pages) before any fresh memory is allocated. */
const spares = [];
let source = null;
let sourceMemory = null;
let output = null;
let filled = 0;
let credit = 0;
let inFrame = false;
let ended = false;
let failed = false;

function send() {
  const data = output.buffer;
  parentPort.postMessage({ output: data, length: filled }, [data]);
  output = null;
  filled = 0;
  credit--;
}

function pump() {
  while (!failed && credit > 0) {
    if (!source) {
      if (inputs.length === 0) break;
      source = inputs.shift();
      sourceMemory = source.buffer;
    }
    output ??= spares.pop() ?? Buffer.allocUnsafeSlow(OUTPUT_BYTES);
    const room = OUTPUT_BYTES - filled;
    const [status, produced, consumed] = dctx.decompressStream(output.subarray(filled), source);
    filled += produced;
    source = source.subarray(consumed);
    if (filled === OUTPUT_BYTES) send();
    if (source.length === 0 && (produced < room || status === 0)) {
      // This input is fully decoded (zstd holds nothing back once it had room to spare).
      inFrame = status !== 0;
      source = null;
      // zstd keeps nothing of its input once it returned: the memory goes back for reuse.
      parentPort.postMessage({ consumed: sourceMemory }, [sourceMemory]);
      sourceMemory = null;
    }
  }
  if (ended && !source && inputs.length === 0 && !failed) {
    if (inFrame) throw new Error('stream ended in the middle of a compressed frame');
    if (filled > 0) {
      if (credit === 0) return;
      send();
    }
    parentPort.postMessage({ done: true });
    ended = false;
  }
}

parentPort.on('message', (message) => {
  if (message.stop) {
    failed = true;
    parentPort.close();
    return;
  }
  try {
    if (message.spare) {
      if (message.spare.byteLength === OUTPUT_BYTES) spares.push(Buffer.from(message.spare));
      return;
    }
    if (message.input) inputs.push(Buffer.from(message.input, 0, message.length));
    else if (message.credit) credit += message.credit;
    else if (message.end) ended = true;
    pump();
  } catch (error) {
    failed = true;
    parentPort.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
});
