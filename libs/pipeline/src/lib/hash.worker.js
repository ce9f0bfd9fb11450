'use strict';
// SHA-256 worker of an offloaded digest (sha256-hasher.ts) and of the chunk hasher (chunk-hasher.ts).
// Plain CommonJS so the same file runs under ts-jest (source tree) and from dist/ (tsconfig.build.json
// copies *.worker.js).
//
// Protocol, in order per `id` (absent for the single digest of sha256-hasher.ts; digests of
// different ids may interleave):
//   in { id?, data: ArrayBuffer, offset?, length } (transferred) → out { ack: true, id?, data } (transferred back)
//   in { id?, done: true }                                       → out { id?, digest: hex, bytes }
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');

const running = new Map();
parentPort.on('message', (message) => {
  let state = running.get(message.id);
  if (!state) {
    state = { hash: createHash('sha256'), bytes: 0 };
    running.set(message.id, state);
  }
  if (message.done) {
    running.delete(message.id);
    parentPort.postMessage({ id: message.id, digest: state.hash.digest('hex'), bytes: state.bytes });
    return;
  }
  state.hash.update(new Uint8Array(message.data, message.offset ?? 0, message.length));
  state.bytes += message.length;
  parentPort.postMessage({ ack: true, id: message.id, data: message.data }, [message.data]);
});
