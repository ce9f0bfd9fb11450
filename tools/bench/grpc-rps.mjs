#!/usr/bin/env node
// REST against gRPC on one service (issue 16), over the compiled code (npm run build first):
// requests per second of an authenticated GET /backups and of the same call as gRPC
// rookery.v1.BackupService/ListBackups, on one oltp-backup service in this process (SQLite
// catalog, no database, a static sha256 token, gRPC in plaintext on loopback), CONCURRENCY
// calls in flight for --seconds each. REST goes over keep-alive HTTP/1.1 (fetch), gRPC over one
// HTTP/2 channel.
// Usage: npx node tools/bench/grpc-rps.mjs [--seconds 5] [--concurrency 16] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { ROOT, dist, parseArgs } from './lib/cli.mjs';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { createStaticToken } = dist('auth');
const { buildConfig } = dist('config');
const { PROTO_LOADER_OPTIONS, ROOKERY_PROTO_FILES } = dist('contracts');
const { configureServiceApp, grpcListenerOf } = dist('service-kit');
const { OltpBackupModule } = require(path.join(ROOT, 'dist', 'apps', 'oltp-backup', 'src', 'app', 'oltp-backup.module.js'));
const { NestFactory } = require('@nestjs/core');
const grpc = require('@grpc/grpc-js');
const { loadSync } = require('@grpc/proto-loader');

const args = parseArgs(process.argv.slice(2));
const SECONDS = Number(args.seconds ?? 5);
const CONCURRENCY = Number(args.concurrency ?? 16);
const OUT = args.out ?? null;

/** Runs `call` CONCURRENCY at a time for SECONDS; answers calls per second. */
async function rate(call) {
  for (let warm = 0; warm < 200; warm++) await call();
  let done = 0;
  const until = Date.now() + SECONDS * 1000;
  const loop = async () => {
    while (Date.now() < until) {
      await call();
      done++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return done / SECONDS;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-grpc-bench-'));
let app;
let client;
try {
  const token = createStaticToken({ principal: 'bench', roles: ['auditor'] });
  writeFileSync(path.join(work, 'tokens'), `${token.line}\n`);
  const config = buildConfig(
    {
      repositories: [`file://${path.join(work, 'repository')}`],
      catalog: { url: `sqlite://${path.join(work, 'catalog.sqlite')}` },
      service: { host: '127.0.0.1', port: 0, grpc: { port: 0 } },
      auth: { tokenFile: path.join(work, 'tokens') },
    },
    'gRPC bench',
  );
  app = await NestFactory.create(OltpBackupModule.forRoot({ config, logLevel: 'silent' }), { logger: false });
  configureServiceApp(app, { title: 'bench', description: 'bench' });
  await app.init();
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');

  const url = `http://127.0.0.1:${app.getHttpServer().address().port}/backups`;
  const headers = { authorization: `Bearer ${token.token}` };
  const rest = async () => {
    const response = await fetch(url, { headers });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`GET /backups: ${response.status}`);
  };

  const definition = grpc.loadPackageDefinition(loadSync([...ROOKERY_PROTO_FILES], PROTO_LOADER_OPTIONS));
  client = new definition.rookery.v1.BackupService(grpcListenerOf(app).address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token.token}`);
  const listBackups = () =>
    new Promise((resolve, reject) => client.ListBackups({}, metadata, (error, answer) => (error ? reject(error) : resolve(answer))));

  const results = {};
  results['REST GET /backups'] = await rate(rest);
  console.log(`REST GET /backups: ${results['REST GET /backups'].toFixed(0)} requests/s (${CONCURRENCY} in flight, ${SECONDS} s)`);
  results['gRPC ListBackups'] = await rate(listBackups);
  console.log(`gRPC ListBackups: ${results['gRPC ListBackups'].toFixed(0)} requests/s (${CONCURRENCY} in flight, ${SECONDS} s)`);
  if (OUT)
    writeFileSync(OUT, JSON.stringify({ at: new Date().toISOString(), concurrency: CONCURRENCY, seconds: SECONDS, results }, null, 2));
} finally {
  client?.close();
  await app?.close();
  rmSync(work, { recursive: true, force: true });
}
