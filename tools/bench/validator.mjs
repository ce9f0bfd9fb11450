#!/usr/bin/env node
// Validator throughput benchmark (issue 5): how fast a backup is proven usable from the store.
// One throwaway PostgreSQL 15 cluster seeded with seedOltp (--size-mb), one physical backup of it
// (default policy: zstd) into a filesystem repository, with WAL archived there by the real
// `rookery wal-push` from archive_command (switched on after the seed by a flag file, so only the
// backup's WAL is archived); optionally (--s3) the same backup into an S3Proxy server (startS3Proxy, no WAL
// archive there, so its continuity check fails by design and is not waited for). Then, per
// repository, --runs times each:
//   verify   = engine.verify: every artifact re-read from the store, stored sha256 + size,
//              decompressed, logical sha256, tar listing (the validator's `sha256` checks);
//   validate = BackupValidator.validate: verify + extraction + pg_verifybackup (+ pg_waldump of the
//              backup's WAL) + WAL continuity over the archive.
// MB/s are given over the stored (compressed) bytes and the logical (tar) bytes; MB = 10^6 bytes.
//
//   node tools/bench/validator.mjs [--size-mb 200] [--runs 2] [--s3] [--out FILE]
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { postgresIds } from './lib/cluster.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ROOKERY = path.join(ROOT, 'bin', 'rookery.js');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
const dist = (lib) => require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
const { seedOltp, startCluster, startS3Proxy, switchAndWaitArchived } = dist('testing');
const { buildConfig } = dist('config');
const { createEngine } = dist('engine');
const { BackupValidator, createValidationTools } = dist('validation');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const SIZE_MB = Number(option('size-mb', 200));
const RUNS = Number(option('runs', 2));
const WITH_S3 = args.includes('--s3');

const log = (message) => process.stderr.write(`[validator-bench] ${message}\n`);
const load = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(1))
    .join(' ');
const mbps = (bytes, ms) => Number((bytes / 1e6 / (ms / 1000)).toFixed(1));

async function timed(fn) {
  const started = process.hrtime.bigint();
  const result = await fn();
  return { result, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

/** verify and validate of one backup, --runs times each; the best run counts (least disturbed by load). */
async function measure(label, engine, validator, manifest) {
  const runs = { verify: [], validate: [] };
  let checks = [];
  for (let run = 0; run < RUNS; run++) {
    const verify = await timed(() => engine.verify('oltp', manifest.id));
    if (!verify.result.ok) throw new Error(`${label}: verify failed: ${JSON.stringify(verify.result.artifacts)}`);
    runs.verify.push(verify.ms);
    const validate = await timed(() => validator.validate('oltp', manifest.id));
    runs.validate.push(validate.ms);
    checks = validate.result.checks.map((check) => ({ name: check.name, ok: check.ok, ...(check.ok ? {} : { detail: check.detail }) }));
    log(
      `${label} run ${run + 1}: verify ${(verify.ms / 1000).toFixed(2)} s, validate ${(validate.ms / 1000).toFixed(2)} s (load ${load()})`,
    );
  }
  const figures = (ms) => ({
    seconds: Number((ms / 1000).toFixed(2)),
    storedMBps: mbps(manifest.storedBytes, ms),
    logicalMBps: mbps(manifest.bytes, ms),
  });
  return {
    repository: label,
    storedBytes: manifest.storedBytes,
    bytes: manifest.bytes,
    verify: figures(Math.min(...runs.verify)),
    validate: figures(Math.min(...runs.validate)),
    runs,
    checks,
  };
}

async function main() {
  const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-bench-validator-'));
  chmodSync(work, 0o711);
  const results = { machine: `${os.cpus().length} cpu`, loadBefore: load(), sizeMb: SIZE_MB, runs: RUNS, repositories: [] };
  const closers = [];
  try {
    // archive_command runs as the server's account: it writes the repository's oltp/wal folder.
    const repoDir = path.join(work, 'repo');
    const { uid, gid } = postgresIds();
    for (const dir of [repoDir, path.join(repoDir, 'oltp'), path.join(repoDir, 'oltp', 'wal')]) {
      mkdirSync(dir, { recursive: true });
      chownSync(dir, uid, gid);
    }
    const fsRepo = `file://${repoDir}`;
    // Settings are server options (they beat ALTER SYSTEM): WAL is pushed once a flag file exists.
    const archiveFlag = path.join(work, 'archive-on');
    const walPush = `${process.execPath} ${ROOKERY} wal-push %p --tier oltp --repo ${fsRepo}`;
    const cluster = await startCluster({
      name: 'bench-validator',
      settings: { archive_mode: 'on', archive_command: `if [ -f ${archiveFlag} ]; then ${walPush}; fi` },
    });
    closers.push(() => cluster.destroy());
    log(`seeding ${SIZE_MB} MB (load ${load()})`);
    await seedOltp(cluster.url, { sizeMb: SIZE_MB });
    writeFileSync(archiveFlag, '');
    chmodSync(archiveFlag, 0o644);

    const targets = [{ label: 'filesystem', url: fsRepo, archived: true }];
    if (WITH_S3) {
      const s3 = await startS3Proxy();
      closers.push(() => s3.stop());
      // The store's SDK reads credentials from the environment, as in production.
      process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
      await s3.createBucket('bench-validator');
      targets.push({
        label: 's3proxy',
        url: `s3://bench-validator/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`,
        archived: false,
      });
    }
    for (const target of targets) {
      const config = buildConfig({ repositories: [target.url], tiers: { oltp: { pgUrl: cluster.url } } }, 'validator bench');
      const engine = await createEngine(config, { actor: 'bench' });
      closers.push(() => engine.close());
      const workDirectory = mkdtempSync(path.join(work, 'validate-'));
      const validator = new BackupValidator(
        engine,
        await createValidationTools(config, { workDirectory }),
        target.archived ? undefined : 0,
      );
      log(`${target.label}: backup (load ${load()})`);
      const backup = await timed(() => engine.backup({ tier: 'oltp' }));
      if (target.archived) await switchAndWaitArchived(cluster, 120_000);
      log(
        `${target.label}: backup ${backup.result.id} in ${(backup.ms / 1000).toFixed(1)} s, ${backup.result.bytes} bytes, ${backup.result.storedBytes} stored`,
      );
      results.repositories.push({
        ...(await measure(target.label, engine, validator, backup.result)),
        backupSeconds: Number((backup.ms / 1000).toFixed(1)),
      });
    }
    results.loadAfter = load();
  } finally {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
  const text = JSON.stringify(results, null, 2);
  const out = option('out');
  if (out) writeFileSync(out, `${text}\n`);
  process.stdout.write(`${text}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
