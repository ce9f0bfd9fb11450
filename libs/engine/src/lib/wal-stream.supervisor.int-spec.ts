import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RookeryConfig, WalStreamConfig, buildConfig } from '@rookery/config';
import { PgSqlClient } from '@rookery/postgres';
import { TestCluster, acquireS3, freeLoopbackPort, pollUntil, s3StoreUrl, startCluster } from '@rookery/testing';
import { WalStreamStatus, WalStreamSupervisor, createWalStreamSupervisor } from '@rookery/wal';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * The queue tier's promise (DESIGN §2, RPO 0): with a synchronous pg_receivewal registered in
 * synchronous_standby_names, a commit that returned is in the repository even when the primary
 * crashes and its data directory is lost. Real PostgreSQL, the real S3-compatible server, the
 * built CLI as restore_command.
 */
jest.setTimeout(180_000);

const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const sql = new PgSqlClient({ applicationName: 'queue-writer' });
const until = <T>(probe: () => Promise<T>, done: (value: T) => boolean, what: string) => pollUntil(probe, done, { what });

function streamingSync(status: WalStreamStatus): boolean {
  return 'registered' in status.primary && status.primary.registered && status.primary.syncState === 'sync' && status.receiver.running;
}

/** Commits `count` single-row transactions one after another; returns the ids whose commit returned. */
async function commitBurst(url: string, from: number, count: number): Promise<number[]> {
  return sql.withSession(url, async (session) => {
    const acknowledged: number[] = [];
    for (let id = from; id < from + count; id++) {
      await session.query('insert into queue_jobs (id, payload) values ($1, $2)', [id, `job ${id}`]);
      acknowledged.push(id);
    }
    return acknowledged;
  });
}

/**
 * Resolves 'returned' or 'waiting' after `ms`, whichever comes first: only to see that a commit
 * waits (a slow machine can only make it wait longer), never to bound how fast one returns.
 */
function settlesWithin(work: Promise<unknown>, ms: number): Promise<'returned' | 'waiting'> {
  return Promise.race([work.then(() => 'returned' as const), new Promise<'waiting'>((done) => setTimeout(() => done('waiting'), ms))]);
}

