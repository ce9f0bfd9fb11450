import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { PostgresTools, RESTORE_ENV_FILE, RookeryEngine, createEngine } from '@rookery/engine';
import { PgSqlClient, lookupOsUser, readPostmasterStatus } from '@rookery/postgres';
import { TestCluster, freeLoopbackPort, startCluster, switchAndWaitArchived, tableChecksums } from '@rookery/testing';
import { RestoreDrill } from './restore.drill';
import { createValidationTools } from './validation.tools';

jest.setTimeout(300_000);

const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const sql = new PgSqlClient({ applicationName: 'rookery-guard-test' });
const SECRETS = { AWS_SECRET_ACCESS_KEY: 'guard-test-aws-secret', ROOKERY_GUARD_TEST_SECRET: 'guard-test-rookery-secret' };

/**
 * A backup is data from elsewhere: a source whose postgresql.auto.conf carries hostile commands
 * (ALTER SYSTEM, as an attacker with the source's superuser or a forged backup would leave them)
 * restores with them commented out and reported, and they never run on the restore host: not
 * with archiving kept, not with --archive-mode off, not in a drill. A drill's server listens on
 * no TCP port and has no secret in its environment.
 */
describe('a restored server does not obey the backup blindly', () => {
  let source: TestCluster;
  let work: string;
  let repoUrl: string;
  let engine: RookeryEngine;
  let expected: Awaited<ReturnType<typeof tableChecksums>>;
  const marker = join(tmpdir(), `pwned-${randomBytes(6).toString('hex')}`);
  const hostile = `touch ${marker}`;
  const started: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-guard-'));
    await chmod(work, 0o711);
    const postgresUser = lookupOsUser('postgres');
    const repoDir = join(work, 'repo');
    await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')]) await chown(dir, postgresUser.uid, postgresUser.gid);
    repoUrl = `file://${repoDir}`;
    // The source archives with rookery (-c on its command line, which beats postgresql.auto.conf,
    // so the hostile values below never run on the source).
    source = await startCluster({
      name: 'guard-source',
      settings: { archive_mode: 'on', archive_command: `${process.execPath} ${bin} wal-push %p --tier oltp --repo ${repoUrl}` },
    });
    await source.query(`create table guarded (id int primary key, note text not null);
      insert into guarded select g, md5(g::text) from generate_series(1, 2000) g`);
    // Written to postgresql.auto.conf, not reloaded: the backup carries them.
    // archive_mode too (the source has it on its command line only), so a kept archive mode archives.
    await source.query(`alter system set archive_mode = 'on'`);
    await source.query(`alter system set archive_command = '${hostile}'`);
    await source.query(`alter system set recovery_end_command = '${hostile}'`);
    expected = await tableChecksums(source.url);
    Object.assign(process.env, SECRETS);
    const config = buildConfig({ repositories: [repoUrl], tiers: { oltp: { pgUrl: source.url } } }, 'guard int-spec');
    engine = await createEngine(config, {
      actor: 'test',
      selfCommand: [process.execPath, bin, '--repo', repoUrl],
      postgres: watchedStarts,
    });
    await engine.backup({ tier: 'oltp' });
    await switchAndWaitArchived(source);
  }, 240_000);

  afterAll(async () => {
    for (const dir of started) await engine.stopRestored(dir).catch(() => undefined);
    for (const name of Object.keys(SECRETS)) delete process.env[name];
    await engine?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
    await rm(marker, { force: true });
  }, 120_000);

  function restoreCli(dir: string, ...flags: string[]) {
    const run = spawnSync(process.execPath, [bin, 'restore', '--tier', 'oltp', '--to', dir, '--json', '--repo', repoUrl, ...flags], {
      cwd: root,
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, ...SECRETS },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    return JSON.parse(run.stdout) as { settings: { kept: boolean; neutralised: { setting: string; value: string; file: string }[] } };
  }

  it('--archive-mode off --start: comments out and reports the hostile commands, which never run; no secret in the server environment', async () => {
    const dir = join(work, 'off');
    const port = await freeLoopbackPort();
    started.push(dir);
    const output = restoreCli(dir, '--start', '--port', String(port), '--archive-mode', 'off');

    expect(output.settings.kept).toBe(false);
    expect(output.settings.neutralised.map((entry) => [entry.setting, entry.value, entry.file])).toEqual([
      ['archive_command', hostile, 'postgresql.auto.conf'],
      ['recovery_end_command', hostile, 'postgresql.auto.conf'],
    ]);
    const autoConf = await readFile(join(dir, 'postgresql.auto.conf'), 'utf8');
    expect(autoConf).toMatch(/# rookery restore: disabled recovery_end_command: .*\n#recovery_end_command = 'touch /);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    expect(await sql.query(url, 'select pg_is_in_recovery() as recovering')).toEqual([{ recovering: false }]);
    expect(await sql.query(url, 'show recovery_end_command')).toEqual([{ recovery_end_command: '' }]);
    expect(await tableChecksums(url)).toEqual(expected);
    expect(existsSync(marker)).toBe(false);
    expect(await environmentOf(dir)).not.toMatch(/(^|\0)(AWS_|ROOKERY_)/);
    // Recovery is over and nothing archives: the restore_command's secrets file is gone.
    expect(existsSync(join(dir, RESTORE_ENV_FILE))).toBe(false);
  });

  it('archive mode kept: the restored server archives with rookery, never with the backup command', async () => {
    const dir = join(work, 'keep');
    const port = await freeLoopbackPort();
    started.push(dir);
    const result = await engine.restore({ tier: 'oltp', backup: 'latest', to: dir, start: true, port });
    expect(result.settings?.neutralised.map((entry) => entry.setting)).toEqual(['archive_command', 'recovery_end_command']);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    expect(await tableChecksums(url)).toEqual(expected);
    const [{ archive_command: archiveCommand }] = await sql.query<{ archive_command: string }>(url, 'show archive_command');
    expect(archiveCommand).toContain(' wal-push %p --tier oltp');
    // Its secrets come from a file only the server's account reads, not from its environment.
    const envFile = await stat(join(dir, RESTORE_ENV_FILE));
    expect({ mode: envFile.mode & 0o777, uid: envFile.uid }).toEqual({ mode: 0o600, uid: lookupOsUser('postgres').uid });
    expect(await environmentOf(dir)).not.toMatch(/(^|\0)(AWS_|ROOKERY_)/);
    // The promotion's history file and a switched segment go through the archiver.
    await sql.query(url, 'select pg_switch_wal()');
    await sql.query(url, 'create table after_promotion as select 1 as x');
    await switchAndWaitArchived({ query: (text: string) => sql.query(url, text) } as Pick<TestCluster, 'query'>);
    expect(existsSync(marker)).toBe(false);
  });

  it('--keep-settings keeps the backup settings as they were (not started)', async () => {
    const dir = join(work, 'kept');
    const output = restoreCli(dir, '--keep-settings');
    expect(output.settings).toMatchObject({ kept: true, neutralised: [] });
    const active = (await readFile(join(dir, 'postgresql.auto.conf'), 'utf8')).split('\n').filter((line) => line.includes(hostile));
    expect(active).toEqual([`archive_command = '${hostile}'`, `recovery_end_command = '${hostile}'`]);
  });

  it("a drill's server listens on no TCP port, has no secret in its environment, and runs no backup command", async () => {
    const drills = join(work, 'drills');
    await mkdir(drills, { mode: 0o711 });
    await chmod(drills, 0o711);
    const seen: { environ: string; tcp: string; listen: string }[] = [];
    // Looks at the real server the drill started, while it runs.
    watchStart = async (dataDirectory, port) => {
      const lines = (await readFile(join(dataDirectory, 'postmaster.pid'), 'utf8')).split('\n');
      seen.push({ environ: await environOf(Number(lines[0])), tcp: await tcpConnect(port), listen: lines[5] ?? '' });
    };
    try {
      const drill = new RestoreDrill(engine, createValidationTools(engine.toolkit, { workDirectory: drills }));
      const report = await drill.run('oltp');
      expect(report.checks.filter((check) => !check.ok)).toEqual([]);
      expect(report.recovery).toBe('archived-wal');
    } finally {
      watchStart = null;
    }
    expect(seen).toHaveLength(1);
    expect(seen[0].listen.trim()).toBe('');
    expect(seen[0].tcp).toBe('ECONNREFUSED');
    expect(seen[0].environ).not.toMatch(/(^|\0)(AWS_|ROOKERY_)/);
    expect(seen[0].environ).not.toContain(SECRETS.AWS_SECRET_ACCESS_KEY);
    expect(existsSync(marker)).toBe(false);
  });
});

