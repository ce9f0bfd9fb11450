'use strict';
// SHA-256 worker of an offloaded digest (sha256-hasher.ts). Plain CommonJS so the same file runs
// under ts-jest (source tree) and from dist/ (tsconfig.build.json copies *.worker.js).
//
// Protocol, in order:  in { data: ArrayBuffer, length } (transferred) → out { ack: true, data } (transferred back for reuse)
//                      in { done: true }                              → out { digest: hex }
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');

const hash = createHash('sha256');
parentPort.on('message', (message) => {
  if (message.done) {
    parentPort.postMessage({ digest: hash.digest('hex') });
    return;
  }
  hash.update(new Uint8Array(message.data, 0, message.length));
  parentPort.postMessage({ ack: true, data: message.data }, [message.data]);
});
