import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TestCluster, acquireS3, freeLoopbackPort, pollUntil, seedOltp, startCluster } from '@rookery/testing';

/**
 * The operator's contract, exercised through the real `rookery` command (bin/rookery.js over the
 * compiled build) against a real cluster, a real filesystem repository and the real S3-compatible
 * server: exit codes, one clear stderr line, and that nothing is lost or half-made on failure.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function rookery(args: string[], env: Record<string, string> = {}): RunResult {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 180_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function listedIds(repo: string): string[] {
  const result = rookery(['info', '--tier', 'oltp', '--json', '--repo', repo]);
  // stderr beside the status, so a failure says why (an intermittent exit 1 after the killed backup
  // was seen once in a full run and not reproduced since).
  expect({ status: result.status, stderr: result.status === 0 ? '' : result.stderr }).toEqual({ status: 0, stderr: '' });
  return (JSON.parse(result.stdout) as { backups: { id: string }[] }).backups.map((backup) => backup.id);
}

/** Waits until `check` holds (pollUntil's generous cap: a wait, never a time bound). */
async function untilTrue(check: () => Promise<boolean>, what: string): Promise<void> {
  await pollUntil(check, (holds) => holds, { what, intervalMs: 10 });
}

async function findFiles(dir: string, match: (name: string) => boolean): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true });
  return entries.filter((entry) => match(entry)).map((entry) => join(dir, entry));
}

