#!/usr/bin/env node
// Codec benchmark for libs/pipeline, run over the compiled output (npm run build first):
//
//   node tools/bench/codecs.mjs [input-file] [--runs N] [--mb SIZE]
//
// Without a file it generates (once, cached in the OS temp directory) ~200 MB of table-like input:
// pg_dump COPY-style rows with ids, timestamps, enum-ish text, amounts and JSON, plus 8 % of
// random bytes standing in for already-compressed TOAST values. Input is held in memory so the
// figures are codec and pipeline throughput, not disk speed. Reports MB/s of logical bytes
// (MB = 10^6 bytes) and ratio = logical / stored; each figure is the best of N runs.
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
require(path.join(root, 'tools/runtime/register-aliases.cjs'));
const pipelineLib = require(path.join(root, 'dist/libs/pipeline/src/index.js'));
const {
  createCompressStream,
  createDecompressStream,
  createDigestStream,
  createEncryptStream,
  createDecryptStream,
  shutdownCompressionPool,
} = pipelineLib;

const MB = 1e6;
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  if (index === -1) return fallback;
  const [value] = args.splice(index, 2).slice(1);
  return Number(value);
};
const runs = option('--runs', 2);
const sizeMb = option('--mb', 200);
const file = args[0] ?? generatedInput(sizeMb);
const input = readFileSync(file);

function generatedInput(megabytes) {
  const target = path.join(tmpdir(), `rookery-bench-v2-${megabytes}mb.dat`);
  if (existsSync(target)) return target;
  // mulberry32: deterministic, so every run and every machine measures the same bytes.
  let seed = 0x2f6b3c1d;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const hex = (digits) => Array.from({ length: digits }, () => '0123456789abcdef'[Math.floor(rand() * 16)]).join('');
  const statuses = ['pending', 'paid', 'shipped', 'delivered', 'refunded', 'cancelled'];
  const cities = ['Lisbon', 'Porto', 'Berlin', 'Hamburg', 'Lyon', 'Paris', 'Madrid', 'Sevilla', 'Milano', 'Torino', 'Wien', 'Praha'];
  const names = ['ana', 'joao', 'maria', 'pedro', 'lena', 'jonas', 'chloe', 'lucas', 'sofia', 'marco', 'eva', 'tomas', 'ines', 'hugo'];
  const words = 'please deliver to the back door call before arrival gift wrap fragile leave with neighbour office hours only'.split(' ');
  const limit = megabytes * MB;
  const parts = [];
  let length = 0;
  let id = 1_000_000;
  while (length < limit) {
    const rows = [];
    for (let i = 0; i < 2000; i++, id++) {
      const when = `2026-11-${String(1 + Math.floor(rand() * 28)).padStart(2, '0')} ${String(Math.floor(rand() * 24)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}:${String(Math.floor(rand() * 60)).padStart(2, '0')}.${String(Math.floor(rand() * 1e6)).padStart(6, '0')}+00`;
      const name = `${pick(names)}.${pick(names)}${Math.floor(rand() * 1000)}`;
      const note = rand() < 0.3 ? Array.from({ length: 3 + Math.floor(rand() * 6) }, () => pick(words)).join(' ') : '\\N';
      rows.push(
        `${id}\t${hex(8)}-${hex(4)}-4${hex(3)}-${hex(4)}-${hex(12)}\t${Math.floor(rand() * 250_000)}\t${name}@example.com\t${when}\t${pick(statuses)}\t` +
          `${(rand() * 900 + 5).toFixed(2)}\tEUR\t${pick(cities)}\t${note}\t{"items":${1 + Math.floor(rand() * 6)},"channel":"${rand() < 0.7 ? 'web' : 'app'}","sku":"SKU-${Math.floor(rand() * 99999)}"}\n`,
      );
    }
    const block = Buffer.from(rows.join(''));
    parts.push(block);
    length += block.length;
    // About 8 % of the bytes: already-compressed TOAST values and images.
    if (rand() < 0.1) {
      const toast = randomBytes(Math.floor(block.length * 0.8));
      parts.push(toast);
      length += toast.length;
    }
  }
  writeFileSync(target, Buffer.concat(parts).subarray(0, limit));
  return target;
}

function source(buffer, piece = 1024 * 1024) {
  let offset = 0;
  return new Readable({
    highWaterMark: piece,
    read() {
      if (offset >= buffer.length) return void this.push(null);
      this.push(buffer.subarray(offset, offset + piece));
      offset += piece;
    },
  });
}

function collector(keep) {
  const chunks = [];
  let bytes = 0;
  const sink = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk, _encoding, callback) {
      bytes += chunk.length;
      if (keep) chunks.push(chunk);
      callback();
    },
  });
  return { sink, bytes: () => bytes, buffer: () => Buffer.concat(chunks) };
}

