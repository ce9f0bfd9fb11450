import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { RookeryConfig, buildConfig, processEnvironment, tierPolicies } from '@rookery/config';
import { BackupManifest, IntegrityError } from '@rookery/core';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { CloudEvent, InProcessEventBus, OutboxRelay, createEvent, outboxPayload } from '@rookery/events';
import { createPostgresToolkit, freeLoopbackPort } from '@rookery/postgres';
import { load } from '../cli.lazy';
import { formatBytes, formatDuration, table } from '../cli.output';
import { progressReporter } from '../cli.progress';

const DEMO_EVENT_SOURCE = 'rookery/demo';

interface DemoOptions {
  sizeMb: number;
  codec: string;
  level?: number;
  keep?: boolean;
}

/**
 * The main job on embedded defaults (README command 1): a throwaway PostgreSQL seeded with
 * PenguinMails-like OLTP data, backed up to a local filesystem repository, restored into a fresh
 * directory, started, and compared table by table; the backup recorded in a SQLite catalog whose
 * outbox relays its events (backup, validation, the restore as a drill) over the in-process bus
 * into the compliance ledger, which reports the tier.
 */
export function demoCommand(): Command {
  return new Command('demo')
    .description('seed a throwaway PostgreSQL, back it up, restore it, start it and compare every table')
    .option('--size-mb <n>', 'size of the seeded OLTP database', parsePositive, 200)
    .option('--codec <codec>', 'compression codec (zstd, gzip, lz4, none)', 'zstd')
    .option('--level <n>', 'compression level', parsePositive)
    .option('--keep', 'keep the work directory (repository, restored data directory) for inspection')
    .action(async (options: DemoOptions) => {
      const { diffTableChecksums, seedOltp, tableChecksums } = load.demo();
      const work = await mkdtemp(join(tmpdir(), 'rookery-demo-'));
      // The restored server runs as the postgres account, which must be able to reach its directory.
      await chmod(work, 0o711);
      const timings: [string, number][] = [];
      const timed = async <T>(label: string, step: () => Promise<T>): Promise<T> => {
        const started = Date.now();
        try {
          return await step();
        } finally {
          timings.push([label, Date.now() - started]);
        }
      };
      const say = (line: string) => process.stdout.write(`${line}\n`);

      say(`rookery demo: work directory ${work}`);
      // The process's one PostgreSQL toolkit, as the demo's config below has it (no postgres.binDir):
      // the source cluster and the engine share its runner and programs.
      const toolkit = await createPostgresToolkit({ env: processEnvironment(), applicationName: 'rookery' });
      // Removed by a watcher process if the demo is interrupted before it destroys the cluster.
      const source = await timed('start source cluster', () =>
        toolkit.scratchCluster({ name: 'demo-source', fsync: true, removeWhenOrphaned: true }),
      );
      const restoredDir = join(work, 'restored');
      const incrementalDir = join(work, 'restored-incremental');
      let restoredStarted = false;
      try {
        const seedBar = bar('seed     ');
        seedBar.start(options.sizeMb, 0);
        await timed('seed', () =>
          seedOltp(source.url, {
            sizeMb: options.sizeMb,
            onProgress: (progress) => seedBar.update(Math.round(progress.fraction * options.sizeMb)),
          }),
        );
        seedBar.stop();
        const sourceUrl = source.urlFor('penguinmails_oltp');

        const config = buildConfig(
          {
            repositories: [`file://${join(work, 'repository')}`],
            compression: { codec: options.codec, ...(options.level ? { level: options.level } : {}) },
            tiers: { oltp: { pgUrl: source.url } },
          },
          'demo defaults',
        );
        const engine = await createEngine(config, { actor: 'demo', toolkit });
        try {
          const backupProgress = progressReporter(true, 'demo backup oltp');
          // Its lifecycle events go into the embedded catalog's outbox once the demo has one.
          const lifecycle: CloudEvent[] = [];
          const run = engine.backupRun(
            { tier: 'oltp', actor: 'demo' },
            {
              source: DEMO_EVENT_SOURCE,
              started: async (event) => void lifecycle.push(event),
              completed: async (event) => void lifecycle.push(event),
              failed: async (event) => void lifecycle.push(event),
            },
          );
          const manifest = await timed('backup', async () => {
            await run.start();
            return run.finish({ onProgress: backupProgress.listener }).finally(backupProgress.stop);
          });
          say(`backup ${manifest.id}: ${formatBytes(manifest.bytes)} → ${formatBytes(manifest.storedBytes)}`);

          const port = await freeLoopbackPort();
          const restoreProgress = progressReporter(true, 'demo restore oltp');
          const restored = await timed('restore + start', () =>
            engine
              .restore({ tier: 'oltp', backup: manifest.id, to: restoredDir, start: true, port, onProgress: restoreProgress.listener })
              .finally(restoreProgress.stop),
          );
          restoredStarted = true;
          say(`restored into ${restored.dataDirectory}, accepting connections on port ${port}`);

          const [before, after] = await timed('compare tables', () =>
            Promise.all([tableChecksums(sourceUrl), tableChecksums(`postgres://postgres@127.0.0.1:${port}/penguinmails_oltp`)]),
          );
          const differences = diffTableChecksums(before, after);
          const tables = Object.keys(before).sort();
          say('');
          say(
            table(
              ['table', 'rows', 'checksum', 'restored'],
              tables.map((name) => [
                name,
                String(before[name].rows),
                before[name].checksum.slice(0, 16),
                after[name]?.checksum === before[name].checksum ? 'identical' : 'DIFFERENT',
              ]),
            ),
          );
          const backupMs = timings.find(([label]) => label === 'backup')?.[1] ?? 1;
          const restoreMs = timings.find(([label]) => label === 'restore + start')?.[1] ?? 1;
          say('');
          say(`database size       ${formatBytes(manifest.bytes)} (base backup tar incl. WAL)`);
          const { compression } = manifest.artifacts[0];
          say(
            `stored size         ${formatBytes(manifest.storedBytes)} (${compression.codec} level ${compression.level}${compression.location === 'server' ? ', compressed by the server' : ''})`,
          );
          say(`compression ratio   ${(manifest.bytes / Math.max(manifest.storedBytes, 1)).toFixed(2)}x`);
          say(`backup throughput   ${formatBytes(manifest.bytes / (backupMs / 1000))}/s`);
          say(`restore throughput  ${formatBytes(manifest.bytes / (restoreMs / 1000))}/s (verified, synced, started)`);
          for (const [label, ms] of timings) say(`  ${label.padEnd(22)} ${formatDuration(ms)}`);
          if (differences.length) {
            throw new IntegrityError(`restored data differs from the source: ${differences.join('; ')}`);
          }
          say(`\nall ${tables.length} tables identical after restore`);
          await engine.stopRestored(restoredDir);
          restoredStarted = false;
          await demoIncremental(engine, { sourceUrl, source, restoredDir: incrementalDir, say, timed });
          say(await embeddedEvidence(engine, config, manifest, { work, restoreMs, lifecycle }));
        } finally {
          if (restoredStarted) await engine.stopRestored(restoredDir).catch(() => undefined);
          await engine.close();
        }
      } finally {
        await source.destroy();
        if (!options.keep) await rm(work, { recursive: true, force: true });
        else say(`kept ${work}`);
      }
    });
}

