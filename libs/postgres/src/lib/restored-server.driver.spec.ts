import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgCtlDriver, StartOptions } from './pg-ctl.driver';
import { ISOLATED_HBA_FILE, RESTORED_SERVER_LOG, RestoredServerDriver } from './restored-server.driver';

/** A pg_ctl that records what it was asked to start. */
function recordingPgCtl(): Pick<PgCtlDriver, 'start' | 'stop' | 'isRunning'> & { started: [string, StartOptions][] } {
  const started: [string, StartOptions][] = [];
  return {
    started,
    start: async (dataDir, options) => {
      started.push([dataDir, options]);
      return { pid: 4242 };
    },
    stop: async () => undefined,
    isRunning: async () => false,
  };
}

describe('RestoredServerDriver', () => {
  let dataDirectory: string;

  beforeEach(async () => {
    dataDirectory = await mkdtemp(join(tmpdir(), 'rookery-restored-server-'));
  });

  afterEach(async () => {
    await rm(dataDirectory, { recursive: true, force: true });
  });

  it('starts the server with its socket and an English log in the data directory, on port 5432 by default', async () => {
    const pgCtl = recordingPgCtl();
    const port = await new RestoredServerDriver(pgCtl, 'postgres', async () => null).start(dataDirectory, { timeoutMs: 1000 });

    expect(port).toBe(5432);
    const [[directory, options]] = pgCtl.started;
    expect(directory).toBe(dataDirectory);
    expect(options).toMatchObject({
      user: 'postgres',
      port: 5432,
      socketDir: dataDirectory,
      logFile: join(dataDirectory, RESTORED_SERVER_LOG),
      timeoutMs: 1000,
    });
    expect(options.settings).toMatchObject({ logging_collector: 'off', log_destination: 'stderr', lc_messages: 'C' });
    expect(options.settings).not.toHaveProperty('hba_file');
  });

  it.each<[string, string | undefined]>([
    ['14', 'syncfs'],
    ['13', undefined],
  ])('on Linux, PostgreSQL %s starts with recovery_init_sync_method %s', async (version, method) => {
    await writeFile(join(dataDirectory, 'PG_VERSION'), `${version}\n`);
    const pgCtl = recordingPgCtl();
    await new RestoredServerDriver(pgCtl, 'postgres', async () => null).start(dataDirectory, { port: 6543 });

    const settings = pgCtl.started[0][1].settings ?? {};
    if (process.platform === 'linux') expect(settings.recovery_init_sync_method).toBe(method);
    else expect(settings).not.toHaveProperty('recovery_init_sync_method');
  });

  it.each([
    ['drill_reader', 'local all drill_reader trust'],
    ['odd "role"', 'local all "odd ""role""" trust'],
  ])('an isolated server listens on no TCP port and lets only %s in, through its socket', async (user, rule) => {
    const pgCtl = recordingPgCtl();
    await new RestoredServerDriver(pgCtl, { uid: 1, gid: 1 }, async () => null).start(dataDirectory, { port: 7000, isolated: { user } });

    const hbaFile = join(dataDirectory, ISOLATED_HBA_FILE);
    expect(pgCtl.started[0][1].settings).toMatchObject({ listen_addresses: '', hba_file: hbaFile });
    const lines = (await readFile(hbaFile, 'utf8')).split('\n').filter((line) => line && !line.startsWith('#'));
    expect(lines).toEqual([rule]);
    expect((await stat(hbaFile)).mode & 0o777).toBe(0o600);
  });
});
