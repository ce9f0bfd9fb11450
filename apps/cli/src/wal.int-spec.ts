import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { Server, Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { Store, WalFileName, parseWalFileName } from '@rookery/core';
import { lookupOsUser } from '@rookery/postgres';
import { WalArchive } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { TestCluster, acquireS3, freeLoopbackPort, s3StoreUrl, startCluster } from '@rookery/testing';

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
  ms: number;
}

/** Runs the CLI without blocking the event loop (the store gate below serves its connections). */
function rookery(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const started = Date.now();
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr, ms: Date.now() - started }));
  });
}

async function until<T>(probe: () => Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 50));
  }
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
  return until(
    async () => {
      const state = await archiver(cluster);
      return state.last_archived_wal !== null && state.last_archived_wal >= name ? state : undefined;
    },
    60_000,
    `${name} to be archived (server log: ${cluster.logFile})`,
  );
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
  await writeFile(
    credentials,
    `[default]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n`,
    { mode: 0o644 },
  );
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

  it('archives each switched segment, and wal-get returns it byte for byte', async () => {
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
  }, 120_000);

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

  it('wal-get of a segment that is not archived exits 1 quickly and leaves nothing at DEST', async () => {
    const destination = join(work, 'fetched', 'missing');
    const result = await rookery(['wal-get', '0000000100000000000000F0', destination, '--tier', 'oltp', '--repo', store.url]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("WAL file '0000000100000000000000F0' of tier 'oltp' is not in the archive");
    // A fail-fast check, not a benchmark: recovery probes for the next segment this way.
    expect(result.ms).toBeLessThan(5_000);
    expect(existsSync(destination)).toBe(false);
  }, 30_000);

  it('a name that is not a WAL file is refused without touching the store', async () => {
    const result = await rookery(['wal-get', 'RECOVERYXLOG', join(work, 'fetched', 'junk'), '--tier', 'oltp', '--repo', store.url]);
    expect(result.status).toBe(128);
    expect(result.stderr).toContain("'RECOVERYXLOG' is not a WAL file name");
  }, 30_000);

  it('while the store is unreachable archive_command fails and the segment stays ready; once back, the retry archives it', async () => {
    const before = await archiver(cluster);
    await store.goAway();
    let pending: string;
    try {
      pending = await switchSegment(cluster);
      await until(
        async () => {
          const state = await archiver(cluster);
          return Number(state.failed_count) > Number(before.failed_count) && state.last_failed_wal === pending;
        },
        60_000,
        `archive_command to fail on ${pending}`,
      );
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
  }, 180_000);

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
    const fetched = await rookery(['wal-get', name, destination, '--tier', 'oltp', '--repo', store.otherUrl], { ROOKERY_ENCRYPTION_KEY: key });
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

  it('info reports the WAL archive: newest segment, archiver state and RPO exposure', async () => {
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
  }, 120_000);
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
    [{ archive_mode: 'on', archive_command: '/bin/true' }, "archive_command of the server of tier 'oltp' does not run rookery wal-push for this tier: '/bin/true'"],
    [
      { archive_mode: 'on', archive_command: `AWS_SECRET_ACCESS_KEY=hidden ${process.execPath} ${bin} wal-push %p --tier queue` },
      'does not run rookery wal-push for this tier: \'AWS_SECRET_ACCESS_KEY=*** ',
    ],
  ])('settings %j', async (settings, message) => {
    const cluster = await startCluster({ name: 'wal-check', settings });
    clusters.push(cluster);
    const result = await rookery(['check', '--tier', 'oltp', '--repo', 'file:///nonexistent-rookery-check', '--pg-url', cluster.url, '--timeout', '5']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(message);
    expect(result.stderr).not.toContain('hidden');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);
});

describe('batched archiving (wal.archiveAsync)', () => {
  let work: string;
  const names = ['000000010000000000000011', '000000010000000000000012', '000000010000000000000013'];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-async-'));
    await mkdir(join(work, 'pg_wal', 'archive_status'), { recursive: true });
    for (const name of names) {
      await writeFile(join(work, 'pg_wal', name), randomBytes(16 * 1024 * 1024));
      await writeFile(join(work, 'pg_wal', 'archive_status', `${name}.ready`), '');
    }
    await writeFile(
      join(work, 'rookery.yaml'),
      `repositories:\n  - file://${join(work, 'repo')}\nwal:\n  archiveAsync: true\n  spoolPath: ${join(work, 'spool')}\n  processMax: 2\n`,
    );
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  const push = (name: string) => rookery(['wal-push', join(work, 'pg_wal', name), '--tier', 'oltp', '--config', join(work, 'rookery.yaml'), '--json']);

  it('pushes the ready segments ahead, acknowledges only what is in the store, and honours an acknowledgement only for the same content', async () => {
    const first = await push(names[0]);
    expect(first.status).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ name: names[0], status: 'archived', ahead: names.slice(1) });
    const store = createStore(`file://${join(work, 'repo')}`);
    try {
      for (const name of names) expect(await new WalArchive(store).versions('oltp', parseWalFileName(name) as WalFileName)).toHaveLength(1);
    } finally {
      await store.close();
    }

    const second = await push(names[1]);
    expect(second.status).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ name: names[1], status: 'acknowledged' });
    expect(existsSync(join(work, 'spool', 'oltp', `${names[1]}.ok`))).toBe(false);

    // The file PostgreSQL asks for is not what was acknowledged: no shortcut, the push decides.
    const changed = await readFile(join(work, 'pg_wal', names[2]));
    changed[0] ^= 0xff;
    await writeFile(join(work, 'pg_wal', names[2]), changed);
    const third = await push(names[2]);
    expect(third.status).not.toBe(0);
    expect(third.stderr).toContain('already archived with different content');
  }, 60_000);
});