/**
 * The OLTP tier's hourly shape on a small scale: a day's worth of changes (a few percent of the
 * contacts and sent emails updated, new events appended), a block-level incremental that stores
 * only the changed pages, and a restore of the chain (the full and the incremental, combined in
 * one pass) compared table by table; the restored server is stopped again.
 */
async function demoIncremental(
  engine: RookeryEngine,
  run: {
    sourceUrl: string;
    source: { query(sql: string, params?: unknown[], database?: string): Promise<unknown[]> };
    restoredDir: string;
    say: (line: string) => void;
    timed: <T>(label: string, step: () => Promise<T>) => Promise<T>;
  },
): Promise<void> {
  const { diffTableChecksums, tableChecksums } = load.demo();
  const { source, say, timed } = run;
  // As a day mostly touches recent rows: the newest 3 % of the contacts and sent emails updated,
  // and new events appended.
  await timed('change ~3% of rows', async () => {
    await source.query(
      "update contacts set subscribed = not subscribed, tags = array_append(tags, 'demo') where id > (select max(id) * 0.97 from contacts)",
      [],
      'penguinmails_oltp',
    );
    await source.query(
      "update sent_emails set status = 'opened', opened_at = now() where id > (select max(id) * 0.97 from sent_emails)",
      [],
      'penguinmails_oltp',
    );
    await source.query(
      "insert into email_events select sent_email_id, 'click', now(), ip, user_agent, payload from email_events where sent_email_id > (select max(sent_email_id) * 0.99 from email_events)",
      [],
      'penguinmails_oltp',
    );
  });
  const backupStarted = Date.now();
  const incremental = await timed('incremental backup', () => engine.backup({ tier: 'oltp', type: 'incremental' }));
  const backupMs = Date.now() - backupStarted;
  const data = incremental.artifacts.find((artifact) => artifact.kind === 'base-incremental');
  const pages = data?.incremental;
  say(
    `\nincremental ${incremental.id} (parent ${incremental.parent}): ${pages ? `${pages.pagesStored} of ${pages.pagesRead} pages changed, ` : ''}` +
      `${formatBytes(incremental.storedBytes)} stored, in ${formatDuration(backupMs)}`,
  );
  const port = await freeLoopbackPort();
  const restoreStarted = Date.now();
  try {
    await timed('restore chain + start', () =>
      engine.restore({ tier: 'oltp', backup: incremental.id, to: run.restoredDir, start: true, port }),
    );
    const [before, after] = await Promise.all([
      tableChecksums(run.sourceUrl),
      tableChecksums(`postgres://postgres@127.0.0.1:${port}/penguinmails_oltp`),
    ]);
    const differences = diffTableChecksums(before, after);
    if (differences.length) throw new IntegrityError(`the restored chain differs from the source: ${differences.join('; ')}`);
    say(
      `all ${Object.keys(before).length} tables identical after restoring the chain (the full extracted, the incremental's pages written in place; ${formatDuration(Date.now() - restoreStarted)} with the start and the comparison)`,
    );
  } finally {
    await engine.stopRestored(run.restoredDir).catch(() => undefined);
  }
}

