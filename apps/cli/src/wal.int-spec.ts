import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { Server, Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Store, WalFileName, parseWalFileName } from '@rookery/core';
import { lookupOsUser } from '@rookery/postgres';
import { WalArchive } from '@rookery/repository';
import { WalSpool, fileIdentity } from '@rookery/wal';
import { createStore } from '@rookery/storage';
import { TestCluster, acquireS3, freeLoopbackPort, pollUntil, s3StoreUrl, startCluster, walSegmentBytes } from '@rookery/testing';

/**
 * WAL archiving end to end: a real cluster whose archive_command is `rookery wal-push` (the built
 * CLI, run by the server as the postgres account), against the filesystem store and the
 * S3-compatible server. What PostgreSQL relies on: a segment counts as archived only once it is
 * in the store, a retry after an outage archives it, wal-get hands back the very bytes, and its
 * exit status tells "not archived" (1) from "cannot tell / damaged" (128).
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without blocking the event loop (the store gate below serves its connections). */
function rookery(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/** How long a wait may take before it fails: generous, a wait for a condition, never a time bound on it. */
const WAIT_MS = 180_000;
/** Test cases that wait for the server or the archiver. */
const WAITING_TEST_MS = 2 * WAIT_MS;

/**
 * What the wal-push fast path may load: libs/wal's entry for bin/ with the foreground archiver, its
 * argument parser and spool, the launcher, the spec's probe, and cli.drain (node built-ins only:
 * fails a command whose promise never settled).
 */
const FAST_PATH_MODULES =
  /wal\/src\/bin\.js$|wal\.arguments\.js$|wal-archiver\.foreground\.js$|wal-file\.check\.js$|wal\.spool\.js$|bin\/rookery\.js$|cli\.drain\.js$|probe\.cjs$/;

/** Polls `probe` until it gives a value (not undefined, false or null) and returns that value. */
async function until<T>(probe: () => Promise<T | undefined | false | null>, what: string): Promise<T> {
  const value = await pollUntil(probe, (candidate) => candidate !== undefined && candidate !== false && candidate !== null, {
    what,
    timeoutMs: WAIT_MS,
    intervalMs: 50,
  });
  return value as T;
}

interface ArchiverState {
  archived_count: string;
  last_archived_wal: string | null;
  failed_count: string;
  last_failed_wal: string | null;
}

async function archiver(cluster: TestCluster): Promise<ArchiverState> {
  const [row] = await cluster.query<ArchiverState & Record<string, unknown>>(
    'select archived_count::text, last_archived_wal, failed_count::text, last_failed_wal from pg_stat_archiver',
  );
  return row;
}

/** Writes a little WAL and switches to the next segment; returns the name of the one it closed. */
async function switchSegment(cluster: TestCluster): Promise<string> {
  await cluster.query('insert into wal_probe select g, md5(g::text) from generate_series(1, 500) g');
  const [row] = await cluster.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
  return row.name;
}

function untilArchived(cluster: TestCluster, name: string): Promise<ArchiverState> {
  return until(async () => {
    const state = await archiver(cluster);
    return state.last_archived_wal !== null && state.last_archived_wal >= name ? state : undefined;
  }, `${name} to be archived (server log: ${cluster.logFile})`);
}

function sha256(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

/**
 * A TCP relay in front of the S3 server: closing it is the store going away for archive_command
 * (connections refused) while the server and its data stay; opening it again on the same port is
 * the store coming back.
 */
class StoreGate {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async open(): Promise<void> {
    this.port ||= await freeLoopbackPort();
    const server = createServer((client) => {
      const upstream = connect(Number(this.target.port), this.target.hostname);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((done, fail) => {
      server.once('error', fail);
      server.listen(this.port, '127.0.0.1', () => done());
    });
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((done) => server.close(done));
  }
}

interface StoreUnderTest {
  /** The --repo URL archive_command and the test use. */
  url: string;
  /** Prepended to archive_command: how the server's children find the store's credentials. */
  commandEnv: string;
  /** The same repository reached directly (the test inspects it while the gate is closed). */
  inspectUrl: string;
  /** Another location in the same kind of store, for the encrypted round trip. */
  otherUrl: string;
  goAway(): Promise<void>;
  comeBack(): Promise<void>;
  close(): Promise<void>;
}

async function fileStore(work: string): Promise<StoreUnderTest> {
  const owner = lookupOsUser('postgres');
  const repoDir = join(work, 'repo');
  const timelineDir = join(repoDir, 'oltp', 'wal', '00000001');
  await mkdir(timelineDir, { recursive: true });
  // archive_command runs as the server's account: the repository must be its to write.
  for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal'), timelineDir]) {
    await chown(dir, owner.uid, owner.gid);
  }
  return {
    url: `file://${repoDir}`,
    inspectUrl: `file://${repoDir}`,
    commandEnv: '',
    otherUrl: `file://${join(work, 'repo-encrypted')}`,
    // A repository directory the server's account may no longer write to.
    goAway: () => chmod(timelineDir, 0o555),
    comeBack: () => chmod(timelineDir, 0o755),
    close: async () => undefined,
  };
}

async function s3Store(work: string): Promise<StoreUnderTest> {
  const s3 = await acquireS3('primary');
  const bucket = `wal-${randomBytes(4).toString('hex')}`;
  await s3.createBucket(bucket);
  const gate = new StoreGate(new URL(s3.endpoint));
  await gate.open();
  const gated = { ...s3, endpoint: `http://127.0.0.1:${gate.port}` };
  // The server hands its children only PATH, HOME, LANG, TZ and TMPDIR (the test's AWS_*
  // variables never reach archive_command): credentials come from a shared credentials file, as
  // they would from ~postgres/.aws on a real host.
  const credentials = join(work, 'aws-credentials');
  const config = join(work, 'aws-config');
  await writeFile(credentials, `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`, {
    mode: 0o644,
  });
  await writeFile(config, `[default]\nregion = ${s3.region}\n`, { mode: 0o644 });
  return {
    url: s3StoreUrl(gated, bucket, 'archive'),
    inspectUrl: s3StoreUrl(s3, bucket, 'archive'),
    commandEnv: `AWS_SHARED_CREDENTIALS_FILE=${credentials} AWS_CONFIG_FILE=${config} `,
    otherUrl: s3StoreUrl(s3, bucket, 'encrypted'),
    goAway: () => gate.close(),
    comeBack: () => gate.open(),
    close: () => gate.close(),
  };
}

describe.each([
  ['filesystem', fileStore],
  ['S3', s3Store],
] as const)('WAL archiving through rookery wal-push / wal-get (%s store)', (kind, makeStore) => {
  let work: string;
  let store: StoreUnderTest;
  let cluster: TestCluster;
  let inspect: Store;
  const archived: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-'));
    // The server's account reads the credentials files and writes the file repository under it.
    await chmod(work, 0o711);
    store = await makeStore(work);
    inspect = createStore(store.inspectUrl);
    cluster = await startCluster({
      name: 'wal-archive',
      settings: {
        archive_mode: 'on',
        archive_command: `${store.commandEnv}${process.execPath} ${bin} wal-push %p --tier oltp --repo '${store.url}'`,
        // Keep the archived segments in pg_wal so the test can compare them byte for byte.
        wal_keep_size: '1GB',
      },
    });
    await cluster.query('create table wal_probe (id int, payload text)');
  }, 120_000);

  afterAll(async () => {
    await cluster?.destroy();
    await inspect?.close();
    await store?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function segmentCopy(name: string, into: string): Promise<string> {
    await mkdir(into, { recursive: true });
    const path = join(into, name);
    await copyFile(join(cluster.dataDir, 'pg_wal', name), path);
    return path;
  }

  async function objectsOf(name: string) {
    const file = parseWalFileName(name);
    if (!file) throw new Error(`not a WAL file name: ${name}`);
    return new WalArchive(inspect).versions('oltp', file);
  }

  it(
    'archives each switched segment, and wal-get returns it byte for byte',
    async () => {
      for (let round = 0; round < 3; round++) archived.push(await switchSegment(cluster));
      const state = await untilArchived(cluster, archived.at(-1) as string);
      expect(Number(state.failed_count)).toBe(0);

      for (const name of archived) {
        expect(await objectsOf(name)).toHaveLength(1);
        const destination = join(work, 'fetched', name);
        await mkdir(join(work, 'fetched'), { recursive: true });
        const result = await rookery(['wal-get', name, destination, '--tier', 'oltp', '--repo', store.url]);
        expect(result).toMatchObject({ status: 0, stderr: '' });
        const original = await readFile(join(cluster.dataDir, 'pg_wal', name));
        const fetched = await readFile(destination);
        expect(fetched.length).toBe(16 * 1024 * 1024);
        expect(sha256(fetched)).toBe(sha256(original));
      }
    },
    WAITING_TEST_MS,
  );

  it('an identical duplicate push succeeds; a conflicting one is refused and nothing is overwritten', async () => {
    const name = archived[0];
    const copy = await segmentCopy(name, join(work, 'dup'));
    const again = await rookery(['wal-push', copy, '--tier', 'oltp', '--repo', store.url, '--json']);
    expect(again.status).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ name, status: 'already-archived' });

    const conflicting = await segmentCopy(name, join(work, 'conflict'));
    const bytes = await readFile(conflicting);
    bytes[4096] ^= 0xff;
    await writeFile(conflicting, bytes);
    const refused = await rookery(['wal-push', conflicting, '--tier', 'oltp', '--repo', store.url]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`WAL file '${name}' of tier 'oltp' is already archived with different content`);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);

    expect(await objectsOf(name)).toHaveLength(1);
    const destination = join(work, 'fetched', `${name}.after-conflict`);
    expect((await rookery(['wal-get', name, destination, '--tier', 'oltp', '--repo', store.url])).status).toBe(0);
    expect(sha256(await readFile(destination))).toBe(sha256(await readFile(join(cluster.dataDir, 'pg_wal', name))));
  }, 60_000);

  // How long it takes (recovery probes for the next segment this way) is measured by tools/bench/pitr.mjs.
  it('wal-get of a segment that is not archived exits 1 and leaves nothing at DEST', async () => {
    const destination = join(work, 'fetched', 'missing');
    const result = await rookery(['wal-get', '0000000100000000000000F0', destination, '--tier', 'oltp', '--repo', store.url]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("WAL file '0000000100000000000000F0' of tier 'oltp' is not in the archive");
    expect(existsSync(destination)).toBe(false);
  }, 60_000);

  it('a name that is not a WAL file is refused without touching the store', async () => {
    const result = await rookery(['wal-get', 'RECOVERYXLOG', join(work, 'fetched', 'junk'), '--tier', 'oltp', '--repo', store.url]);
    expect(result.status).toBe(128);
    expect(result.stderr).toContain("'RECOVERYXLOG' is not a WAL file name");
  }, 30_000);

  it(
    'while the store is unreachable archive_command fails and the segment stays ready; once back, the retry archives it',
    async () => {
      const before = await archiver(cluster);
      await store.goAway();
      let pending: string;
      try {
        pending = await switchSegment(cluster);
        await until(async () => {
          const state = await archiver(cluster);
          return Number(state.failed_count) > Number(before.failed_count) && state.last_failed_wal === pending;
        }, `archive_command to fail on ${pending}`);
        expect((await archiver(cluster)).last_archived_wal).toBe(before.last_archived_wal);
        expect(existsSync(join(cluster.dataDir, 'pg_wal', 'archive_status', `${pending}.ready`))).toBe(true);
        expect(await objectsOf(pending)).toHaveLength(0);
      } finally {
        await store.comeBack();
      }
      // A new segment wakes the archiver, which retries the failed one first (it archives in order).
      const next = await switchSegment(cluster);
      await untilArchived(cluster, next);
      expect(await objectsOf(pending)).toHaveLength(1);
      const destination = join(work, 'fetched', `${pending}.retried`);
      expect((await rookery(['wal-get', pending, destination, '--tier', 'oltp', '--repo', store.url])).status).toBe(0);
      expect(sha256(await readFile(destination))).toBe(sha256(await readFile(join(cluster.dataDir, 'pg_wal', pending))));
      archived.push(pending, next);
    },
    WAITING_TEST_MS,
  );

  it('a damaged object makes wal-get exit 128 (recovery must stop) and leaves no file at DEST', async () => {
    const name = archived[1];
    const [object] = await objectsOf(name);
    const chunks: Buffer[] = [];
    for await (const chunk of await inspect.read(object.key)) chunks.push(chunk as Buffer);
    const stored = Buffer.concat(chunks);
    stored[Math.floor(stored.length / 2)] ^= 0xff;
    await inspect.write(object.key, Readable.from([stored]));

    const destination = join(work, 'fetched', `${name}.damaged`);
    const result = await rookery(['wal-get', name, destination, '--tier', 'oltp', '--repo', store.url]);
    expect(result.status).toBe(128);
    expect(result.stderr).toMatch(/^rookery: .+/);
    expect(existsSync(destination)).toBe(false);
    expect((await readdir(join(work, 'fetched'))).filter((entry) => entry.includes('.rookery-'))).toEqual([]);
  }, 60_000);

  it('encrypted: round trip with the key; without it wal-get exits 128', async () => {
    const key = randomBytes(32).toString('hex');
    const name = archived[2];
    const copy = await segmentCopy(name, join(work, 'encrypted'));
    const pushed = await rookery(['wal-push', copy, '--tier', 'oltp', '--repo', store.otherUrl, '--json'], { ROOKERY_ENCRYPTION_KEY: key });
    expect(pushed.status).toBe(0);
    const result = JSON.parse(pushed.stdout) as { key: string; status: string };
    expect(result).toMatchObject({ status: 'archived' });
    expect(result.key).toMatch(/\.enc$/);

    const destination = join(work, 'fetched', `${name}.decrypted`);
    const fetched = await rookery(['wal-get', name, destination, '--tier', 'oltp', '--repo', store.otherUrl], {
      ROOKERY_ENCRYPTION_KEY: key,
    });
    expect(fetched).toMatchObject({ status: 0, stderr: '' });
    expect(sha256(await readFile(destination))).toBe(sha256(await readFile(copy)));

    const keyless = join(work, 'fetched', `${name}.keyless`);
    const refused = await rookery(['wal-get', name, keyless, '--tier', 'oltp', '--repo', store.otherUrl], { ROOKERY_ENCRYPTION_KEY: '' });
    expect(refused.status).toBe(128);
    expect(refused.stderr).toContain('is encrypted and no encryption key is configured');
    expect(existsSync(keyless)).toBe(false);

    const wrongKey = await rookery(['wal-get', name, keyless, '--tier', 'oltp', '--repo', store.otherUrl], {
      ROOKERY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
    });
    expect(wrongKey.status).toBe(128);
    expect(existsSync(keyless)).toBe(false);
  }, 60_000);

  it('rookery check forces a switch and finds the segment in the repository', async () => {
    const result = await rookery(['check', '--tier', 'oltp', '--repo', store.url, '--pg-url', cluster.url, '--json']);
    expect(result).toMatchObject({ status: 0, stderr: '' });
    const check = JSON.parse(result.stdout) as { segment: string; key: string };
    expect(await objectsOf(check.segment)).toHaveLength(1);
    const text = await rookery(['check', '--tier', 'oltp', '--repo', store.url, '--pg-url', cluster.url]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^archiving ok for tier oltp: segment [0-9A-F]{24} reached the repository in /);
  }, 120_000);

  it('rookery check fails clearly when the segment never reaches this repository', async () => {
    const elsewhere = kind === 'filesystem' ? `file://${join(work, 'not-archived-here')}` : store.otherUrl;
    const result = await rookery(['check', '--tier', 'oltp', '--repo', elsewhere, '--pg-url', cluster.url, '--timeout', '3']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/^rookery: WAL segment '[0-9A-F]{24}' of tier 'oltp' did not reach the repository within 3 s/);
  }, 60_000);

  it(
    'info reports the WAL archive: newest segment, archiver state and RPO exposure',
    async () => {
      await untilArchived(cluster, await switchSegment(cluster));
      const result = await rookery(['info', '--tier', 'oltp', '--json', '--repo', store.url, '--pg-url', cluster.url]);
      expect(result.status).toBe(0);
      const info = JSON.parse(result.stdout) as { backups: unknown[]; wal: Record<string, WalStatusJson> };
      expect(info.backups).toEqual([]);
      const wal = info.wal['oltp'];
      const state = await archiver(cluster);
      expect(wal.lastArchived?.name).toBe(state.last_archived_wal);
      expect(wal.server?.archiveMode).toBe('on');
      expect(wal.server?.archiver.failedCount).toBeGreaterThan(0);
      expect(wal.server?.lagSegments).toBe(0);
      // Only the segment being written is exposed: less than one segment, accumulating since the last archive.
      expect(wal.exposure?.bytes).toBeGreaterThanOrEqual(0);
      expect(wal.exposure?.bytes).toBeLessThan(16 * 1024 * 1024);

      const table = await rookery(['info', '--tier', 'oltp', '--repo', store.url, '--pg-url', cluster.url]);
      expect(table.status).toBe(0);
      expect(table.stdout).toContain('WAL archive (oltp)');
      expect(table.stdout).toContain(`last archived   ${state.last_archived_wal}`);
      expect(table.stdout).toContain('rpo exposure');

      const serverless = await rookery(['info', '--tier', 'oltp', '--json', '--repo', store.url]);
      const offline = (JSON.parse(serverless.stdout) as { wal: Record<string, WalStatusJson> }).wal['oltp'];
      expect(offline).toMatchObject({ server: null, exposure: null, serverProblem: "no database URL configured for tier 'oltp'" });
      expect(offline.lastArchived?.name).toBe(state.last_archived_wal);
    },
    WAITING_TEST_MS,
  );
});

interface WalStatusJson {
  lastArchived: { name: string } | null;
  server: { archiveMode: string; currentLsn: string; lagSegments: number | null; archiver: { failedCount: number } } | null;
  exposure: { bytes: number; seconds: number } | null;
  serverProblem: string | null;
}

describe('rookery check refuses a server that does not archive with rookery', () => {
  const clusters: TestCluster[] = [];
  afterAll(async () => {
    await Promise.all(clusters.map((cluster) => cluster.destroy()));
  });

  it.each([
    [{}, "archive_mode is off on the server of tier 'oltp'"],
    [
      { archive_mode: 'on', archive_command: '/bin/true' },
      "archive_command of the server of tier 'oltp' does not run rookery wal-push for this tier: '/bin/true'",
    ],
    [
      { archive_mode: 'on', archive_command: `AWS_SECRET_ACCESS_KEY=hidden ${process.execPath} ${bin} wal-push %p --tier queue` },
      "does not run rookery wal-push for this tier: 'AWS_SECRET_ACCESS_KEY=*** ",
    ],
  ])(
    'settings %j',
    async (settings, message) => {
      const cluster = await startCluster({ name: 'wal-check', settings });
      clusters.push(cluster);
      const result = await rookery([
        'check',
        '--tier',
        'oltp',
        '--repo',
        'file:///nonexistent-rookery-check',
        '--pg-url',
        cluster.url,
        '--timeout',
        '5',
      ]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(message);
      expect(result.stderr).not.toContain('hidden');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    },
    60_000,
  );
});

/** Files the CLI process loaded, printed at exit (run with NODE_OPTIONS=--require this). */
const LOADED_MODULES_PROBE = `process.on('exit', () => process.stderr.write('loaded-modules ' + JSON.stringify(Object.keys(require.cache)) + '\\n'));`;

function loadedModules(stderr: string): string[] {
  const line = stderr.split('\n').find((entry) => entry.startsWith('loaded-modules '));
  return line ? (JSON.parse(line.slice('loaded-modules '.length)) as string[]) : [];
}

/**
 * Asynchronous archiving (wal.archiveAsync): a background archiver pushes what PostgreSQL marked
 * ready and acknowledges in the spool what the store confirmed; wal-push waits for the
 * acknowledgement of its file. Most cases drive a pg_wal of our own (random segments and their
 * .ready files, renamed to .done as PostgreSQL does after a 0 exit) so each situation is exact;
 * the last one runs the real server's archiver against it.
 */
describe('asynchronous archiving (wal.archiveAsync)', () => {
  let work: string;
  let serial = 0x20;
  const archivers = new Set<number>();

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-async-'));
    await chmod(work, 0o711);
    await writeFile(join(work, 'probe.cjs'), LOADED_MODULES_PROBE);
  });

  afterAll(async () => {
    // Archivers exit by themselves when idle; stop any a failed case left behind.
    for (const pid of archivers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (work) await rm(work, { recursive: true, force: true });
  });

  interface Setup {
    dir: string;
    config: string;
    walDir: string;
    spool: string;
    repo: string;
    names: string[];
  }

  /** A pg_wal with `count` ready segments, a config for archiving it asynchronously, a spool and a repository. */
  async function setup(label: string, count: number, extra = ''): Promise<Setup> {
    const dir = join(work, label);
    const walDir = join(dir, 'pg_wal');
    await mkdir(join(walDir, 'archive_status'), { recursive: true });
    const names: string[] = [];
    for (let index = 0; index < count; index++) names.push(await addReadySegment(walDir));
    const spool = join(dir, 'spool');
    const repo = join(dir, 'repo');
    const config = join(dir, 'rookery.yaml');
    await writeFile(
      config,
      `repositories:\n  - file://${repo}\ncompression:\n  codec: zstd\n  level: 1\n` +
        `wal:\n  archiveAsync: true\n  spoolPath: ${spool}\n  processMax: 2\n  archiverIdleSeconds: 3\n  archiveTimeoutSeconds: 30\n${extra}`,
    );
    return { dir, config, walDir, spool, repo, names };
  }

  /** A new 16 MiB segment (a valid header, then random bytes) in `walDir`, marked ready to archive; its name. */
  async function addReadySegment(walDir: string): Promise<string> {
    const name = `0000000100000000000000${(serial++).toString(16).toUpperCase().padStart(2, '0')}`;
    await writeFile(join(walDir, name), walSegmentBytes(name));
    await writeFile(join(walDir, 'archive_status', `${name}.ready`), '');
    return name;
  }

  async function push(at: Setup, name: string, env: Record<string, string> = {}): Promise<RunResult> {
    const result = await rookery(['wal-push', join(at.walDir, name), '--tier', 'oltp', '--config', at.config, '--json'], env);
    // PostgreSQL marks a file archived only on a 0 exit.
    if (result.status === 0)
      await rename(join(at.walDir, 'archive_status', `${name}.ready`), join(at.walDir, 'archive_status', `${name}.done`));
    const pid = await archiverPid(at);
    if (pid) archivers.add(pid);
    return result;
  }

  async function archiverPid(at: Setup): Promise<number | null> {
    try {
      return Number.parseInt(await readFile(join(at.spool, 'oltp', 'archiver.pid'), 'utf8'), 10) || null;
    } catch {
      return null;
    }
  }

  const acknowledgementPath = (at: Setup, name: string) => join(at.spool, 'oltp', `${name}.ok`);

  /** sha256 of each archived version of `name` in the setup's repository. */
  async function storedVersions(at: Setup, name: string): Promise<string[]> {
    const store = createStore(`file://${at.repo}`);
    try {
      return (await new WalArchive(store).versions('oltp', parseWalFileName(name) as WalFileName)).map((object) => object.sha256);
    } finally {
      await store.close();
    }
  }

  it(
    'the background archiver pushes ahead; calls for acknowledged segments answer from the spool without loading the CLI',
    async () => {
      const at = await setup('ahead', 5);
      const first = await push(at, at.names[0]);
      expect(first).toMatchObject({ status: 0, stderr: '' });
      expect(JSON.parse(first.stdout)).toMatchObject({ name: at.names[0], status: 'acknowledged' });

      // Everything ready gets acknowledged without further calls: the archiver works ahead.
      for (const name of at.names.slice(1)) {
        await until(async () => existsSync(acknowledgementPath(at, name)), `the acknowledgement of ${name}`);
      }
      for (const name of at.names) {
        expect(await storedVersions(at, name)).toEqual([sha256(await readFile(join(at.walDir, name)))]);
      }

      for (const name of at.names.slice(1)) {
        const result = await push(at, name, { NODE_OPTIONS: `--require ${join(work, 'probe.cjs')}` });
        expect(result.status).toBe(0);
        expect(JSON.parse(result.stdout)).toMatchObject({ name, status: 'acknowledged', hashed: false });
        // The fast path: node built-ins and two small files of ours, no @rookery library, SDK or config parser.
        const loaded = loadedModules(result.stderr);
        expect(loaded.length).toBeGreaterThan(0);
        expect(loaded.filter((file) => !FAST_PATH_MODULES.test(file))).toEqual([]);
      }
      // Once PostgreSQL marked them done, the archiver drops their records: this one, or (when it
      // went idle before the last was marked, as on a loaded machine) the one the next segment starts.
      expect((await push(at, await addReadySegment(at.walDir))).status).toBe(0);
      await until(async () => at.names.every((name) => !existsSync(acknowledgementPath(at, name))), 'the records of archived files to go');
    },
    WAITING_TEST_MS,
  );

  it(
    'the first call of a configuration starts the archiver before loading the CLI; the archiver validates it and writes the cache',
    async () => {
      const at = await setup('early', 3);
      const probe = { NODE_OPTIONS: `--require ${join(work, 'probe.cjs')}` };
      const first = await push(at, at.names[0], probe);
      expect(first).toMatchObject({ status: 0 });
      expect(JSON.parse(first.stdout)).toMatchObject({ name: at.names[0], status: 'acknowledged', hashed: false });
      // No settings cache for this config file yet, and still no @rookery library, config parser or SDK in this process.
      const loaded = loadedModules(first.stderr);
      expect(loaded.length).toBeGreaterThan(0);
      expect(loaded.filter((file) => !FAST_PATH_MODULES.test(file))).toEqual([]);
      // The archiver logs to the spool, as one started by the full CLI does.
      expect(await readFile(join(at.spool, 'oltp', 'archiver.log'), 'utf8')).toMatch(/archiver \d+ started for tier oltp/);
      for (const name of at.names.slice(1)) {
        await until(async () => existsSync(acknowledgementPath(at, name)), `the acknowledgement of ${name}`);
        expect((await push(at, name)).status).toBe(0);
      }
      for (const name of at.names) {
        expect(await storedVersions(at, name)).toEqual([sha256(await readFile(join(at.walDir, name)))]);
      }
    },
    WAITING_TEST_MS,
  );

  it('an early start that finds the configuration invalid, or archiveAsync off, leaves the decision to the full CLI', async () => {
    // `archiveAsync: true` in the text, but no spoolPath: the full CLI reports the invalid configuration.
    const invalid = await setup('early-invalid', 1);
    await writeFile(invalid.config, (await readFile(invalid.config, 'utf8')).replace(/ {2}spoolPath: .*\n/, ''));
    const refused = await push(invalid, invalid.names[0]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('archiveAsync needs spoolPath');
    expect(await storedVersions(invalid, invalid.names[0])).toEqual([]);

    // Only a comment asks for it: the archiver refuses to run, the full CLI pushes synchronously.
    const commented = await setup('early-comment', 1);
    await writeFile(commented.config, (await readFile(commented.config, 'utf8')).replace('archiveAsync: true', '# archiveAsync: true'));
    const pushed = await push(commented, commented.names[0]);
    expect(pushed).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(pushed.stdout)).toMatchObject({ name: commented.names[0], status: 'archived' });
    expect(await storedVersions(commented, commented.names[0])).toEqual([
      sha256(await readFile(join(commented.walDir, commented.names[0]))),
    ]);
    expect(existsSync(acknowledgementPath(commented, commented.names[0]))).toBe(false);
    expect(await archiverPid(commented)).toBeNull();
  }, 120_000);

  it(
    'bin/rookery-wal-push answers for acknowledged files without node, and hands everything else to it',
    async () => {
      const at = await setup('shell', 4);
      expect((await push(at, at.names[0])).status).toBe(0);
      for (const name of at.names.slice(1)) {
        await until(async () => existsSync(acknowledgementPath(at, name)), `the acknowledgement of ${name}`);
      }
      // With node replaced by /bin/false, only the shell's own verdict can exit 0.
      const shell = (name: string) =>
        new Promise<number | null>((done, fail) => {
          const child = spawn(join(root, 'bin', 'rookery-wal-push'), [join(at.walDir, name), '--tier', 'oltp', '--config', at.config], {
            // The directory the CLI ran in (its cache is per working directory, as PostgreSQL's data directory is).
            cwd: root,
            env: { ...process.env, ROOKERY_NODE: '/bin/false' },
            stdio: 'ignore',
          });
          child.on('error', fail);
          child.on('close', done);
        });
      const [, acknowledged, changed, touched] = at.names;
      expect(await shell(acknowledged)).toBe(0);

      // Other content under an acknowledged name, or the same bytes rewritten (new ctime): node decides.
      const bytes = await readFile(join(at.walDir, changed));
      bytes[777] ^= 0xff;
      await writeFile(join(at.walDir, changed), bytes);
      expect(await shell(changed)).toBe(1);
      await writeFile(join(at.walDir, touched), await readFile(join(at.walDir, touched)));
      expect(await shell(touched)).toBe(1);
      // A config file changed since the CLI validated it: node decides, for every file.
      await writeFile(at.config, `${await readFile(at.config, 'utf8')}\n`);
      expect(await shell(acknowledged)).toBe(1);
      // And node, for the rewritten file with the same bytes, hashes it and accepts it.
      const real = await push(at, touched);
      expect(real.status).toBe(0);
      expect(JSON.parse(real.stdout)).toMatchObject({ name: touched, status: 'acknowledged', hashed: true });
    },
    WAITING_TEST_MS,
  );

  it(
    'bin/rookery-wal-push waits for the acknowledgement itself while the archiver lives, and hands over at once on a failure record or a dead archiver',
    async () => {
      const at = await setup('shell-wait', 1);
      expect((await push(at, at.names[0])).status).toBe(0); // the CLI validated the config: the shell has its cache
      // The real archiver leaves when idle; a stand-in process holds its lock, and this test writes the records.
      await until(async () => (await archiverPid(at)) === null, 'the archiver to exit');
      const standIn = spawn('sleep', ['60'], { stdio: 'ignore' });
      const spoolDir = join(at.spool, 'oltp');
      await writeFile(join(spoolDir, 'archiver.pid'), `${standIn.pid}\n`);
      const name = '000000010000000000000099';
      const path = join(at.walDir, name);
      await writeFile(path, walSegmentBytes(name));
      // The script's waits are `sleep 0.01` calls: a `sleep` first on its PATH records each one, and
      // holds the first back until the test opens the gate, so "it waited" is seen, never timed.
      const sleepBin = join(work, 'shell-wait-bin');
      await mkdir(sleepBin, { recursive: true });
      await writeFile(
        join(sleepBin, 'sleep'),
        '#!/bin/sh\necho "$*" >> "$SLEEP_LOG"\nwhile [ ! -e "$SLEEP_GATE" ]; do /bin/sleep 0.01; done\nexec /bin/sleep "$@"\n',
        { mode: 0o755 },
      );
      const gate = join(work, 'shell-wait-gate');
      const shell = (sleepLog: string) =>
        new Promise<number | null>((done, fail) => {
          const child = spawn(join(root, 'bin', 'rookery-wal-push'), [path, '--tier', 'oltp', '--config', at.config], {
            cwd: root,
            // Only the shell's own verdict can exit 0.
            env: {
              ...process.env,
              ROOKERY_NODE: '/bin/false',
              PATH: `${sleepBin}:${process.env['PATH']}`,
              SLEEP_LOG: sleepLog,
              SLEEP_GATE: gate,
            },
            stdio: 'ignore',
          });
          child.on('error', fail);
          child.on('close', done);
        });
      const sleeps = (sleepLog: string) =>
        readFile(sleepLog, 'utf8').then(
          (text) => text.split('\n').filter(Boolean).length,
          () => 0,
        );
      try {
        const waitingLog = join(work, 'shell-wait-waiting.log');
        let exited = false;
        const waiting = shell(waitingLog).finally(() => (exited = true));
        // No record yet, the archiver lives: the script waits (in its first sleep, held at the gate).
        await pollUntil(
          () => sleeps(waitingLog),
          (count) => count > 0,
          { what: 'the script to wait', timeoutMs: WAIT_MS },
        );
        expect(exited).toBe(false);
        const spool = new WalSpool(spoolDir);
        await spool.acknowledge(name, {
          sha256: sha256(await readFile(path)),
          store: `file://${at.repo}`,
          identity: await fileIdentity(path),
          at: new Date().toISOString(),
        });
        await writeFile(gate, '');
        expect(await waiting).toBe(0);

        // A failure record, then a dead archiver: handed over to node (here /bin/false) without one wait.
        await spool.forget(name);
        await spool.fail(name, { message: 'store refused it', code: null, at: new Date().toISOString() });
        const failedLog = join(work, 'shell-wait-failed.log');
        expect(await shell(failedLog)).toBe(1);
        expect(await sleeps(failedLog)).toBe(0);

        await spool.forget(name);
        standIn.kill('SIGKILL');
        await new Promise((done) => standIn.once('exit', done));
        const orphanedLog = join(work, 'shell-wait-orphaned.log');
        expect(await shell(orphanedLog)).toBe(1);
        expect(await sleeps(orphanedLog)).toBe(0);
      } finally {
        standIn.kill('SIGKILL');
      }
    },
    WAITING_TEST_MS,
  );

  it(
    'killing the background archiver mid-run loses nothing: no acknowledgement without the object, the next call restarts it',
    async () => {
      // A slow codec level so the archiver is killed in the middle of its pushes.
      const at = await setup('killed', 6, '');
      await writeFile(
        at.config,
        (await readFile(at.config, 'utf8')).replace('level: 1', 'level: 19').replace('processMax: 2', 'processMax: 1'),
      );
      const first = rookery(['wal-push', join(at.walDir, at.names[0]), '--tier', 'oltp', '--config', at.config]);
      const pid = await until(() => archiverPid(at), 'the archiver to start');
      archivers.add(pid);
      await until(async () => existsSync(acknowledgementPath(at, at.names[0])), 'a first acknowledgement');
      process.kill(pid, 'SIGKILL');
      expect((await first).status).toBe(0);
      await rename(join(at.walDir, 'archive_status', `${at.names[0]}.ready`), join(at.walDir, 'archive_status', `${at.names[0]}.done`));

      // Every acknowledgement left behind names content that is in the store.
      const acknowledged = at.names.filter((name) => existsSync(acknowledgementPath(at, name)));
      expect(acknowledged.length).toBeLessThan(at.names.length);
      for (const name of acknowledged) {
        const record = JSON.parse((await readFile(acknowledgementPath(at, name), 'utf8')).trim().split('\n').at(-1) as string) as {
          sha256: string;
        };
        expect(await storedVersions(at, name)).toEqual([record.sha256]);
      }

      // PostgreSQL goes on calling for the next files: a new archiver takes over the abandoned lock.
      for (const name of at.names.slice(1)) {
        const result = await push(at, name);
        expect(result).toMatchObject({ status: 0, stderr: '' });
      }
      expect(await archiverPid(at)).not.toBe(pid);
      for (const name of at.names) {
        expect(await storedVersions(at, name)).toEqual([sha256(await readFile(join(at.walDir, name)))]);
      }
    },
    WAITING_TEST_MS,
  );

  it('a push that fails in the background makes wal-push fail at once with the reason, and never acknowledges', async () => {
    const at = await setup('failing', 2);
    const [name] = at.names;
    // Another server's copy of this segment is already in the repository (the push must be refused).
    const other = join(at.dir, 'other', name);
    await mkdir(join(at.dir, 'other'), { recursive: true });
    await writeFile(other, walSegmentBytes(name));
    expect((await rookery(['wal-push', other, '--tier', 'oltp', '--repo', `file://${at.repo}`])).status).toBe(0);

    const refused = await push(at, name);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(`WAL file '${name}' of tier 'oltp' is already archived with different content`);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(acknowledgementPath(at, name))).toBe(false);
    expect(await storedVersions(at, name)).toEqual([sha256(await readFile(other))]);
    // PostgreSQL's retry is refused again (the archiver tried once more), not waved through.
    const retried = await push(at, name);
    expect(retried.status).toBe(1);
    expect(retried.stderr).toContain('already archived with different content');
    // The next file is unaffected.
    expect((await push(at, at.names[1])).status).toBe(0);
  }, 120_000);

  it(
    'an acknowledgement holds only for the same content: a changed file is refused, an identical copy is re-hashed and accepted',
    async () => {
      const at = await setup('changed', 3);
      expect((await push(at, at.names[0])).status).toBe(0);
      for (const name of at.names.slice(1)) {
        await until(async () => existsSync(acknowledgementPath(at, name)), `the acknowledgement of ${name}`);
      }

      // Same bytes, another inode (a restored or copied file): its identity differs, its hash does not.
      const [, copied, changed] = at.names;
      await copyFile(join(at.walDir, copied), join(at.dir, 'copy'));
      await rename(join(at.dir, 'copy'), join(at.walDir, copied));
      const same = await push(at, copied);
      expect(same.status).toBe(0);
      expect(JSON.parse(same.stdout)).toMatchObject({ name: copied, status: 'acknowledged', hashed: true });

      // Other bytes under the acknowledged name: never acknowledged, the push decides (a conflict).
      const bytes = await readFile(join(at.walDir, changed));
      const original = sha256(bytes);
      bytes[12345] ^= 0xff;
      await writeFile(join(at.walDir, changed), bytes);
      const refused = await push(at, changed);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('already archived with different content');
      expect(await storedVersions(at, changed)).toEqual([original]);
    },
    WAITING_TEST_MS,
  );

  it.each([
    ['rookery.js wal-push', `${process.execPath} ${bin} wal-push`],
    ['rookery-wal-push (shell fast path)', `ROOKERY_NODE=${process.execPath} ${join(root, 'bin', 'rookery-wal-push')}`],
  ])(
    "a server's archive_command (%s) archives every segment through the background archiver",
    async (_label, command) => {
      const owner = lookupOsUser('postgres');
      const at = await setup(`server-${_label.split(' ')[0]}`, 0);
      for (const dir of [at.dir, at.spool, at.repo]) {
        await mkdir(dir, { recursive: true });
        await chown(dir, owner.uid, owner.gid);
      }
      const cluster = await startCluster({
        name: 'wal-async',
        settings: {
          archive_mode: 'on',
          archive_command: `${command} %p --tier oltp --config ${at.config}`,
          wal_keep_size: '1GB',
        },
      });
      try {
        await cluster.query('create table wal_probe (id int, payload text)');
        const names: string[] = [];
        for (let round = 0; round < 6; round++) names.push(await switchSegment(cluster));
        const state = await untilArchived(cluster, names.at(-1) as string);
        expect(Number(state.failed_count)).toBe(0);
        for (const name of names) {
          expect(await storedVersions(at, name)).toEqual([sha256(await readFile(join(cluster.dataDir, 'pg_wal', name)))]);
        }
        expect(await readFile(join(at.spool, 'oltp', 'archiver.log'), 'utf8')).toMatch(/archiver \d+ started for tier oltp/);
      } finally {
        await cluster.destroy();
        const pid = await archiverPid(at);
        if (pid) archivers.add(pid);
      }
    },
    180_000,
  );
});
