#!/usr/bin/env node
// Expire benchmark: a synthetic oltp history of --backups base backups (one small artifact each,
// one every 12 hours) and --wal WAL segments (small objects with real keys), written into a
// filesystem repository and into an S3Proxy bucket. Then, for each store:
//
//   plan    engine.expire({ dryRun: true })  list manifests, WAL, holds, folders; plan
//   expire  engine.expire()                  the same under the tier lock, then every delete
//
// With 90 d retention and 250 days of history about two thirds of it goes. Timings are wall
// clock of one run each (the plan is re-read by the expire, as in production).
//
//   node tools/bench/expire.mjs [--backups 500] [--wal 10000] [--stores fs,s3] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './lib/cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
const dist = (lib) => require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
const { startS3Proxy, s3StoreUrl, makeManifest } = dist('testing');
const { buildConfig } = dist('config');
const { formatLsn, parseWalFileName, walSegmentFileName } = dist('core');
const { repositoryLayout, walLayout } = dist('repository');
const { createEngine } = dist('engine');

const args = parseArgs(process.argv.slice(2));
const BACKUPS = Number(args.backups ?? 500);
const WAL = Number(args.wal ?? 10_000);
const STORES = String(args.stores ?? 'fs,s3').split(',');
const DAY = 86_400_000;
const SEGMENT = 16n * 1024n * 1024n;
const WRITE_CONCURRENCY = 32;

function log(message) {
  process.stderr.write(`[expire-bench] ${message}\n`);
}

async function inBatches(items, work) {
  for (let index = 0; index < items.length; index += WRITE_CONCURRENCY)
    await Promise.all(items.slice(index, index + WRITE_CONCURRENCY).map(work));
}

/** 500 backups 12 h apart ending now, WAL segments spread evenly between their starts. */
async function writeHistory(store) {
  const now = Date.now();
  const perBackup = Math.floor(WAL / BACKUPS);
  const backups = Array.from({ length: BACKUPS }, (_, index) => {
    const at = new Date(now - ((BACKUPS - index) * DAY) / 2);
    const start = BigInt(1 + index * perBackup) * SEGMENT + 0x28n;
    const id = `${at
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}Z$/, 'Z')}-oltp`;
    return makeManifest({
      id,
      startedAt: at.toISOString(),
      finishedAt: at.toISOString(),
      startLsn: formatLsn(start),
      stopLsn: formatLsn(start + 0x100n),
      retentionUntil: new Date(at.getTime() + 90 * DAY).toISOString(),
      bytes: 16,
      storedBytes: 16,
      artifacts: [
        {
          name: 'base.tar.zst',
          kind: 'base-tar',
          bytes: 16,
          storedBytes: 16,
          sha256: 'a'.repeat(64),
          logicalSha256: 'b'.repeat(64),
          compression: { codec: 'zstd', level: 1 },
          encryption: { algorithm: 'none' },
        },
      ],
    });
  });
  await inBatches(backups, async (manifest) => {
    await store.write(repositoryLayout.artifactKey('oltp', manifest.id, new Date(manifest.startedAt), 'base.tar.zst'), Buffer.alloc(16));
    await store.write(
      repositoryLayout.manifestKey('oltp', manifest.id, new Date(manifest.startedAt)),
      Buffer.from(JSON.stringify(manifest)),
    );
  });
  const segments = Array.from({ length: WAL }, (_, index) => parseWalFileName(walSegmentFileName(1, BigInt(index + 1))));
  await inBatches(segments, (file) => store.write(walLayout.key('oltp', file, 'c'.repeat(64), 'zstd', false), Buffer.alloc(32)));
}

async function measure(name, url) {
  const engine = await createEngine(buildConfig({ repositories: [url] }, 'bench'), { actor: 'bench' });
  try {
    const store = engine.context.repository.store;
    let started = process.hrtime.bigint();
    await writeHistory(store);
    const writeSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    log(`${name}: history written in ${writeSeconds.toFixed(1)} s`);
    started = process.hrtime.bigint();
    const plan = await engine.expire({ tier: 'oltp', dryRun: true });
    const planSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    started = process.hrtime.bigint();
    const result = await engine.expire({ tier: 'oltp' });
    const expireSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    const row = {
      store: name,
      backups: BACKUPS,
      walSegments: WAL,
      expiredBackups: result.deleted.backups.length,
      expiredWal: result.deleted.walFiles,
      objectsDeleted: result.deleted.objects,
      planSeconds: Number(planSeconds.toFixed(2)),
      expireSeconds: Number(expireSeconds.toFixed(2)),
      deletesPerSecond: Math.round(result.deleted.objects / expireSeconds),
    };
    if (plan.plan.expire.backups.length !== result.deleted.backups.length)
      throw new Error('the expire deleted other backups than the dry run planned');
    log(`${name}: ${JSON.stringify(row)}`);
    return row;
  } finally {
    await engine.close();
  }
}

const rows = [];
const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-expire-bench-'));
let s3 = null;
try {
  if (STORES.includes('fs')) rows.push(await measure('filesystem', `file://${path.join(work, 'repo')}`));
  if (STORES.includes('s3')) {
    s3 = await startS3Proxy();
    await s3.createBucket('expire-bench');
    process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
    process.env.AWS_REGION = s3.region;
    rows.push(await measure('s3proxy', s3StoreUrl(s3, 'expire-bench', 'rookery')));
  }
} finally {
  await s3?.stop();
  rmSync(work, { recursive: true, force: true });
}
const report = {
  machine: {
    cpus: os.cpus().length,
    load: os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(' '),
  },
  rows,
};
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
if (args.out) writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