function bar(label: string): SingleBar {
  return new SingleBar(
    { format: ` ${label}|{bar}| {value}/{total} MB`, hideCursor: true, stream: process.stderr, noTTYOutput: false },
    Presets.shades_classic,
  );
}

function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new InvalidArgumentError('must be a positive number');
  return number;
}

/**
 * The embedded control plane: the backup in a SQLite catalog, its events in the catalog's outbox
 * (same transaction), relayed over the in-process bus into the compliance ledger, with the
 * re-read verification as the validation and the demo's restore as a drill against the RTO.
 */
async function embeddedEvidence(
  engine: RookeryEngine,
  config: RookeryConfig,
  manifest: BackupManifest,
  run: { work: string; restoreMs: number; lifecycle: readonly CloudEvent[] },
): Promise<string> {
  const source = DEMO_EVENT_SOURCE;
  const { BackupCatalog, EventLedger } = load.catalog();
  const { ComplianceLedgerService, seconds } = load.compliance();
  const catalog = await BackupCatalog.open(`sqlite://${join(run.work, 'catalog.sqlite')}`);
  const ledger = await EventLedger.open(`sqlite://${join(run.work, 'ledger.sqlite')}`);
  const bus = new InProcessEventBus();
  const compliance = new ComplianceLedgerService(ledger, tierPolicies(config));
  const subscription = await compliance.subscribe(bus);
  try {
    const item = (event: Parameters<typeof outboxPayload>[0]) => ({ eventId: event.id, payload: outboxPayload(event) });
    const [started, completed] = run.lifecycle;
    await catalog.recordStarted(
      { id: manifest.id, tier: manifest.tier, type: manifest.type, method: manifest.method, startedAt: manifest.startedAt },
      [item(started)],
    );
    await catalog.recordCompleted(manifest, { events: [item(completed)] });
    const verified = await engine.verify(manifest.tier, manifest.id);
    const checks = verified.artifacts.map((artifact) => ({ name: `sha256 ${artifact.name}`, ok: artifact.ok }));
    const rtoSeconds = config.tiers[manifest.tier].policy.rtoSeconds;
    await catalog.outbox.enqueue([
      item(
        createEvent(
          verified.ok ? 'dev.rookery.validation.passed' : 'dev.rookery.validation.failed',
          manifest.tier,
          { backupId: manifest.id, tier: manifest.tier, checks, validatedAt: new Date().toISOString() },
          { source },
        ),
      ),
      item(
        createEvent(
          'dev.rookery.drill.completed',
          manifest.tier,
          {
            backupId: manifest.id,
            tier: manifest.tier,
            ok: true,
            restoreMs: run.restoreMs,
            rtoSeconds,
            withinRto: run.restoreMs <= rtoSeconds * 1000,
            checks: [{ name: 'every table identical', ok: true }],
            finishedAt: new Date().toISOString(),
          },
          { source },
        ),
      ),
    ]);
    const relayed = await new OutboxRelay(catalog.outbox, bus).relayOnce();
    const view = await compliance.tier(manifest.tier);
    return [
      '',
      `catalog (SQLite): backup recorded; ${relayed} events relayed from its outbox over the in-process bus into the compliance ledger`,
      `compliance (${view.tier}): status ${view.status}; last good full ${view.lastGoodFull?.backupId ?? 'none'}${view.lastGoodFull?.validated ? ' (validated)' : ''}; ` +
        `RPO exposure ${seconds(view.rpoExposureSeconds)} of ${seconds(view.objectives.rpoSeconds)}; drill ${seconds(view.lastDrill?.restoreSeconds ?? null)} of an RTO of ${seconds(view.objectives.rtoSeconds)}`,
    ].join('\n');
  } finally {
    await subscription.close();
    await bus.close();
    await ledger.close();
    await catalog.close();
  }
}