describe('WAL stream supervisor (synchronous pg_receivewal of the queue tier)', () => {
  let work: string;
  let primary: TestCluster;
  let repository: string;
  let rookeryWrapper: string;
  let engine: RookeryEngine;
  const supervisors: WalStreamSupervisor[] = [];
  const engines: RookeryEngine[] = [];
  const logs: string[] = [];

  function config(walStream: Partial<WalStreamConfig> = {}): RookeryConfig {
    return buildConfig(
      {
        repositories: [repository],
        tiers: { queue: { pgUrl: primary.url } },
        walStream: {
          spoolDir: join(work, 'spool'),
          manageSynchronousStandbyNames: true,
          restartBackoffMs: { initial: 200, max: 1_000 },
          ...walStream,
        },
      },
      'wal-stream int-spec',
    );
  }

  async function supervise(walStream: Partial<WalStreamConfig> = {}): Promise<WalStreamSupervisor> {
    const streamEngine = await createEngine(config(walStream), { actor: 'test' });
    engines.push(streamEngine);
    const supervisor = await createWalStreamSupervisor(streamEngine.walStreamSource(), {
      sweepIntervalMs: 300,
      log: (level, message) => logs.push(`${level}: ${message}`),
    });
    supervisors.push(supervisor);
    await supervisor.start();
    await until(() => supervisor.status(), streamingSync, 'pg_receivewal to stream as the synchronous standby');
    return supervisor;
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-stream-'));
    // Servers (and restore_command) run as the postgres account: it must reach what is below.
    await chmod(work, 0o711);
    const s3 = await acquireS3('primary');
    const bucket = `queue-${randomBytes(4).toString('hex')}`;
    await s3.createBucket(bucket);
    repository = s3StoreUrl(s3, bucket, 'repo');
    // restore_command gets no AWS_* variables from the server: a shared credentials file, as
    // ~postgres/.aws would be on a real host.
    // The restored server runs restore_command with no AWS_* variables of ours, and would expand
    // the URL's % signs: a wrapper carries a shared credentials file (as ~postgres/.aws would on a
    // real host) and the repository.
    await writeFile(
      join(work, 'aws-credentials'),
      `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`,
      { mode: 0o644 },
    );
    rookeryWrapper = join(work, 'rookery-queue.sh');
    await writeFile(
      rookeryWrapper,
      `#!/bin/sh\nexport AWS_SHARED_CREDENTIALS_FILE='${join(work, 'aws-credentials')}' AWS_REGION='${s3.region}'\nexec '${process.execPath}' '${bin}' --repo '${repository}' "$@"\n`,
      { mode: 0o755 },
    );
    // synchronous_commit=on: the harness turns it off with fsync, and only 'on' waits for a standby.
    primary = await startCluster({ name: 'queue-primary', settings: { synchronous_commit: 'on' } });
    await primary.query('create table queue_jobs (id int primary key, payload text not null)');
    engine = await createEngine(config(), { actor: 'test', selfCommand: [rookeryWrapper] });
  });

  afterAll(async () => {
    for (const supervisor of supervisors) await supervisor.stop().catch(() => undefined);
    await primary?.destroy();
    for (const streamEngine of [...engines, engine]) await streamEngine?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('registers itself in synchronous_standby_names and streams as the sync standby through its permanent slot', async () => {
    const supervisor = await supervise();
    const status = await supervisor.status();
    expect(status.primary).toMatchObject({
      registered: true,
      synchronousStandbyNames: '"rookery_queue_wal"',
      syncState: 'sync',
      state: 'streaming',
      slot: { active: true, restartLsn: expect.any(String) },
    });
    expect(await commitBurst(primary.url, 1, 20)).toHaveLength(20);
    await supervisor.stop();
  });

  it('starts pg_receivewal again with backoff when it dies, and status counts the restarts', async () => {
    const supervisor = await supervise();
    const { pid } = (await supervisor.status()).receiver;
    expect(pid).toEqual(expect.any(Number));
    process.kill(pid as number, 'SIGKILL');
    const restarted = await until(
      () => supervisor.status(),
      (status) => status.receiver.restarts >= 1 && status.receiver.pid !== pid && streamingSync(status),
      'pg_receivewal to be restarted',
    );
    expect(restarted.receiver.lastExit).toMatchObject({ exitCode: null });
    expect(logs.some((line) => /starting pg_receivewal again in 200 ms \(restart 1\)/.test(line))).toBe(true);
    expect(await commitBurst(primary.url, 100, 5)).toHaveLength(5);
    await supervisor.stop();
  });

  it('blocking (default): while the service is down a commit waits, and returns once the stream is back', async () => {
    const stopped = await primary.query<{ names: string }>("select current_setting('synchronous_standby_names') as names");
    expect(stopped[0].names).toBe('"rookery_queue_wal"');
    const pending = commitBurst(primary.url, 200, 1);
    pending.catch(() => undefined);
    expect(await settlesWithin(pending, 2_000)).toBe('waiting');
    const supervisor = await supervise();
    // Returns once the stream is back (a wait: the suite's timeout is its cap).
    expect(await pending).toHaveLength(1);
    await supervisor.stop();
  });

  it('degrade: stopping removes the standby name so commits proceed; starting puts it back', async () => {
    const supervisor = await supervise({ onDown: 'degrade' });
    await supervisor.stop();
    const names = await primary.query<{ names: string }>("select current_setting('synchronous_standby_names') as names");
    expect(names[0].names).toBe('');
    // Commits go through without a standby (a blocked commit would wait until the suite's timeout).
    expect(await commitBurst(primary.url, 300, 3)).toHaveLength(3);
    const again = await supervise({ onDown: 'degrade' });
    expect((await again.status()).primary).toMatchObject({ registered: true, syncState: 'sync' });
    await again.stop();
  });

  it('keeps every acknowledged commit through a crash of the primary that destroys its data directory', async () => {
    const supervisor = await supervise();
    await engine.backup({ tier: 'queue' });
    const acknowledged = [...(await commitBurst(primary.url, 1_000, 300))];
    // More than a segment of WAL, so completed segments travel as well as the partial one.
    await primary.query("insert into queue_jobs select g, repeat('x', 2000) from generate_series(100000, 110000) g");
    acknowledged.push(...Array.from({ length: 10_001 }, (_, index) => 100_000 + index));
    acknowledged.push(...(await commitBurst(primary.url, 2_000, 300)));
    const before = await supervisor.status();

    // The crash: immediate shutdown, and the data directory is gone with it.
    await primary.destroy();
    const afterCrash = await until(
      () => supervisor.status(),
      (status) =>
        status.receiver.lastExit !== null &&
        status.uploads.lastPartial !== null &&
        status.uploads.lastPartial.at > (before.uploads.lastPartial?.at ?? ''),
      'the partial segment to be pushed after pg_receivewal lost the primary',
    );
    expect(afterCrash.uploads.lastUploaded).not.toBeNull();
    await supervisor.stop();
    // The repository alone: nothing from the spool may help the restore.
    await rm(join(work, 'spool'), { recursive: true, force: true });

    // The engine writes recovery.signal and restore_command = rookery wal-get, starts the server
    // and waits for it to replay the archive (the partial segment last) and promote.
    const restored = join(work, 'restored');
    const result = await engine.restore({ tier: 'queue', backup: 'latest', to: restored, start: true, port: await freeLoopbackPort() });
    try {
      expect(result.recovery?.outcome).toBeDefined();
      const url = `postgres://postgres@127.0.0.1:${result.startedOnPort}/postgres`;
      const rows = await sql.query<{ id: number }>(url, 'select id from queue_jobs');
      const present = new Set(rows.map((row) => row.id));
      const missing = acknowledged.filter((id) => !present.has(id));
      expect(missing).toEqual([]);
      expect(present.size).toBeGreaterThanOrEqual(acknowledged.length);
    } finally {
      await engine.stopRestored(restored);
    }
  });
});
