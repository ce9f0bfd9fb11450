#!/usr/bin/env node
// Logical backup benchmark on the content tier: one throwaway PostgreSQL 15 cluster seeded with
// seedContent (--size-mb of content_objects-dominated data), then, one after the other on the same
// data and machine:
//
//   rookery backup --tier content        per codec/level (pg_dump -Z0 → parallel pipeline → file store)
//   pg_dump -Fc (zlib 6, pg_dump's default)  and  pg_dump -Fc -Z0 (no compression)
//   pg_dump -Fd -j 2 (zlib 6)
//   rookery restore --target-url (streamed, 1 job) and --jobs 2
//   pg_restore -j 2 from the -Fd dump, pg_restore from the -Fc file
//
// Reports wall time, MB/s of the database size, and stored bytes. Restores are timed into fresh
// databases of the same cluster.
//
//   node tools/bench/logical.mjs [--size-mb 300] [--levels zstd:1,zstd:3,zstd:9,zstd:15,lz4:1,gzip:6] [--out FILE] [--keep]
import { createRequire } from 'node:module';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGBIN, createCluster, mkPgDir, pgTempDir, psql, stopAllStarted } from './lib/cluster.mjs';
import { duBytes, sh } from './lib/proc.mjs';
import { parseArgs } from './lib/cli.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOKERY = path.join(ROOT, 'bin', 'rookery.js');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
const { seedContent } = require(path.join(ROOT, 'dist', 'libs', 'testing', 'src', 'index.js'));

const args = parseArgs(process.argv.slice(2));
const sizeMb = Number(args['size-mb'] ?? 300);
const levels = String(args.levels ?? 'zstd:1,zstd:3,zstd:9,zstd:15,lz4:1,gzip:6')
  .split(',')
  .map((entry) => {
    const [codec, level] = entry.split(':');
    return { codec, level: Number(level) };
  });

function log(message) {
  process.stderr.write(`[logical-bench] ${message}\n`);
}

function timed(fn) {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function rookery(configFile, argv) {
  return sh(process.execPath, [ROOKERY, ...argv, '--config', configFile]);
}

const root = pgTempDir('rookery-logical-bench-');
const results = [];
try {
  const cluster = await createCluster(mkPgDir(path.join(root, 'pg')));
  log(`seeding ${sizeMb} MiB of content data`);
  const seeded = await seedContent(cluster.url, { sizeMb });
  const dbUrl = seeded.url;
  const dbBytes = seeded.databaseBytes;
  log(`database ${(dbBytes / 2 ** 20).toFixed(0)} MiB in ${(seeded.elapsedMs / 1000).toFixed(1)} s`);
  const mbps = (seconds) => (dbBytes / 2 ** 20 / seconds).toFixed(1);
  const record = (name, seconds, storedBytes, note = '') => {
    results.push({ name, seconds, mbps: mbps(seconds), storedBytes, note });
    log(`${name}: ${seconds.toFixed(2)} s, ${storedBytes === null ? '-' : `${(storedBytes / 2 ** 20).toFixed(1)} MiB`} ${note}`);
  };
  const conninfo = `host=127.0.0.1 port=${cluster.port} user=postgres dbname=penguinmails_content`;

  let lastConfig = null;
  for (const { codec, level } of levels) {
    const repo = path.join(root, `repo-${codec}-${level}`);
    const configFile = path.join(root, `rookery-${codec}-${level}.yaml`);
    writeFileSync(
      configFile,
      [
        `repositories: ['file://${repo}']`,
        'tiers:',
        '  content:',
        `    pgUrl: '${dbUrl}'`,
        '    policy:',
        `      logical: { format: custom, compression: { codec: ${codec}, level: ${level} } }`,
        '',
      ].join('\n'),
    );
    const seconds = timed(() => rookery(configFile, ['backup', '--tier', 'content', '--json']));
    record(`rookery backup ${codec} ${level}`, seconds, duBytes(repo), 'incl. read-back + pg_restore --list of each artifact');
    if (codec === 'zstd' && level === 3) lastConfig = configFile;
  }

  const fcFile = path.join(root, 'raw.dump');
  record(
    'pg_dump -Fc (zlib 6)',
    timed(() => sh(`${PGBIN}/pg_dump`, ['-Fc', '-f', fcFile, '-d', conninfo])),
    duBytes(fcFile),
  );
  const fc0File = path.join(root, 'raw0.dump');
  record(
    'pg_dump -Fc -Z0',
    timed(() => sh(`${PGBIN}/pg_dump`, ['-Fc', '-Z0', '-f', fc0File, '-d', conninfo])),
    duBytes(fc0File),
  );
  const fdDir = path.join(root, 'raw.dir');
  record(
    'pg_dump -Fd -j 2 (zlib 6)',
    timed(() => sh(`${PGBIN}/pg_dump`, ['-Fd', '-j', '2', '-f', fdDir, '-d', conninfo])),
    duBytes(fdDir),
  );

  const restoreUrl = (name) => cluster.url.replace(/\/postgres$/, `/${name}`);
  if (lastConfig) {
    record(
      'rookery restore (zstd 3, streamed, 1 job)',
      timed(() => rookery(lastConfig, ['restore', '--tier', 'content', '--target-url', restoreUrl('r_stream'), '--json'])),
      null,
    );
    record(
      'rookery restore (zstd 3, --jobs 2)',
      timed(() => rookery(lastConfig, ['restore', '--tier', 'content', '--target-url', restoreUrl('r_jobs2'), '--jobs', '2', '--json'])),
      null,
    );
  }
  for (const [name, input, jobs] of [
    ['pg_restore -j 2 (from -Fd)', fdDir, 2],
    ['pg_restore (from -Fc)', fcFile, 1],
    ['pg_restore -j 2 (from -Fc -Z0)', fc0File, 2],
  ]) {
    const database = `r_${results.length}`;
    psql(cluster.conn, `create database ${database}`);
    const seconds = timed(() =>
      sh(`${PGBIN}/pg_restore`, [
        '--exit-on-error',
        ...(jobs > 1 ? ['-j', String(jobs)] : []),
        '-d',
        conninfo.replace('penguinmails_content', database),
        input,
      ]),
    );
    record(name, seconds, null);
  }

  const lines = [
    `Logical backups — content tier, seedContent ${sizeMb} MiB (database ${(dbBytes / 2 ** 20).toFixed(0)} MiB), ${os.cpus().length} cores, ${new Date().toISOString()}`,
    '',
    '| run | seconds | MiB/s of database | stored MiB | note |',
    '| --- | ---: | ---: | ---: | --- |',
    ...results.map(
      (r) =>
        `| ${r.name} | ${r.seconds.toFixed(2)} | ${r.mbps} | ${r.storedBytes === null ? '' : (r.storedBytes / 2 ** 20).toFixed(1)} | ${r.note} |`,
    ),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (args.out) writeFileSync(String(args.out), lines.join('\n'));
} finally {
  stopAllStarted();
  if (!args.keep) rmSync(root, { recursive: true, force: true });
}
