#!/usr/bin/env node
// A local Apache Kafka (4.x, KRaft, one node) for development and tests, from Maven Central's
// jars: no Docker, no distribution tarball. The code lives in libs/testing (kafka.harness.ts),
// which the jest global setup uses too; this is its command line.
//
//   node tools/kafka/kafka.mjs fetch                 fetch the jars into ~/.cache/rookery (cached)
//   node tools/kafka/kafka.mjs run [--port N] [--secured]        start, print the bootstrap address, stop on Ctrl-C
//   node tools/kafka/kafka.mjs start [--port N] [--secured] [--state FILE]   start detached, write FILE (default .rookery/kafka.json)
//
// --secured: the client listener is SASL_SSL (SCRAM-SHA-512) with a CA made for this run; the CA
// file, user and password are printed (run) or written to the state file (start), for events.tls
// and events.sasl.
//   node tools/kafka/kafka.mjs stop [--state FILE]   stop a detached broker and remove its data
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);
require(join(root, 'tools/runtime/register-aliases.cjs'));
const harness = require(join(root, 'dist/libs/testing/src/lib/kafka.harness.js'));

const [command = 'run', ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const index = rest.indexOf(`--${name}`);
  return index >= 0 ? rest[index + 1] : fallback;
};
const statePath = resolve(option('state', join(root, '.rookery/kafka.json')));
const port = option('port') ? Number(option('port')) : undefined;
const secured = rest.includes('--secured');

async function main() {
  switch (command) {
    case 'fetch':
      console.log(harness.ensureKafkaClasspath());
      return;
    case 'run': {
      const kafka = await harness.startKafka({ port, secured });
      console.log(`kafka ${harness.KAFKA_VERSION} serving on ${kafka.brokers.join(',')} (Ctrl-C stops it)`);
      if (kafka.security) console.log(`SASL_SSL: ${JSON.stringify(kafka.security)}`);
      await new Promise((done) => {
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await kafka.stop();
      return;
    }
    case 'start': {
      const kafka = await harness.startKafka({ port, secured, detach: true });
      await mkdir(dirname(statePath), { recursive: true });
      const state = { pid: kafka.pid, brokers: kafka.brokers, workDir: kafka.workDir, security: kafka.security };
      await writeFile(statePath, `${JSON.stringify(state)}\n`, { mode: 0o600 });
      console.log(kafka.brokers.join(','));
      return;
    }
    case 'stop': {
      const state = JSON.parse(await readFile(statePath, 'utf8'));
      await stopProcessGroup(state.pid);
      await rm(state.workDir, { recursive: true, force: true });
      await rm(statePath, { force: true });
      return;
    }
    default:
      throw new Error(`unknown command '${command}' (fetch, run, start, stop)`);
  }
}

async function stopProcessGroup(pid) {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 15_000;
  while (alive() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
  if (alive()) process.kill(-pid, 'SIGKILL');
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`kafka: ${error.message}`);
    process.exit(1);
  },
);
