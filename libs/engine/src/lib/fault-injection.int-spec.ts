import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { repositoryLayout } from '@rookery/repository';
import { type S3StoreDriver, createStore } from '@rookery/storage';
import {
  Fault,
  FaultProxy,
  S3ProxyHandle,
  TestCluster,
  acquireS3,
  pollUntil,
  s3StoreUrl,
  seedOltp,
  startCluster,
  startFaultProxy,
} from '@rookery/testing';

/**
 * Backups, verifies and restores through a network that misbehaves on purpose: a TCP proxy in
 * front of S3Proxy and one in front of PostgreSQL delay, cap, reset and stall the traffic of the
 * real `rookery` command. Whatever the fault, a backup either commits its manifest, verifies and
 * exits 0, or exits non-zero with the cause on stderr; never exit 0 without a manifest, never a
 * hang past the store's timeouts. Reads resume across resets. Afterwards the next backup and every
 * backup committed before stay good.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
/** Backups per fault (one: every fault still fires at least once, see below; the suite is CI's longest); the seeds of the proxies are printed, so a failing run replays. */
const RUNS = 1;
/**
 * A fault drawn per connection (a fraction of them) may miss every connection of RUNS backups (the
 * SDK keeps few connections alive): such a fault gets more runs, up to this many, until it fired.
 */
const MAX_RUNS_UNTIL_FIRED = 10;
/** Short store timeouts, so a stall ends in seconds; small parts, so backups are multipart uploads. */
const NETWORK = '&connectTimeoutMs=2000&socketTimeoutMs=5000&requestTimeoutMs=30000&maxAttempts=3&partSize=5242880';
/** A guard against a hung command, far beyond what the timeouts above allow. */
const HUNG_AFTER_MS = 300_000;
/** postgres.idleTimeoutSeconds of the PostgreSQL stall cases: a stalled base backup fails after 5 s of silence. */
const PG_IDLE_TIMEOUT_SECONDS = 5;

interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describe('fault injection: the rookery command through a faulty network', () => {
  let work: string;
  let cluster: TestCluster;
  let s3: S3ProxyHandle;
  let s3Proxy: FaultProxy;
  let pgProxy: FaultProxy;
  let faultyRepo: string;
  let directRepo: string;
  let pgUrl: string;
  let inspect: S3StoreDriver;
  let env: Record<string, string>;
  /** Every backup that exited 0, in order: all must still verify at the end. */
  const committed: string[] = [];
  const outcomes: Record<string, { committed: number; failed: number; causes: string[] }> = {};
  /**
   * The backups the store listed after the last backup through the proxies: the next one's list
   * before (no other step adds or removes a backup; the silent-store case checks its failed one
   * added none), which saves a `rookery info` per backup.
   */
  let listedAfterLastBackup: string[] | undefined;

  function rookery(args: string[]): Promise<CliRun> {
    return new Promise((done, fail) => {
      const child = spawn(process.execPath, [bin, ...args], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const guard = setTimeout(() => child.kill('SIGKILL'), HUNG_AFTER_MS);
      child.once('error', fail);
      child.once('close', (status, signal) => {
        clearTimeout(guard);
        done({ status, signal, stdout, stderr });
      });
    });
  }

  async function backupIds(): Promise<string[]> {
    const info = await rookery(['info', '--tier', 'oltp', '--json', '--repo', directRepo]);
    expect(info).toMatchObject({ status: 0, stderr: '' });
    return (JSON.parse(info.stdout) as { backups: { id: string }[] }).backups.map((backup) => backup.id);
  }

  async function verifies(id: string): Promise<void> {
    const verify = await rookery(['verify', '--tier', 'oltp', '--backup', id, '--repo', directRepo]);
    expect({ id, status: verify.status, stderr: verify.stderr }).toEqual({ id, status: 0, stderr: '' });
    expect(verify.stdout).toMatch(/^ok {6}base\.tar/m);
  }

  /**
   * One `rookery backup` through the proxies, and the invariant every run must keep: exit 0 with
   * exactly one new manifest that verifies, or a non-zero exit with one `rookery: …` line naming
   * the cause (`cause`) and no new manifest. Returns whether it committed.
   */
  async function backupThroughFault(label: string, cause: RegExp, configFile?: string): Promise<boolean> {
    const before = listedAfterLastBackup ?? (await backupIds());
    const config = configFile ? ['--config', configFile] : [];
    const run = await rookery([...config, 'backup', '--tier', 'oltp', '--json', '--repo', faultyRepo, '--pg-url', pgUrl]);
    // What the command did is judged against the store itself, reached without the proxy.
    s3Proxy.clearFault();
    pgProxy.clearFault();
    listedAfterLastBackup = await backupIds();
    const added = listedAfterLastBackup.filter((id) => !before.includes(id));
    const seen = { label, status: run.status, signal: run.signal, stderr: run.stderr.trim(), added };
    outcomes[label] ??= { committed: 0, failed: 0, causes: [] };
    expect(run.signal).toBeNull();
    if (run.status === 0) {
      expect(seen).toMatchObject({ added: [expect.any(String)] });
      expect((JSON.parse(run.stdout) as { id: string }).id).toBe(added[0]);
      await verifies(added[0]);
      committed.push(added[0]);
      outcomes[label].committed += 1;
      return true;
    }
    expect(seen).toMatchObject({ added: [], stderr: expect.stringMatching(/^rookery: /) });
    expect(seen.stderr.split('\n')).toHaveLength(1);
    expect(seen.stderr).toMatch(cause);
    outcomes[label].failed += 1;
    outcomes[label].causes.push(seen.stderr);
    return false;
  }

  async function runFault(label: string, proxy: () => FaultProxy, fault: Fault, cause: RegExp): Promise<number> {
    let fired = 0;
    const runs = fault.fraction === undefined ? RUNS : MAX_RUNS_UNTIL_FIRED;
    for (let run = 0; run < runs && (run < RUNS || fired === 0); run++) {
      const before = proxy().stats();
      proxy().setFault(fault);
      await backupThroughFault(label, cause);
      const after = proxy().stats();
      fired += after.resets + after.stalls - before.resets - before.stalls;
    }
    return fired;
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-faults-'));
    // A restore's files belong to the postgres account, which must reach their directory.
    await chmod(work, 0o711);
    cluster = await startCluster({ name: 'faults' });
    // Large enough that base.tar spans several 5 MiB parts and several connections.
    await seedOltp(cluster.url, { sizeMb: 24 });
    s3 = await acquireS3('primary');
    const bucket = `faults-${randomBytes(4).toString('hex')}`;
    await s3.createBucket(bucket);
    const s3Target = new URL(s3.endpoint);
    s3Proxy = await startFaultProxy({ host: s3Target.hostname, port: Number(s3Target.port) });
    pgProxy = await startFaultProxy({ host: '127.0.0.1', port: cluster.port });
    process.stdout.write(`fault proxy seeds: s3 ${s3Proxy.seed}, postgres ${pgProxy.seed}\n`);
    faultyRepo = `${s3StoreUrl({ ...s3, endpoint: s3Proxy.endpoint }, bucket, 'repo')}${NETWORK}`;
    directRepo = s3StoreUrl(s3, bucket, 'repo');
    const url = new URL(cluster.url);
    url.port = String(pgProxy.port);
    pgUrl = url.toString();
    env = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region };
    inspect = createStore(directRepo, {
      s3: { credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } },
    }) as S3StoreDriver;
  }, 600_000);

  afterAll(async () => {
    process.stdout.write(`fault injection outcomes (${RUNS} runs per fault): ${JSON.stringify(outcomes, null, 1)}\n`);
    await inspect?.close();
    await s3Proxy?.close();
    await pgProxy?.close();
    await cluster?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  // The failing object and the network's reason (the store's wording or the artifact writer's).
  const s3Cause = /(object|artifact) '[^']+'.*(ECONNRESET|EPIPE|timed out)/;

  it('without a fault every backup commits', async () => {
    for (let run = 0; run < RUNS; run++) expect(await backupThroughFault('none', /^$/)).toBe(true);
  }, 900_000);

  it('S3 slow: a delay on every chunk and a 2 MiB/s cap per connection', async () => {
    // Slower than a part per socket timeout is fine; what the kernels buffer between the CLI and
    // the proxy (a few MiB) must drain within it, as on a real link (its buffers match its speed).
    await runFault('s3 slow', () => s3Proxy, { delayMs: 2, bytesPerSecond: 2 * 1024 * 1024 }, s3Cause);
  }, 900_000);

  it('S3 resets: 30% of connections reset at a random byte', async () => {
    const fired = await runFault('s3 resets 30%', () => s3Proxy, { fraction: 0.3, resetAfterBytes: [0, 3 * 1024 * 1024] }, s3Cause);
    expect(fired).toBeGreaterThan(0);
    expect(await inspect.incompleteUploads()).toEqual([]);
  }, 900_000);

  it('S3 resets: every connection reset once it carried 1 to 2 MiB up (every part fails)', async () => {
    const fired = await runFault(
      's3 resets all',
      () => s3Proxy,
      { direction: 'up', resetAfterBytes: [1024 * 1024, 2 * 1024 * 1024] },
      s3Cause,
    );
    expect(fired).toBeGreaterThan(0);
    // Small requests still pass, so each failed upload was aborted.
    expect(await inspect.incompleteUploads()).toEqual([]);
  }, 900_000);

  it('S3 stall once: one connection stops forwarding mid-upload and is retried', async () => {
    const fired = await runFault(
      's3 stall once',
      () => s3Proxy,
      { direction: 'up', stallAfterBytes: [64 * 1024, 4 * 1024 * 1024], limit: 1 },
      s3Cause,
    );
    // Every run met the stall (a stalled connection of one run may be counted when it ends, in the next).
    expect(fired).toBeGreaterThanOrEqual(RUNS);
  }, 900_000);

  it('S3 stalled: every connection stops forwarding; the backup fails on the store timeouts', async () => {
    for (let run = 0; run < RUNS; run++) {
      s3Proxy.setFault({ stallAfterBytes: [0, 2 * 1024 * 1024] });
      const ok = await backupThroughFault(
        's3 stalled',
        /timed out \((the request socket timed out after 5000 ms of inactivity|a request has exceeded the configured 30000 ms requestTimeout)\)/,
      );
      expect(ok).toBe(false);
    }
    // An abort sent while every connection stalls cannot arrive (the bucket's lifecycle rule,
    // AbortIncompleteMultipartUpload, is the remedy); here each connection stalls after its own
    // drawn count, so a retried abort usually gets through. Reported, not judged.
    const left = await inspect.incompleteUploads();
    process.stdout.write(`multipart uploads left by ${RUNS} backups against a stalled server: ${left.length}\n`);
  }, 900_000);

  it('PostgreSQL slow: a delay on every chunk and a 2 MiB/s cap per connection', async () => {
    await runFault('pg slow', () => pgProxy, { delayMs: 2, bytesPerSecond: 2 * 1024 * 1024 }, /./);
  }, 900_000);

  it('PostgreSQL reset: the connection carrying the base backup is reset at a random byte', async () => {
    const fired = await runFault(
      'pg reset',
      () => pgProxy,
      { direction: 'down', resetAfterBytes: [256 * 1024, 8 * 1024 * 1024], limit: 1 },
      /connection|terminated|ECONNRESET|reset/i,
    );
    expect(fired).toBe(RUNS);
  }, 900_000);

  // The base backup's connection stops forwarding once it carried 64 KiB to 4 MiB down (less than
  // the archive): PostgreSQL goes silent with the connection open. Each run fails on
  // postgres.idleTimeoutSeconds naming the server and the stall, leaves no manifest and releases
  // its lock; the next backup without the fault commits. Server-compressed (BASE_BACKUP over the
  // replication protocol) and client-compressed (pg_basebackup) paths alike.
  it.each([
    [
      'server',
      /no data from PostgreSQL at 127\.0\.0\.1:\d+\/\S+ for 5 s while streaming the (base backup|backup manifest) \(hint: the server or network stalled; raise postgres\.idleTimeoutSeconds/,
    ],
    [
      'client',
      /no data from PostgreSQL at 127\.0\.0\.1:\d+\/\S+ for 5 s while pg_basebackup streamed the base backup \(hint: the server or network stalled; raise postgres\.idleTimeoutSeconds/,
    ],
  ] as const)(
    'PostgreSQL stall: the base backup connection goes silent (compression on the %s)',
    async (location, cause) => {
      const configFile = join(work, `pg-stall-${location}.yaml`);
      // pg_basebackup takes the backup of a client-compressing tier without block incrementals
      // (one with them goes over the replication protocol, as the server case does).
      const fullsOnly = location === 'client' ? { tiers: { oltp: { policy: { physical: { incremental: null } } } } } : {};
      await writeFile(
        configFile,
        JSON.stringify({ postgres: { idleTimeoutSeconds: PG_IDLE_TIMEOUT_SECONDS }, compression: { location }, ...fullsOnly }),
      );
      const label = `pg stall (${location})`;
      for (let run = 0; run < RUNS; run++) {
        const before = pgProxy.stats().stalls;
        pgProxy.setFault({ direction: 'down', stallAfterBytes: [64 * 1024, 4 * 1024 * 1024] });
        expect(await backupThroughFault(label, cause, configFile)).toBe(false);
        expect(pgProxy.stats().stalls - before).toBeGreaterThan(0);
        expect(await inspect.stat(repositoryLayout.lockKey('oltp'))).toBeNull();
      }
      expect(await backupThroughFault(`after ${label}`, /^$/, configFile)).toBe(true);
    },
    900_000,
  );

  it('a reset while verify and restore download is resumed, and both succeed', async () => {
    const id = committed.at(-1);
    expect(id).toBeDefined();
    for (let run = 0; run < RUNS; run++) {
      const before = s3Proxy.stats().resets;
      s3Proxy.setFault({ direction: 'down', resetAfterBytes: [512 * 1024, 2 * 1024 * 1024] });
      const verify = await rookery(['verify', '--tier', 'oltp', '--backup', id as string, '--repo', faultyRepo]);
      const dir = join(work, `restored-${run}`);
      const restore = await rookery(['restore', '--tier', 'oltp', '--backup', id as string, '--to', dir, '--repo', faultyRepo]);
      s3Proxy.clearFault();
      expect({ status: verify.status, stderr: verify.stderr }).toEqual({ status: 0, stderr: '' });
      expect({ status: restore.status, stderr: restore.stderr }).toEqual({ status: 0, stderr: '' });
      expect(s3Proxy.stats().resets - before).toBeGreaterThan(1);
      expect(await readdir(dir)).toEqual(expect.arrayContaining(['PG_VERSION', 'base', 'global']));
    }
  }, 900_000);

  it('afterwards the next backup commits and every backup committed before still verifies', async () => {
    expect(await backupThroughFault('after', /^$/)).toBe(true);
    const listed = await backupIds();
    expect(listed).toEqual(expect.arrayContaining(committed));
    for (const id of committed) await verifies(id);
  }, 900_000);

  // A backup whose store goes silent mid-upload and stays silent: its cleanup (the backup's
  // objects, the tier's lock) talks to the same endpoint, and gives up after one deadline
  // (FAILED_BACKUP_CLEANUP_MS) instead of the timeouts × attempts of every request, saying what
  // it left and who removes it. The next backup takes over the lock the exited process left.
  describe('S3 silent for good: the cleanup of the failed backup', () => {
    it('fails naming the timeout, says the lock and the partial backup were left, and the next backup takes the lock over', async () => {
      const lockKey = repositoryLayout.lockKey('oltp');
      const before = await backupIds();
      const run = rookery(['backup', '--tier', 'oltp', '--json', '--repo', faultyRepo, '--pg-url', pgUrl]);
      // Once parts are moving, every connection (the open ones too) stops forwarding.
      const moved = s3Proxy.stats().bytesUp;
      await pollUntil(
        async () => s3Proxy.stats().bytesUp - moved,
        (bytes) => bytes > 6 * 1024 * 1024,
        { what: 'the upload under way' },
      );
      s3Proxy.setFault({ stallAfterBytes: 0 });
      const failed = await run;
      s3Proxy.clearFault();
      process.stdout.write(`a backup against a silent store:\n${failed.stderr}`);

      const lines = failed.stderr.trim().split('\n');
      expect({ status: failed.status, stdout: failed.stdout, lines: lines.length }).toEqual({ status: 1, stdout: '', lines: 2 });
      expect(lines[0]).toMatch(
        new RegExp(
          "^rookery: warning: the partial objects of failed backup '\\S+' under oltp/\\S+ and the lock of tier 'oltp' could not be removed from s3://.+?: " +
            'the store did not answer within 30 s; they have no manifest, so they are never restored, and rookery expire removes them once they are a day old; ' +
            'the next backup takes the lock over once this process has exited \\(on this host\\), or when it is 10 minutes without a heartbeat$',
        ),
      );
      expect(lines[1]).toMatch(/^rookery: .*'[^']+'.*timed out/);
      // What the warning says was left is there: the lock of the exited process, and no manifest.
      expect(await inspect.stat(lockKey)).not.toBeNull();
      expect(await backupIds()).toEqual(before);

      expect(await backupThroughFault('after s3 silent', /^$/)).toBe(true);
      expect(await inspect.stat(lockKey)).toBeNull();
    }, 900_000);
  });
});
