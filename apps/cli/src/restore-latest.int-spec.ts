import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdtemp, open, readFile, readdir, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TableChecksums, TestCluster, freeLoopbackPort, startCluster, tableChecksums } from '@rookery/testing';

jest.setTimeout(600_000);

/**
 * `rookery restore --backup latest` when the newest backup does not verify: it fails, names in its
 * hint the newest backup that does, and restores nothing, never the older one in silence. Through
 * the real CLI against a real cluster and a filesystem repository holding two backups, the newest
 * damaged three ways: a byte flipped inside its base.tar.zst (found while it streams), the object
 * cut short (found before anything is written), its manifest edited (not a backup any more, but
 * newer than the one `latest` would otherwise take). The older one, restored by id, holds exactly
 * the data it was taken from.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function rookery(args: string[]): RunResult {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The one file under `dir` whose path ends with `suffix`. */
async function fileEndingWith(dir: string, suffix: string): Promise<string> {
  const matches = (await readdir(dir, { recursive: true })).filter((entry) => entry.endsWith(suffix));
  expect(matches).toHaveLength(1);
  return join(dir, matches[0]);
}

describe('rookery restore --backup latest when the newest backup does not verify', () => {
  let source: TestCluster;
  let work: string;
  let repoDir: string;
  let older: string;
  let newest: string;
  let olderData: TableChecksums;

  function backup(repo: string): string {
    const run = rookery(['backup', '--tier', 'oltp', '--json', '--repo', repo, '--pg-url', source.url]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    return (JSON.parse(run.stdout) as { id: string }).id;
  }

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run `npm run build`');
    work = await mkdtemp(join(tmpdir(), 'rookery-restore-latest-'));
    // Restored servers run as the postgres account: it must reach their directories.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'restore-latest' });
    await source.query(
      `create table accounts (id int primary key, owner text not null, balance numeric not null);
       insert into accounts select g, 'owner ' || g, g * 10 from generate_series(1, 20000) g`,
    );
    repoDir = join(work, 'repo');
    older = backup(`file://${repoDir}`);
    olderData = await tableChecksums(source.url);
    await source.query(
      `update accounts set balance = balance + 1 where id % 3 = 0; insert into accounts select g, 'late ' || g, 0 from generate_series(20001, 25000) g`,
    );
    newest = backup(`file://${repoDir}`);
    expect(await tableChecksums(source.url)).not.toEqual(olderData);
  });

  afterAll(async () => {
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  /** A copy of the repository with the newest backup damaged by `damage` (given that backup's folder). */
  async function damagedRepository(name: string, damage: (folder: string) => Promise<void>): Promise<string> {
    const dir = join(work, `repo-${name}`);
    await cp(repoDir, dir, { recursive: true });
    const manifest = await fileEndingWith(dir, join(newest, 'manifest.json'));
    await damage(resolve(manifest, '..'));
    return `file://${dir}`;
  }

  it.each<[string, (folder: string) => Promise<void>, 'emptied' | 'untouched']>([
    [
      'a byte flipped inside base.tar.zst',
      async (folder) => {
        const handle = await open(join(folder, 'base.tar.zst'), 'r+');
        const { size } = await handle.stat();
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, Math.floor(size / 2));
        byte[0] ^= 0xff;
        await handle.write(byte, 0, 1, Math.floor(size / 2));
        await handle.close();
      },
      'emptied',
    ],
    ['base.tar.zst cut short', async (folder) => truncate(join(folder, 'base.tar.zst'), 4096), 'untouched'],
    [
      'its manifest edited after it was written',
      async (folder) => {
        const path = join(folder, 'manifest.json');
        await writeFile(path, (await readFile(path, 'utf8')).replace('"type": "full"', '"type": "snapshot"'));
      },
      'untouched',
    ],
  ])('%s: fails, names the older backup that verifies, restores nothing', async (name, damage, directory) => {
    const repo = await damagedRepository(name.replace(/\W+/g, '-'), damage);
    const dir = join(work, `restored-${name.replace(/\W+/g, '-')}`);
    const run = rookery(['restore', '--tier', 'oltp', '--backup', 'latest', '--to', dir, '--repo', repo]);
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`newest backup '${newest}' of tier 'oltp' fails verification`);
    expect(lines[0]).toContain(
      `(hint: the newest backup that verifies is '${older}': restore it with rookery restore --tier oltp --backup ${older}`,
    );
    expect(run.stdout).toBe('');
    // Nothing that could pass for a data directory: never created (checked before writing), or emptied.
    if (directory === 'untouched') expect(existsSync(dir)).toBe(false);
    else expect(await readdir(dir)).toEqual([]);
  });

  it('a damaged manifest of a backup taken in the same second as the one latest would take (its id has a suffix: a key that sorts before it) still stops the restore', async () => {
    const dir = join(work, 'repo-same-second');
    await cp(repoDir, dir, { recursive: true });
    const olderManifest = await fileEndingWith(dir, join(older, 'manifest.json'));
    const newestManifest = await fileEndingWith(dir, join(newest, 'manifest.json'));
    // The newest backup, damaged, moved to where a second backup of the older one's second would be.
    const sameSecond = `${older}-2`;
    await rename(resolve(newestManifest, '..'), resolve(olderManifest, '..', '..', sameSecond));
    const moved = resolve(olderManifest, '..', '..', sameSecond, 'manifest.json');
    await writeFile(moved, (await readFile(moved, 'utf8')).replace('"type": "full"', '"type": "snapshot"'));
    const target = join(work, 'restored-same-second');
    const run = rookery(['restore', '--tier', 'oltp', '--backup', 'latest', '--to', target, '--repo', `file://${dir}`]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`newest backup '${sameSecond}' of tier 'oltp' fails verification`);
    expect(run.stderr).toContain(`(hint: the newest backup that verifies is '${older}'`);
    expect(existsSync(target)).toBe(false);
  });

  it('a logical tier: a byte flipped in the newest dump fails the restore into a database, naming the older backup, and drops the database it made', async () => {
    const repoDir = join(work, 'repo-logical');
    const repo = `file://${repoDir}`;
    const dump = () => {
      const run = rookery(['backup', '--tier', 'olap', '--json', '--repo', repo, '--pg-url', source.url]);
      expect(run.status).toBe(0);
      return JSON.parse(run.stdout) as { id: string; artifacts: { name: string }[] };
    };
    const olderDump = dump();
    const newestDump = dump();
    const artifact = await fileEndingWith(repoDir, join(newestDump.id, newestDump.artifacts[0].name));
    const bytes = await readFile(artifact);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(artifact, bytes);

    const target = source.urlFor('restored_latest');
    const run = rookery(['restore', '--tier', 'olap', '--backup', 'latest', '--target-url', target, '--repo', repo]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`newest backup '${newestDump.id}' of tier 'olap' fails verification`);
    expect(run.stderr).toContain(`(hint: the newest backup that verifies is '${olderDump.id}'`);
    expect(await source.query("select datname from pg_database where datname = 'restored_latest'")).toEqual([]);
  });

  it('the older backup, restored by id from the damaged repository, holds exactly its data', async () => {
    const repo = await damagedRepository('restore-older', async (folder) => truncate(join(folder, 'base.tar.zst'), 4096));
    const dir = join(work, 'restored-older');
    const port = await freeLoopbackPort();
    const run = rookery(['restore', '--tier', 'oltp', '--backup', older, '--to', dir, '--start', '--port', String(port), '--repo', repo]);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    try {
      expect(await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`)).toEqual(olderData);
    } finally {
      const owner = await stat(dir);
      spawnSync('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', dir, '-m', 'fast'], { uid: owner.uid, gid: owner.gid });
    }
  });
});
