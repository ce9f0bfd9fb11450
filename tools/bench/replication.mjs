#!/usr/bin/env node
// Replication benchmark (issue 6): throughput of rookery's verified copy (stream store → store
// through a sha256, then re-read and hash the destination) between two S3Proxy servers standing
// for two regions (s3 → s3), and from a filesystem store to S3 (fs → s3).
//
//   node tools/bench/replication.mjs [--mib 256] [--objects 4] [--out FILE]
//
// Needs the compiled libs (npx tsc -p tsconfig.build.json) and the S3Proxy jar in ~/.m2 (the test
// harness fetches it). MiB/s counts the object bytes once; each copy moves them twice (copy, then
// the verification read of the destination).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
const dist = (lib) => require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
const { createStore } = dist('storage');
const { copyVerified } = dist('repository');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const mib = Number(args.mib ?? 256);
const objects = Number(args.objects ?? 4);
const JAR = path.join(os.homedir(), '.m2/repository/org/gaul/s3proxy/2.6.0/s3proxy-2.6.0-jar-with-dependencies.jar');
const credentials = { accessKeyId: 'rookery-bench-identity', secretAccessKey: 'rookery-bench-credential-0123456789' };
const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-bench-replication-'));
const servers = [];

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startS3Proxy(name) {
  const port = await freePort();
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'data'), { recursive: true });
  const endpoint = `http://127.0.0.1:${port}`;
  writeFileSync(
    path.join(dir, 's3proxy.conf'),
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      's3proxy.ignore-unknown-headers=true',
      `s3proxy.identity=${credentials.accessKeyId}`,
      `s3proxy.credential=${credentials.secretAccessKey}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${path.join(dir, 'data')}`,
      'jclouds.identity=unused',
      'jclouds.credential=unused',
      '',
    ].join('\n'),
  );
  const child = spawn('java', ['-XX:+UseSerialGC', '-Xmx512m', '-jar', JAR, '--properties', path.join(dir, 's3proxy.conf')], {
    stdio: 'ignore',
    detached: true,
  });
  servers.push(child);
  for (let attempt = 0; attempt < 120; attempt += 1) {
    const up = await fetch(endpoint).then(
      () => true,
      () => false,
    );
    if (up) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  // Buckets are created with the SDK through a store's own client: S3Proxy's filesystem backend maps a bucket to a directory.
  mkdirSync(path.join(dir, 'data', 'bench'), { recursive: true });
  return `s3://bench/rookery?region=us-east-1&endpoint=${encodeURIComponent(endpoint)}&forcePathStyle=true`;
}

function payload(bytes) {
  // Incompressible bytes, generated as a stream (no whole object in memory).
  let left = bytes;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const size = Math.min(left, 1024 * 1024);
      left -= size;
      this.push(randomBytes(size));
    },
  });
}

async function measure(label, from, to, keys) {
  const started = process.hrtime.bigint();
  let bytes = 0;
  for (const key of keys) bytes += (await copyVerified(from, to, key)).bytes;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result = { label, objects: keys.length, mib: bytes / 1048576, seconds, mibPerSecond: bytes / 1048576 / seconds };
  console.log(
    `${label}: ${keys.length} × ${mib} MiB in ${seconds.toFixed(2)} s = ${result.mibPerSecond.toFixed(1)} MiB/s (copy + verification read)`,
  );
  return result;
}

try {
  const [primaryUrl, secondaryUrl] = [await startS3Proxy('primary'), await startS3Proxy('secondary')];
  const options = { s3: { credentials } };
  const primary = createStore(primaryUrl, options);
  const secondary = createStore(secondaryUrl, options);
  const local = createStore(`file://${path.join(work, 'fs-primary')}`);
  const keys = Array.from({ length: objects }, (_, i) => `oltp/backups/2026-11-26/bench/object-${i}`);
  for (const key of keys) {
    await primary.write(key, payload(mib * 1048576));
    await local.write(key, payload(mib * 1048576));
  }
  const results = [await measure('s3 → s3 (two S3Proxy servers)', primary, secondary, keys)];
  for (const key of keys) await secondary.remove(key);
  results.push(await measure('fs → s3', local, secondary, keys));
  const report = { date: new Date().toISOString(), cpus: os.cpus().length, mibPerObject: mib, results };
  if (args.out) writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  await Promise.all([primary.close(), secondary.close(), local.close()]);
} finally {
  for (const child of servers) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  rmSync(work, { recursive: true, force: true });
}
