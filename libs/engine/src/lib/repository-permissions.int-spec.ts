import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RookeryConfig, buildConfig } from '@rookery/config';
import { PgSqlClient, lookupOsUser } from '@rookery/postgres';
import { WalArchive } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import {
  TestCluster,
  directoryEntries,
  entriesWithOtherModes,
  freeLoopbackPort,
  pollUntil,
  startCluster,
  worldAccessibleEntries,
} from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';
import { createWalStreamSupervisor } from '@rookery/wal';

/**
 * The queue tier's RPO-0 recovery from a filesystem repository that root wrote (issue 12 item 2):
 * the engine and the WAL stream run as root, the restored server runs as postgres and its
 * restore_command (the built CLI's wal-get) must read every segment and the pushed `.partial`.
 */
jest.setTimeout(300_000);

const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const sql = new PgSqlClient({ applicationName: 'queue-writer' });
const asRoot = process.getuid?.() === 0;

/** Commits one row per transaction, each waiting for the synchronous stream; returns the ids whose commit returned. */
async function acknowledgedCommits(cluster: TestCluster, ids: number[]): Promise<number[]> {
  for (const id of ids) await cluster.query('insert into queue_jobs (id, payload) values ($1, $2)', [id, `job ${id}`]);
  return ids;
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, index) => from + index);

(asRoot ? describe : describe.skip)('queue tier RPO-0 recovery from a file:// repository written by root', () => {
  let work: string;
  let primary: TestCluster;
  let repoDir: string;
  let engine: RookeryEngine;

  function config(): RookeryConfig {
    return buildConfig(
      {
        repositories: [`file://${repoDir}`],
        tiers: { queue: { pgUrl: primary.url } },
        walStream: { spoolDir: join(work, 'spool'), manageSynchronousStandbyNames: true, restartBackoffMs: { initial: 200, max: 1_000 } },
      },
      'repository-permissions int-spec',
    );
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-queue-permissions-'));
    // Servers (and restore_command) run as the postgres account: they may pass through, not list.
    await chmod(work, 0o711);
    repoDir = join(work, 'repo');
    // synchronous_commit=on: the harness turns it off with fsync, and only 'on' waits for a standby.
    primary = await startCluster({ name: 'queue-permissions', settings: { synchronous_commit: 'on' } });
    await primary.query('create table queue_jobs (id int primary key, payload text not null)');
    engine = await createEngine(config(), { actor: 'test', selfCommand: [process.execPath, bin, '--repo', `file://${repoDir}`] });
  });

  afterAll(async () => {
    await primary?.destroy();
    await engine?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('keeps every acknowledged commit through a crash of the primary; the restored server reads the segments and the .partial root pushed', async () => {
    const streamEngine = await createEngine(config(), { actor: 'test' });
    const supervisor = await createWalStreamSupervisor(streamEngine.walStreamSource(), { sweepIntervalMs: 300, log: () => undefined });
    const acknowledged: number[] = [];
    try {
      await supervisor.start();
      await pollUntil(
        () => supervisor.status(),
        (status) => status.receiver.running && 'syncState' in status.primary && status.primary.syncState === 'sync',
        {
          what: 'pg_receivewal to stream as the synchronous standby',
        },
      );
      await engine.backup({ tier: 'queue' });
      acknowledged.push(...(await acknowledgedCommits(primary, range(1, 200))));
      // More than a segment of WAL, so completed segments travel as well as the partial one.
      await primary.query("insert into queue_jobs select g, repeat('x', 2000) from generate_series(100000, 110000) g");
      acknowledged.push(...range(100_000, 10_001));
      acknowledged.push(...(await acknowledgedCommits(primary, range(2_000, 200))));
      const before = await supervisor.status();

      await primary.destroy();
      await pollUntil(
        () => supervisor.status(),
        (status) =>
          status.receiver.lastExit !== null &&
          status.uploads.lastPartial !== null &&
          status.uploads.lastPartial.at > (before.uploads.lastPartial?.at ?? ''),
        { what: 'the partial segment to be pushed after pg_receivewal lost the primary' },
      );
    } finally {
      await supervisor.stop();
      await streamEngine.close();
    }
    await rm(join(work, 'spool'), { recursive: true, force: true });
    const store = createStore(`file://${repoDir}`);
    const partials = (await new WalArchive(store).list('queue')).filter((object) => object.file.kind === 'partial');
    await store.close();
    expect(partials.length).toBeGreaterThanOrEqual(1);

    const restored = join(work, 'restored');
    const result = await engine.restore({ tier: 'queue', backup: 'latest', to: restored, start: true, port: await freeLoopbackPort() });
    try {
      const url = `postgres://postgres@127.0.0.1:${result.startedOnPort}/postgres`;
      const present = new Set((await sql.query<{ id: number }>(url, 'select id from queue_jobs')).map((row) => row.id));
      expect(acknowledged.filter((id) => !present.has(id))).toEqual([]);
    } finally {
      await engine.stopRestored(restored);
    }

    const postgres = lookupOsUser('postgres');
    expect(await worldAccessibleEntries(repoDir)).toEqual([]);
    expect((await directoryEntries(repoDir)).filter((entry) => entry.uid !== postgres.uid)).toEqual([]);
    expect(await entriesWithOtherModes(repoDir, { directory: 0o700, file: 0o600 })).toEqual([]);
  });
});
