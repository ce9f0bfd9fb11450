#!/usr/bin/env node
// Cost of signing and verification on a whole backup (issue 13): `rookery backup` and
// `rookery verify` of one seeded PostgreSQL 15 cluster into two filesystem repositories, one with a
// signing key (integrity.keyFile: the manifest and the WAL system record are signed when the backup
// commits, and checked on every read) and one without. The runs interleave (signed first in odd
// rounds, unsigned first in even ones) so that both see the same load of a shared machine; the
// median of --rounds each is reported, with every run's time.
//
//   npx tsc -p tsconfig.build.json && node tools/bench/backup-signing.mjs [--scale 10] [--text-mb 100] [--rounds 3] [--keep]
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOKERY, parseArgs } from './lib/cli.mjs';
import { createCluster, mkPgDir, pgTempDir, psql, stopAllStarted } from './lib/cluster.mjs';
import { loadData } from './lib/data.mjs';
import { duBytes, runMonitored } from './lib/proc.mjs';

const args = parseArgs(process.argv.slice(2));
const scale = Number(args.scale ?? 10);
const textMb = Number(args['text-mb'] ?? 100);
const rounds = Number(args.rounds ?? 3);

function log(message) {
  process.stderr.write(`[backup-signing] ${message}\n`);
}

async function rookery(argv) {
  const run = await runMonitored(process.execPath, [ROOKERY, ...argv]);
  if (run.code !== 0) throw new Error(`rookery ${argv.join(' ')} exited ${run.code}: ${run.stderr.toString().slice(-2000)}`);
  return run;
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const root = pgTempDir('rookery-signing-bench-');
try {
  const cluster = await createCluster(mkPgDir(path.join(root, 'pg')));
  loadData(cluster, { scale, textMb, log });
  const clusterBytes = Number(psql(cluster.conn, 'select sum(pg_database_size(oid)) from pg_database'));
  const key = path.join(root, 'integrity.key');
  writeFileSync(key, `${'5a'.repeat(32)}\n`, { mode: 0o600 });
  const variants = ['signed', 'unsigned'].map((name) => {
    const config = path.join(root, `${name}.yaml`);
    writeFileSync(
      config,
      [
        `repositories: ['file://${path.join(root, `repo-${name}`)}']`,
        ...(name === 'signed' ? ['integrity:', `  keyFile: ${key}`] : []),
      ].join('\n') + '\n',
    );
    return { name, config, backup: [], verify: [], repo: path.join(root, `repo-${name}`) };
  });
  for (let round = 1; round <= rounds; round++) {
    for (const variant of round % 2 === 1 ? variants : [...variants].reverse()) {
      const backup = await rookery(['backup', '--tier', 'oltp', '--pg-url', cluster.url, '--json', '--config', variant.config]);
      const id = JSON.parse(backup.stdout.toString()).id;
      const verify = await rookery(['verify', '--tier', 'oltp', '--backup', id, '--config', variant.config]);
      variant.backup.push(backup.wallS);
      variant.verify.push(verify.wallS);
      log(`round ${round} ${variant.name}: backup ${backup.wallS.toFixed(2)} s, verify ${verify.wallS.toFixed(2)} s`);
    }
  }
  const stored = duBytes(variants[0].repo) / rounds;
  console.log(
    `\nseeded cluster of ${(clusterBytes / 2 ** 20).toFixed(0)} MiB (pgbench scale ${scale} + ${textMb} MiB mail); ~${(stored / 2 ** 20).toFixed(0)} MiB stored per backup\n`,
  );
  console.log('| repository | backup (median) | verify (median) | backup runs | verify runs |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const variant of variants) {
    const list = (values) => values.map((value) => value.toFixed(2)).join(', ');
    console.log(
      `| ${variant.name} | ${median(variant.backup).toFixed(2)} s | ${median(variant.verify).toFixed(2)} s | ${list(variant.backup)} | ${list(variant.verify)} |`,
    );
  }
} finally {
  stopAllStarted();
  if (!args.keep) rmSync(root, { recursive: true, force: true });
}