async function timed(makeStreams, data, keep = false) {
  let best = Infinity;
  let output;
  for (let run = 0; run < runs; run++) {
    const out = collector(keep && run === 0);
    const started = process.hrtime.bigint();
    await pipeline(source(data), ...makeStreams(), out.sink);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    best = Math.min(best, seconds);
    if (keep && run === 0) output = out.buffer();
    else if (!keep) output = { length: out.bytes() };
  }
  return { seconds: best, output };
}

const rows = [];
function row(name, workers, chunkMiB, compressMBs, ratio, decompressMBs) {
  rows.push({ name, workers, chunkMiB, compressMBs, ratio, decompressMBs });
  console.log(
    `${name.padEnd(22)} ${String(workers).padStart(7)} ${String(chunkMiB).padStart(9)} ${compressMBs.toFixed(0).padStart(12)} ${ratio.toFixed(2).padStart(7)} ${decompressMBs === null ? '           -' : decompressMBs.toFixed(0).padStart(12)}`,
  );
}

console.log(
  `input: ${file} (${(input.length / MB).toFixed(1)} MB), ${availableParallelism()} cores, node ${process.version}, best of ${runs}`,
);
console.log(`${'codec'.padEnd(22)} workers chunk MiB  compress MB/s  ratio  decompress MB/s`);

const FOUR_MIB = 4 * 1024 * 1024;
const codecs = [
  ['gzip', 1],
  ['gzip', 6],
  ['zstd', 1],
  ['zstd', 3],
  ['zstd', -1],
  ['lz4', 0],
];
// Warm-up: start the pool's workers and load the codecs before anything is timed.
await timed(
  () => [createCompressStream({ codec: 'zstd', level: 1 }, { workers: 2, chunkSize: FOUR_MIB })],
  input.subarray(0, 32 * FOUR_MIB),
);
for (const [codec, level] of codecs) {
  let decompressMBs = null;
  for (const workers of [1, 2]) {
    const spec = { codec, level };
    const compressed = await timed(() => [createCompressStream(spec, { workers, chunkSize: FOUR_MIB })], input, true);
    if (decompressMBs === null) {
      const restored = await timed(() => [createDecompressStream(spec)], compressed.output);
      if (restored.output.length !== input.length)
        throw new Error(`${codec}: decompressed ${restored.output.length} bytes, expected ${input.length}`);
      decompressMBs = input.length / MB / restored.seconds;
    }
    row(
      `${codec} ${codec === 'lz4' ? '' : level}`.trim(),
      workers,
      4,
      input.length / MB / compressed.seconds,
      input.length / compressed.output.length,
      workers === 1 ? decompressMBs : null,
    );
  }
}

console.log('\nchunk size (zstd 1, 2 workers)');
for (const chunkMiB of [1, 2, 4, 8, 16]) {
  const spec = { codec: 'zstd', level: 1 };
  const compressed = await timed(() => [createCompressStream(spec, { workers: 2, chunkSize: chunkMiB * 1024 * 1024 })], input, true);
  row('zstd 1', 2, chunkMiB, input.length / MB / compressed.seconds, input.length / compressed.output.length, null);
}

console.log('\nother stages (single stream, main thread)');
const key = randomBytes(32);
const digest = await timed(() => [createDigestStream()], input);
console.log(`sha256 digest           ${(input.length / MB / digest.seconds).toFixed(0).padStart(6)} MB/s`);
const sealed = await timed(() => [createEncryptStream(key)], input, true);
console.log(`aes-256-gcm encrypt     ${(input.length / MB / sealed.seconds).toFixed(0).padStart(6)} MB/s`);
const opened = await timed(() => [createDecryptStream(key)], sealed.output);
console.log(`aes-256-gcm decrypt     ${(input.length / MB / opened.seconds).toFixed(0).padStart(6)} MB/s`);

console.log('\nbackup pipeline: digest → compress → encrypt → digest (2 workers, 4 MiB chunks)');
for (const [codec, level] of [
  ['zstd', 1],
  ['zstd', 3],
  ['lz4', 0],
]) {
  const full = await timed(
    () => [
      createDigestStream(),
      createCompressStream({ codec, level }, { workers: 2, chunkSize: FOUR_MIB }),
      createEncryptStream(key),
      createDigestStream(),
    ],
    input,
  );
  console.log(`${`${codec} ${codec === 'lz4' ? '' : level}`.padEnd(22)} ${(input.length / MB / full.seconds).toFixed(0).padStart(6)} MB/s`);
}

await shutdownCompressionPool();