/** What a case looks at once the engine has started a restored server; null: nothing. */
let watchStart: ((dataDirectory: string, port: number) => Promise<void>) | null = null;

function watchedStarts(tools: PostgresTools): PostgresTools {
  return {
    ...tools,
    startRestored: async (dataDirectory, options) => {
      const port = await tools.startRestored(dataDirectory, options);
      await watchStart?.(dataDirectory, port);
      return port;
    },
  };
}

/**
 * The libraries a server loads are part of what a backup records: a restore keeps the source's
 * shared_preload_libraries as its manifest recorded them and neutralises a value that adds to them
 * (an ALTER SYSTEM the source never restarted with, as an attacker or a forged backup would leave
 * it). The encryption key, taken from a variable of any name (encryption.keyEnv), reaches the
 * restored server's restore_command through a file, never its environment.
 */
describe('a restored server loads the libraries its backup recorded', () => {
  const KEY_VARIABLE = 'GUARD_TEST_BACKUP_KEY';
  const key = randomBytes(32).toString('hex');
  let source: TestCluster;
  let work: string;
  let engine: RookeryEngine;
  const started: string[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-guard-libraries-'));
    await chmod(work, 0o711);
    const postgresUser = lookupOsUser('postgres');
    const repoDir = join(work, 'repo');
    await mkdir(repoDir);
    await chown(repoDir, postgresUser.uid, postgresUser.gid);
    const repoUrl = `file://${repoDir}`;
    const configFile = join(work, 'rookery.json');
    await writeFile(configFile, JSON.stringify({ repositories: [repoUrl], encryption: { keyEnv: KEY_VARIABLE } }), { mode: 0o644 });
    // Loaded at start (the command line), and in postgresql.auto.conf so that the backup carries it.
    source = await startCluster({ name: 'guard-libraries', settings: { shared_preload_libraries: 'pg_stat_statements' } });
    await source.query(`alter system set shared_preload_libraries = 'pg_stat_statements'`);
    await source.query('create table counted (id int primary key); insert into counted select generate_series(1, 100)');
    process.env[KEY_VARIABLE] = key;
    const config = buildConfig(
      { repositories: [repoUrl], encryption: { keyEnv: KEY_VARIABLE }, tiers: { oltp: { pgUrl: source.url } } },
      'guard int-spec',
      {},
      { [KEY_VARIABLE]: key },
    );
    engine = await createEngine(config, {
      actor: 'test',
      selfCommand: [process.execPath, bin, '--config', configFile],
      postgres: watchedStarts,
    });
  }, 240_000);

  afterAll(async () => {
    for (const dir of started) await engine.stopRestored(dir).catch(() => undefined);
    delete process.env[KEY_VARIABLE];
    await engine?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  async function restoreStarted(name: string) {
    const dir = join(work, name);
    const port = await freeLoopbackPort();
    started.push(dir);
    const seen: string[] = [];
    // The postmaster's environment, looked at while recovery still needs the restore_command.
    watchStart = async (dataDirectory) => {
      seen.push(await environmentOf(dataDirectory));
    };
    try {
      const result = await engine.restore({ tier: 'oltp', backup: 'latest', to: dir, start: true, port, archiveMode: 'off' });
      return { dir, result, url: `postgres://postgres@127.0.0.1:${port}/postgres`, environ: seen[0] };
    } finally {
      watchStart = null;
    }
  }

  it('keeps the recorded shared_preload_libraries; the key is in no environment of the restored server', async () => {
    const manifest = await engine.backup({ tier: 'oltp' });
    expect(manifest.librarySettings).toMatchObject({ shared_preload_libraries: 'pg_stat_statements' });
    expect(manifest.artifacts.every((artifact) => artifact.encryption.algorithm !== 'none')).toBe(true);

    const { dir, result, url, environ } = await restoreStarted('recorded');
    expect(result.settings?.neutralised).toEqual([]);
    expect(await sql.query(url, 'show shared_preload_libraries')).toEqual([{ shared_preload_libraries: 'pg_stat_statements' }]);
    await sql.query(url, 'create extension if not exists pg_stat_statements');
    expect(await sql.query(url, 'select count(*)::int >= 0 as loaded from pg_stat_statements')).toEqual([{ loaded: true }]);
    expect(environ).toEqual(expect.any(String));
    expect(environ).not.toContain(key);
    expect(environ).not.toContain(`${KEY_VARIABLE}=`);
    expect(await environmentOf(dir)).not.toContain(key);
  });

  it('neutralises and reports a library added to the recorded ones; the server loads the recorded ones', async () => {
    // Not restarted: the source still runs with (and SHOW says) pg_stat_statements only, which the manifest records.
    await source.query(`alter system set shared_preload_libraries = pg_stat_statements, rookery_no_such_library`);
    const manifest = await engine.backup({ tier: 'oltp' });
    expect(manifest.librarySettings).toMatchObject({ shared_preload_libraries: 'pg_stat_statements' });

    // Kept, the added library would stop the server from starting at all.
    const { dir, result, url } = await restoreStarted('added');
    expect(result.settings?.neutralised).toEqual([
      {
        setting: 'shared_preload_libraries',
        value: 'pg_stat_statements, rookery_no_such_library',
        file: 'postgresql.auto.conf',
        line: expect.any(Number),
        reason: "loads libraries the backup's manifest does not record (it records 'pg_stat_statements')",
      },
    ]);
    expect(await readFile(join(dir, 'postgresql.auto.conf'), 'utf8')).toContain(
      "#shared_preload_libraries = 'pg_stat_statements, rookery_no_such_library'",
    );
    expect(await sql.query(url, 'show shared_preload_libraries')).toEqual([{ shared_preload_libraries: 'pg_stat_statements' }]);
  });
});

async function environmentOf(dataDirectory: string): Promise<string> {
  const status = readPostmasterStatus(dataDirectory);
  if (!status) throw new Error(`no server runs on ${dataDirectory}`);
  return environOf(status.pid);
}

function environOf(pid: number): Promise<string> {
  return readFile(`/proc/${pid}/environ`, 'utf8');
}

/** 'connected', or the error code connecting to 127.0.0.1:port gave. */
function tcpConnect(port: number): Promise<string> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      done('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done(error.code ?? error.message));
  });
}
