import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { lookupOsGroup, lookupOsUser } from '@rookery/postgres';
import {
  TestCluster,
  directoryEntries,
  entriesWithOtherModes,
  freeLoopbackPort,
  seedOltp,
  startCluster,
  switchAndWaitArchived,
  tableChecksums,
  worldAccessibleEntries,
} from '@rookery/testing';

/**
 * A filesystem repository shared by root and the postgres account (issue 12 item 2), through the
 * real `rookery` command: root takes the first backup into a fresh file:// repository, the
 * cluster's archive_command (`rookery wal-push`, run by the server as postgres) archives into it
 * afterwards, and a root-run point-in-time restore starts a server (as postgres) whose
 * restore_command (`rookery wal-get`) reads the archived WAL. The repository is the postgres
 * account's alone (issue 13 item 6): directories 0700, files 0600, or 02770 and 0640 with a group
 * named in the config; the SQLite catalog is 0600; a key file others can read is refused.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const asRoot = process.getuid?.() === 0;

function rookery(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `rookery` under the loosest umask: whatever mode rookery's files get comes from rookery. */
function rookeryUnderUmask0(args: string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof rookery> {
  const umask = process.umask(0);
  try {
    return rookery(args, env);
  } finally {
    process.umask(umask);
  }
}

(asRoot ? describe : describe.skip)('a file:// repository written by root and by the postgres account', () => {
  let work: string;
  let repoDir: string;
  let repo: string;
  let source: TestCluster;
  const postgres = asRoot ? lookupOsUser('postgres') : { uid: -1, gid: -1 };

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) {
      throw new Error('the CLI is not built: run `npm run build` (npm test does it first)');
    }
    work = await mkdtemp(join(tmpdir(), 'rookery-permissions-'));
    // The postgres account may pass through (restored servers, archive_command), not create here:
    // the repository does not exist until root's first backup makes it.
    await chmod(work, 0o711);
    repoDir = join(work, 'repo');
    repo = `file://${repoDir}`;
    source = await startCluster({
      name: 'permissions',
      settings: {
        archive_mode: 'on',
        archive_command: `${process.execPath} ${bin} wal-push %p --tier oltp --repo '${repo}'`,
      },
    });
    await seedOltp(source.url, { sizeMb: 8 });
  }, 180_000);

  afterAll(async () => {
    await source?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("root's first backup into a fresh repository, then archive_command (as postgres) archives into it", async () => {
    expect(existsSync(repoDir)).toBe(false);
    const backup = rookery(['backup', '--tier', 'oltp', '--repo', repo, '--pg-url', source.url]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);

    await source.query('create table after_backup (id int primary key, note text)');
    await source.query("insert into after_backup select g, 'archived as postgres' from generate_series(1, 1000) g");
    // Waits until pg_stat_archiver reports the switched segment archived by rookery wal-push.
    await switchAndWaitArchived(source);
    const [archiver] = await source.query<{ archived: string }>('select archived_count::text as archived from pg_stat_archiver');
    expect(Number(archiver.archived)).toBeGreaterThan(0);
    expect((await stat(join(repoDir, 'oltp'))).uid).toBe(postgres.uid);
  }, 300_000);

  it('a root-run point-in-time restore: the restored server (as postgres) fetches the WAL and the data comes back identical', async () => {
    await source.query("insert into after_backup select g, 'before the restore point' from generate_series(1001, 2000) g");
    await source.query("select pg_create_restore_point('permissions-target')");
    const expected = await tableChecksums(source.url);
    await source.query("insert into after_backup select g, 'after the restore point' from generate_series(2001, 3000) g");
    await switchAndWaitArchived(source);

    const dir = join(work, 'restored');
    const port = await freeLoopbackPort();
    const restore = rookery([
      'restore',
      '--tier',
      'oltp',
      '--to',
      dir,
      '--target-name',
      'permissions-target',
      '--start',
      '--port',
      String(port),
      '--repo',
      repo,
    ]);
    try {
      expect(restore.stderr).toBe('');
      expect(restore.status).toBe(0);
      const restoredUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
      expect(await tableChecksums(restoredUrl)).toEqual(expected);
    } finally {
      const owner = await stat(dir).catch(() => null);
      if (owner) spawnSync('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', dir, '-m', 'fast'], { uid: owner.uid, gid: owner.gid });
    }
  }, 600_000);

  it("every entry of the repository is the postgres account's, directories 0700 and files 0600; no store probe left behind", async () => {
    expect(await worldAccessibleEntries(repoDir)).toEqual([]);
    expect((await directoryEntries(repoDir)).filter((entry) => entry.uid !== postgres.uid)).toEqual([]);
    expect(await entriesWithOtherModes(repoDir, { directory: 0o700, file: 0o600 })).toEqual([]);
    expect((await readdir(repoDir, { recursive: true })).filter((entry) => entry.includes('rookery-probe'))).toEqual([]);
  });

  it("with repository.group in the config: directories 02770 and files 0640, the group's, nothing world-readable", async () => {
    const groupRepoDir = join(work, 'group-repo');
    const config = join(work, 'group.yaml');
    await writeFile(config, 'repository:\n  group: backup\n', { mode: 0o600 });
    const backup = rookeryUnderUmask0([
      'backup',
      '--tier',
      'oltp',
      '--config',
      config,
      '--repo',
      `file://${groupRepoDir}`,
      '--pg-url',
      source.url,
    ]);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);

    const backupGroup = lookupOsGroup('backup');
    expect((await directoryEntries(groupRepoDir)).filter((entry) => entry.uid !== postgres.uid || entry.gid !== backupGroup)).toEqual([]);
    expect(await entriesWithOtherModes(groupRepoDir, { directory: 0o2770, file: 0o640 })).toEqual([]);
    expect(await worldAccessibleEntries(groupRepoDir)).toEqual([]);
  }, 300_000);

  it('catalog rebuild creates the SQLite catalog 0600, in a directory it creates 0700', async () => {
    const catalogDir = join(work, 'catalog');
    const rebuild = rookeryUnderUmask0(['catalog', 'rebuild', '--repo', repo], {
      ROOKERY_CATALOG_URL: `sqlite://${join(catalogDir, 'catalog.sqlite')}`,
    });
    expect(rebuild.stderr).toBe('');
    expect(rebuild.status).toBe(0);

    expect(await readdir(catalogDir)).toContain('catalog.sqlite');
    expect(await entriesWithOtherModes(catalogDir, { directory: 0o700, file: 0o600 })).toEqual([]);
  }, 120_000);

  it('refuses a key file others can read, with a hint to chmod 600, and accepts it when encryption.allowReadableKeyFile is set', async () => {
    const keyFile = join(work, 'backup.key');
    await writeFile(keyFile, Buffer.alloc(32, 7).toString('hex'));
    await chmod(keyFile, 0o644);
    const strict = join(work, 'strict.yaml');
    const allowing = join(work, 'allowing.yaml');
    await writeFile(strict, `encryption:\n  keyFile: ${keyFile}\n`, { mode: 0o600 });
    await writeFile(allowing, `encryption:\n  keyFile: ${keyFile}\n  allowReadableKeyFile: true\n`, { mode: 0o600 });
    const env = { ROOKERY_CATALOG_URL: `sqlite://${join(work, 'key-catalog.sqlite')}` };

    const refused = rookery(['catalog', 'rebuild', '--config', strict, '--repo', repo], env);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`encryption.keyFile: '${keyFile}' is accessible by group or others (mode 0644)`);
    expect(refused.stderr).toContain(`hint: chmod 600 ${keyFile}`);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);

    // Accepted: the rebuild runs (against an empty repository: the backups above were taken without
    // a key, so with one configured their unsigned manifests would fail the rebuild for that reason).
    const empty = join(work, 'key-repo');
    await mkdir(empty, { mode: 0o700 });
    const accepted = rookery(['catalog', 'rebuild', '--config', allowing, '--repo', `file://${empty}`], env);
    expect(accepted.stderr).toBe('');
    expect(accepted.stdout).toContain('rebuilt from');
    expect(accepted.status).toBe(0);
  }, 120_000);
});
