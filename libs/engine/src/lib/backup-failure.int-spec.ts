import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { BackupManifest } from '@rookery/core';
import { repositoryLayout } from '@rookery/repository';
import { TestCluster, seedContent, seedOltp, startCluster } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * A backup either commits its manifest or fails naming the cause, and a failed one leaves nothing
 * behind: proved on a real full file system (a tmpfs of 64 MiB mounted for the suite, filled to a
 * chosen free space by a file beside the store) with a real cluster, through the engine and
 * through the `rookery` command.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const ENOSPC_NAMED = /no space left on device \(ENOSPC\)/;

/** Every file under `dir`, relative to it, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const path of await readdir(dir, { recursive: true })) {
    if ((await lstat(join(dir, path))).isFile()) files.push(path);
  }
  return files.sort();
}

describe('a backup into a full file:// store', () => {
  let source: TestCluster;
  let mount: string;
  let storeDir: string;
  let filler: string;
  let engine: RookeryEngine;
  const committed: BackupManifest[] = [];

  /** Leaves `bytes` free on the mount (give or take a page): the filler takes the rest. */
  async function leaveFree(bytes: number): Promise<void> {
    await rm(filler, { force: true });
    const { bavail, bsize } = await statfs(mount);
    let remaining = Math.max(0, bavail * bsize - bytes);
    const handle = await open(filler, 'w');
    const zeros = Buffer.alloc(1024 * 1024);
    try {
      while (remaining > 0) {
        const { bytesWritten } = await handle.write(zeros, 0, Math.min(zeros.length, remaining));
        remaining -= bytesWritten;
      }
    } finally {
      await handle.close();
    }
  }

  /** A failed backup left the store as it found it: no manifest, no artifact, no temporary file, no lock. */
  async function expectUntouched(before: string[]): Promise<void> {
    expect(await filesUnder(storeDir)).toEqual(before);
    for (const tier of ['oltp', 'content'] as const) expect(existsSync(join(storeDir, repositoryLayout.lockKey(tier)))).toBe(false);
  }

  beforeAll(async () => {
    mount = await mkdtemp(join(tmpdir(), 'rookery-full-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0755', 'tmpfs', mount], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      throw new Error(
        `this suite mounts a small tmpfs to fill it (as root): mount failed: ${mounted.stderr.trim() || mounted.error?.message}`,
      );
    }
    storeDir = join(mount, 'store');
    filler = join(mount, 'filler');
    await mkdir(storeDir);
    source = await startCluster({ name: 'backup-failure' });
    await Promise.all([seedOltp(source.url, { sizeMb: 12 }), seedContent(source.url, { sizeMb: 8, seed: 11 })]);
    const config = buildConfig(
      {
        repositories: [`file://${storeDir}`],
        tiers: { oltp: { pgUrl: source.url }, content: { pgUrl: source.urlFor('penguinmails_content') } },
      },
      'test',
    );
    engine = await createEngine(config, { actor: 'test' });
  }, 180_000);

  afterAll(async () => {
    await engine?.close();
    await source?.destroy();
    if (mount) {
      spawnSync('umount', ['-l', mount]);
      await rm(mount, { recursive: true, force: true });
    }
  });

  it('commits a backup while there is room (the older backup every later case must keep good)', async () => {
    committed.push(await engine.backup({ tier: 'oltp' }));
    expect((await engine.verify('oltp', committed[0].id)).ok).toBe(true);
  }, 180_000);

  it('at every free space around the size of a backup: commits it, or fails naming ENOSPC and leaves nothing', async () => {
    const size = committed[0].storedBytes;
    const frees = [256 * 1024, Math.floor(size / 2), size - 64 * 1024, size + 16 * 1024, size + 256 * 1024, size + 4 * 1024 * 1024];
    const outcomes: string[] = [];
    for (const free of frees) {
      await leaveFree(free);
      const before = await filesUnder(storeDir);
      const attempt = await engine.backup({ tier: 'oltp' }).then(
        (manifest) => ({ manifest }),
        (error: Error) => ({ error }),
      );
      if ('manifest' in attempt) {
        committed.push(attempt.manifest);
        expect((await engine.list('oltp')).backups.map((backup) => backup.id)).toContain(attempt.manifest.id);
        outcomes.push(`${free}: committed`);
        continue;
      }
      outcomes.push(`${free}: ${attempt.error.message}`);
      expect(attempt.error.message).toMatch(ENOSPC_NAMED);
      expect(attempt.error.message).toMatch(/^cannot write artifact '[^']+' of backup \S+ to file:\/\//);
      await expectUntouched(before);
    }
    // The smaller spaces cannot hold a backup, the largest can: the suite saw both ends.
    expect(outcomes.slice(0, 2)).toEqual([expect.stringMatching(ENOSPC_NAMED), expect.stringMatching(ENOSPC_NAMED)]);
    expect(outcomes.at(-1)).toBe(`${frees.at(-1)}: committed`);
  }, 600_000);

  it('fails the same way when rookery compresses (pg_basebackup streams the tar)', async () => {
    const config = buildConfig(
      {
        repositories: [`file://${storeDir}`],
        compression: { location: 'client' },
        // Without block incrementals: a tier with them goes over the replication protocol.
        tiers: { oltp: { pgUrl: source.url, policy: { physical: { incremental: null } } } },
      },
      'test',
    );
    const client = await createEngine(config, { actor: 'test' });
    try {
      await leaveFree(512 * 1024);
      const before = await filesUnder(storeDir);
      await expect(client.backup({ tier: 'oltp' })).rejects.toThrow(ENOSPC_NAMED);
      await expectUntouched(before);
    } finally {
      await client.close();
    }
  }, 180_000);

  it('the rookery command exits non-zero with the cause on stderr, and leaves nothing', async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    await leaveFree(256 * 1024);
    const before = await filesUnder(storeDir);
    const run = spawnSync(process.execPath, [bin, 'backup', '--tier', 'oltp', '--repo', `file://${storeDir}`, '--pg-url', source.url], {
      cwd: root,
      env: process.env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(
      /^rookery: cannot write artifact 'base\.tar\.zst' of backup \S+ to file:\/\/\S+: no space left on device \(ENOSPC\) \(hint: free space/m,
    );
    expect(run.stderr).not.toMatch(/unexpected error|aborted/);
    await expectUntouched(before);
  }, 240_000);

  it('a logical backup that fails on its second dump takes its first one with it', async () => {
    await rm(filler, { force: true });
    const baseline = await engine.backup({ tier: 'content' });
    const metadata = baseline.artifacts.find((artifact) => artifact.name.startsWith('metadata.'));
    const objects = baseline.artifacts.find((artifact) => artifact.name.startsWith('objects.'));
    expect(objects?.storedBytes).toBeGreaterThan(256 * 1024);
    // Room for the metadata dump, not for the objects' rows.
    await leaveFree((metadata?.storedBytes ?? 0) + 64 * 1024);
    const before = await filesUnder(storeDir);
    await expect(engine.backup({ tier: 'content' })).rejects.toThrow(
      new RegExp(`^cannot write artifact '${objects?.name}' of backup \\S+ to file://.*${ENOSPC_NAMED.source}`),
    );
    await expectUntouched(before);
    await rm(filler, { force: true });
    expect((await engine.list('content')).backups.map((backup) => backup.id)).toEqual([baseline.id]);
    expect((await engine.verify('content', baseline.id)).ok).toBe(true);
  }, 300_000);

  it('a restore into the full file system fails naming ENOSPC and the target directory, and leaves it empty', async () => {
    const target = join(mount, 'restored');
    const backup = committed[0];
    // Far less room than the data directory needs (the store's files stay readable).
    await leaveFree(2 * 1024 * 1024);
    const restoreNamed = new RegExp(
      `^cannot write artifact 'base\\.tar\\.zst' of backup ${backup.id} into ${target}: ${ENOSPC_NAMED.source}`,
    );
    // With direct writes this process hits ENOSPC itself; without, tar does and dies (its stderr
    // names it, the read sees a broken pipe first).
    const plain = await createEngine(
      buildConfig(
        { repositories: [`file://${storeDir}`], restore: { directWrites: false }, tiers: { oltp: { pgUrl: source.url } } },
        'test',
      ),
      { actor: 'test' },
    );
    try {
      for (const restorer of [engine, plain]) {
        const failure = await restorer.restore({ tier: 'oltp', backup: backup.id, to: target }).then(
          () => null,
          (error: Error) => error.message,
        );
        expect(failure).toMatch(restoreNamed);
        expect(await readdir(target)).toEqual([]);
      }
    } finally {
      await plain.close();
    }

    const run = spawnSync(
      process.execPath,
      [bin, 'restore', '--tier', 'oltp', '--backup', backup.id, '--to', target, '--repo', `file://${storeDir}`],
      {
        cwd: root,
        env: process.env,
        encoding: 'utf8',
        timeout: 180_000,
      },
    );
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^rookery: ${restoreNamed.source.slice(1)}`, 'm'));
    expect(run.stderr).not.toMatch(/unexpected error|aborted|EPIPE/);
    expect(await readdir(target)).toEqual([]);
    await rm(target, { recursive: true, force: true });
  }, 300_000);

  it('once space is freed the next backup commits, and every older backup still verifies', async () => {
    await rm(filler, { force: true });
    const next = await engine.backup({ tier: 'oltp' });
    committed.push(next);
    const listed = (await engine.list('oltp')).backups.map((backup) => backup.id);
    expect(listed).toEqual(committed.map((backup) => backup.id));
    for (const backup of committed)
      expect({ id: backup.id, ok: (await engine.verify('oltp', backup.id)).ok }).toEqual({ id: backup.id, ok: true });
  }, 300_000);
});
