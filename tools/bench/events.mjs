#!/usr/bin/env node
// Events benchmark (issue 5): through a real Kafka broker (tools/kafka, Maven Central jars),
//   1. events per second relayed from the catalog outbox (SQLite) to Kafka (idempotent producer, acks=all);
//   2. time from a backup.completed event published to the compliance view showing it
//      (consumer group → ledger → computeTierCompliance), median and p95 over --samples.
// Usage: node tools/bench/events.mjs [--events 5000] [--batch 200] [--samples 20] [--out FILE]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
require(path.join(ROOT, 'tools', 'runtime', 'register-aliases.cjs'));
const dist = (lib) => require(path.join(ROOT, 'dist', 'libs', lib, 'src', 'index.js'));
const { startKafka } = dist('testing');
const { BackupCatalog, EventLedger } = dist('catalog');
const { ComplianceLedgerService } = dist('compliance');
const { DEFAULT_POLICIES } = dist('core');
const { KafkaEventBus, OutboxRelay, createEvent, outboxPayload } = dist('events');

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : fallback;
};
const EVENTS = Number(option('events', 5000));
const BATCH = Number(option('batch', 200));
const SAMPLES = Number(option('samples', 20));

function completed(backupId, finishedAt) {
  return createEvent(
    'dev.rookery.backup.completed',
    'oltp',
    {
      backupId,
      tier: 'oltp',
      type: 'full',
      method: 'physical',
      startedAt: finishedAt,
      finishedAt,
      actor: 'bench',
      durationMs: 0,
      bytes: 1,
      storedBytes: 1,
      timeline: 1,
      startLsn: '0/2000028',
      stopLsn: '0/2000100',
      walRange: null,
      parent: null,
      retentionUntil: '2099-01-01T00:00:00.000Z',
      storageClass: 'STANDARD',
      regions: ['local'],
      repository: 'file:///bench',
      manifestChecksum: 'c'.repeat(64),
      artifacts: [],
    },
    { source: 'rookery/bench' },
  );
}

const percentile = (values, p) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((p / 100) * values.length))];

async function main() {
  const work = mkdtempSync(path.join(os.tmpdir(), 'rookery-bench-events-'));
  const kafka = await startKafka({ heap: '1g' });
  const results = {
    machine: `${os.cpus().length} cpu, load ${os
      .loadavg()
      .map((value) => value.toFixed(1))
      .join(' ')}`,
    events: EVENTS,
    batch: BATCH,
  };
  try {
    const catalog = await BackupCatalog.open(`sqlite://${path.join(work, 'catalog.sqlite')}`);
    const bus = await KafkaEventBus.connect({ brokers: kafka.brokers, clientId: 'bench', partitions: 4 });
    // 1. Outbox → Kafka.
    const now = new Date().toISOString();
    for (let offset = 0; offset < EVENTS; offset += 500) {
      const items = [];
      for (let index = offset; index < Math.min(EVENTS, offset + 500); index++) {
        const event = completed(`bench-${index}`, now);
        items.push({ eventId: event.id, payload: outboxPayload(event) });
      }
      await catalog.outbox.enqueue(items);
    }
    const started = process.hrtime.bigint();
    const relayed = await new OutboxRelay(catalog.outbox, bus, { batchSize: BATCH }).relayOnce();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    results.relay = { relayed, seconds: Number(seconds.toFixed(2)), eventsPerSecond: Math.round(relayed / seconds) };
    console.log(
      `outbox → kafka: ${relayed} events in ${seconds.toFixed(2)} s = ${Math.round(relayed / seconds)} events/s (batch ${BATCH})`,
    );

    // 2. backup.completed → compliance view.
    const ledger = await EventLedger.open(`sqlite://${path.join(work, 'ledger.sqlite')}`);
    const compliance = new ComplianceLedgerService(ledger, DEFAULT_POLICIES);
    const subscription = await compliance.subscribe(bus, 'bench-compliance');
    // Let the group catch up with the relay's events first.
    for (let deadline = Date.now() + 120_000; (await ledger.count()) < EVENTS && Date.now() < deadline; )
      await new Promise((resolve) => setTimeout(resolve, 200));
    const latencies = [];
    for (let sample = 0; sample < SAMPLES; sample++) {
      const finishedAt = new Date(Date.now() + 86_400_000 + sample * 1000).toISOString();
      const event = completed(`latency-${sample}`, finishedAt);
      const t0 = process.hrtime.bigint();
      await bus.publish(event);
      for (;;) {
        const view = await compliance.tier('oltp');
        if (view.lastGoodFull?.backupId === `latency-${sample}`) break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    results.toComplianceView = {
      samples: SAMPLES,
      medianMs: Math.round(percentile(latencies, 50)),
      p95Ms: Math.round(percentile(latencies, 95)),
    };
    console.log(
      `backup.completed → compliance view: median ${results.toComplianceView.medianMs} ms, p95 ${results.toComplianceView.p95Ms} ms (${SAMPLES} samples, ledger of ${await ledger.count()} events)`,
    );
    await subscription.close();
    await bus.close();
    await ledger.close();
    await catalog.close();
  } finally {
    await kafka.stop();
    rmSync(work, { recursive: true, force: true });
  }
  const out = option('out');
  if (out) writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