describe('rookery CLI', () => {
  let source: TestCluster;
  let work: string;
  let repo: string;
  let repoDir: string;
  const key = randomBytes(32).toString('hex');

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-cli-'));
    // Restored servers run as the postgres account: it must be able to reach their directories.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'cli-source' });
    await seedOltp(source.url, { sizeMb: 24 });
    repoDir = join(work, 'repo');
    repo = `file://${repoDir}`;
  }, 180_000);

  afterAll(async () => {
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('backs up, lists with info --json, verifies and restores', async () => {
    const backup = rookery(['backup', '--tier', 'oltp', '--json', '--repo', repo, '--pg-url', source.url]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    const manifest = JSON.parse(backup.stdout) as { id: string; startLsn: string; artifacts: { name: string; sha256: string }[] };
    expect(manifest.startLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    const info = JSON.parse(rookery(['info', '--json', '--repo', repo]).stdout) as { backups: Record<string, unknown>[] };
    expect(info.backups.at(-1)).toMatchObject({ id: manifest.id, tier: 'oltp', type: 'full', method: 'physical', status: 'completed' });
    for (const field of ['startedAt', 'finishedAt', 'startLsn', 'stopLsn', 'bytes', 'storedBytes', 'artifacts']) {
      expect(info.backups.at(-1)).toHaveProperty(field);
    }

    const verify = rookery(['verify', '--tier', 'oltp', '--backup', manifest.id, '--repo', repo]);
    expect(verify.status).toBe(0);
    expect(verify.stdout).toContain(`ok      ${manifest.artifacts[0].name}`);

    const dir = join(work, 'restored-cli');
    const port = await freeLoopbackPort();
    const restore = rookery([
      'restore',
      '--tier',
      'oltp',
      '--backup',
      'latest',
      '--to',
      dir,
      '--start',
      '--port',
      String(port),
      '--repo',
      repo,
    ]);
    expect(restore.status).toBe(0);
    expect(restore.stdout).toContain(`accepting connections on port ${port}`);
    const mode = (await stat(dir)).mode & 0o777;
    expect(mode).toBe(0o700);
    if (process.getuid?.() === 0) expect((await stat(join(dir, 'PG_VERSION'))).uid).not.toBe(0);
    spawnSync('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', dir, '-m', 'fast'], {
      ...(process.getuid?.() === 0 ? { uid: (await stat(dir)).uid, gid: (await stat(dir)).gid } : {}),
    });
  }, 300_000);

  it('a byte flipped in a stored artifact fails verify and restore, naming the artifact', async () => {
    const flippedRepoDir = join(work, 'repo-flip');
    const flippedRepo = `file://${flippedRepoDir}`;
    const backup = rookery(['backup', '--tier', 'oltp', '--json', '--repo', flippedRepo, '--pg-url', source.url]);
    expect(backup.status).toBe(0);
    const manifest = JSON.parse(backup.stdout) as { id: string; artifacts: { name: string }[] };
    const [artifactPath] = await findFiles(flippedRepoDir, (name) => name.endsWith(manifest.artifacts[0].name));
    const handle = await open(artifactPath, 'r+');
    const { size } = await handle.stat();
    const position = Math.floor(size / 2);
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, position);
    await handle.close();

    const verify = rookery(['verify', '--tier', 'oltp', '--repo', flippedRepo]);
    expect(verify.status).not.toBe(0);
    expect(verify.stderr).toContain(manifest.artifacts[0].name);
    expect(verify.stderr.trim().split('\n')).toHaveLength(1);

    const dir = join(work, 'restored-flipped');
    const restore = rookery(['restore', '--tier', 'oltp', '--to', dir, '--repo', flippedRepo]);
    expect(restore.status).not.toBe(0);
    expect(restore.stderr).toContain(manifest.artifacts[0].name);
    // Nothing that looks like a usable data directory is left behind.
    expect(await readdir(dir)).toEqual([]);
  }, 300_000);

  it('a backup killed mid-upload leaves no manifest, and the next backup succeeds', async () => {
    const killRepoDir = join(work, 'repo-kill');
    const killRepo = `file://${killRepoDir}`;
    const configFile = join(work, 'slow.yaml');
    // gzip level 9 is slow enough that the upload is certainly in flight when we kill it.
    await writeFile(configFile, `compression:\n  codec: gzip\n  level: 9\n  workers: 1\n`);
    const child = spawn(
      process.execPath,
      [bin, 'backup', '--tier', 'oltp', '--config', configFile, '--repo', killRepo, '--pg-url', source.url],
      {
        cwd: root,
        stdio: 'ignore',
      },
    );
    const exited = new Promise((done) => child.once('exit', done));
    await untilTrue(async () => {
      // An artifact being uploaded (the store check's probe in the root is a temporary file too).
      const partial = await findFiles(killRepoDir, (name) => name.startsWith('oltp/backups/') && name.includes('.tmp-'));
      // A temporary file can be renamed away between the listing and the stat (the lock's): not yet.
      return (
        partial.length > 0 &&
        (await stat(partial[0]).then(
          (info) => info.size > 0,
          () => false,
        ))
      );
    }, 'a partly written artifact');
    child.kill('SIGKILL');
    await exited;

    expect(await findFiles(killRepoDir, (name) => name.endsWith('manifest.json'))).toEqual([]);
    expect(listedIds(killRepo)).toEqual([]);

    const next = rookery(['backup', '--tier', 'oltp', '--json', '--repo', killRepo, '--pg-url', source.url]);
    expect(next.stderr).toBe('');
    expect(next.status).toBe(0);
    expect(listedIds(killRepo)).toHaveLength(1);
  }, 300_000);

  describe('bad input gets one clear line and a non-zero exit', () => {
    it('malformed config names the bad key', async () => {
      const file = join(work, 'bad.yaml');
      await writeFile(file, 'repositories:\n  - file:///tmp/x\ntiers:\n  oltp:\n    policy:\n      retentionDays: ninety\n');
      const result = rookery(['info', '--config', file]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain('tiers.oltp.policy.retentionDays');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('unknown tier', () => {
      const result = rookery(['backup', '--tier', 'billing', '--repo', repo, '--pg-url', source.url]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("unknown tier 'billing'");
    });

    it('unreachable store', async () => {
      const port = await freeLoopbackPort();
      const result = rookery([
        'backup',
        '--tier',
        'oltp',
        '--pg-url',
        source.url,
        '--repo',
        `s3://nowhere/p?region=us-east-1&endpoint=http://127.0.0.1:${port}&forcePathStyle=true`,
      ]);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/unreachable|cannot reach|connect/i);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    });

    it('wrong S3 credentials', async () => {
      const s3 = await acquireS3('primary');
      await s3.createBucket('cli-creds');
      const url = `s3://cli-creds/p?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
      const result = rookery(['backup', '--tier', 'oltp', '--pg-url', source.url, '--repo', url], {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: 'definitely-wrong',
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/denied|credential/i);
      expect(result.stderr).not.toContain('definitely-wrong');
    });

    it('non-empty restore directory', async () => {
      const dir = await mkdtemp(join(work, 'full-'));
      await writeFile(join(dir, 'PG_VERSION'), '15\n');
      const result = rookery(['restore', '--tier', 'oltp', '--to', dir, '--repo', repo]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('is not empty');
      expect(await readdir(dir)).toEqual(['PG_VERSION']);
    });

    it('wrong encryption key', async () => {
      const encRepo = `file://${join(work, 'repo-enc')}`;
      const backup = rookery(['backup', '--tier', 'oltp', '--repo', encRepo, '--pg-url', source.url], { ROOKERY_ENCRYPTION_KEY: key });
      expect(backup.status).toBe(0);
      const dir = join(work, 'restored-wrong-key');
      const wrong = rookery(['restore', '--tier', 'oltp', '--to', dir, '--repo', encRepo], {
        ROOKERY_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
      });
      // The manifest, signed under the backup's key, is checked first: signed by a key this one is not.
      expect(wrong.status).toBe(1);
      expect(wrong.stderr).toMatch(/is signed by an unknown key [0-9a-f]{16} \(hint: wrong key \(the configured key is [0-9a-f]{16}\)/);
      expect(existsSync(dir) ? await readdir(dir) : []).toEqual([]);
      const none = rookery(['restore', '--tier', 'oltp', '--to', dir, '--repo', encRepo], { ROOKERY_ENCRYPTION_KEY: '' });
      expect(none.status).toBe(2);
      expect(none.stderr).toContain('no encryption key is configured');
    });

    it('missing database URL', () => {
      const result = rookery(['backup', '--tier', 'oltp', '--repo', repo]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain("no database URL for tier 'oltp'");
    });
  });
});
