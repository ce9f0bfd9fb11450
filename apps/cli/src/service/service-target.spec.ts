import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { rootProgram, runProgram } from '../cli.program';
import { main } from '../main';
import { restoreRequest } from './service-commands';
import { parseServiceUrl, tokenOf } from './service-target';

// Argument handling of `rookery --service`: refusals happen before any call (the URLs below name a
// port nothing listens on; a refusal that let a call through would fail with "cannot reach").
const NOWHERE = 'http://127.0.0.1:9';

describe('rookery --service: arguments', () => {
  let work: string;
  let tokenFile: string;
  let stderr: string[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-service-args-'));
    tokenFile = join(work, 'token');
    await writeFile(tokenFile, 'rky_0123456789ab_secret\n', { mode: 0o600 });
  });
  afterAll(() => rm(work, { recursive: true, force: true }));
  beforeEach(() => {
    stderr = [];
    jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    jest.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => stderr.push(String(text)) > 0);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    delete process.env['ROOKERY_SERVICE'];
  });

  const run = (args: string[]) => main(['node', 'rookery', ...args]);

  it.each([
    ['verify', ['verify', '--tier', 'oltp']],
    ['check', ['check', '--tier', 'oltp']],
    ['auth', ['auth', 'token', 'list', '--file', '/nonexistent']],
  ])('%s refuses --service with one line, exit 2', async (name, args) => {
    expect(await run(['--service', NOWHERE, ...args])).toBe(2);
    expect(stderr).toEqual([
      `rookery: rookery ${name} has no service equivalent: --service goes with backup, restore, info, hold, expire\n`,
    ]);
  });

  it('an inherited ROOKERY_SERVICE leaves a command without a service equivalent on the repository', async () => {
    process.env['ROOKERY_SERVICE'] = NOWHERE;
    let ran = false;
    const program = rootProgram().addCommand(
      new Command('check').action(() => {
        ran = true;
      }),
    );
    expect(await runProgram(program, ['node', 'rookery', 'check'])).toBe(0);
    expect(ran).toBe(true);
  });

  it('refuses --token without echoing it, exit 2', async () => {
    expect(await run(['--service', NOWHERE, '--token', 'rky_0123456789ab_argv-secret', 'info'])).toBe(2);
    expect(stderr.join('')).toContain('--token is not accepted: a token on the command line is visible to every user of the host');
    expect(stderr.join('')).not.toContain('argv-secret');
  });

  it.each([
    [['--repo', 'file:///tmp/r', 'info'], '--repo cannot go with --service'],
    [['--pg-url', 'postgres://db/x', 'backup', '--tier', 'oltp'], '--pg-url cannot go with --service'],
    [['expire', '--tier', 'oltp'], 'expire deletes backups and is not offered through a service: only expire --dry-run (the plan) is'],
    [['expire', '--tier', 'oltp', '--dry-run', '--now', '2027-01-01T00:00:00Z'], '--now cannot go with --service'],
    [['restore', '--tier', 'oltp', '--to', 'relative/dir'], "--to 'relative/dir' must be an absolute path with --service"],
    [['restore', '--tier', 'oltp', '--to', '/srv/r', '--start'], '--start cannot go with --service'],
    [['restore', '--tier', 'content', '--target-url', 'postgres://u:pw@db/x'], '--target-url must not carry a password with --service'],
    [['restore', '--tier', 'oltp', '--to', '/srv/r', '--target-lsn', '0/1', '--target-name', 'x'], 'only one recovery target may be given'],
    [['hold', '--tier', 'oltp', '--list', '--backup', 'x'], '--list goes alone: not with --backup'],
    [['hold', '--tier', 'oltp'], '--backup ID is required to place or release a hold (or give --list)'],
  ])('refuses %j before calling the service, exit 2', async (args, message) => {
    expect(await run(['--service', NOWHERE, '--token-file', tokenFile, ...args])).toBe(2);
    expect(stderr).toHaveLength(1);
    expect(stderr[0]).toContain(message);
  });

  it.each([
    ['ftp://host/x', 'must be an http:// or https:// URL'],
    ['not a url', 'is not a URL'],
    ['https://user:secret@host', 'must not carry credentials'],
    ['https://host/?tier=oltp', 'must not have a query or fragment'],
  ])('refuses --service %s', (value, message) => {
    expect(() => parseServiceUrl(value)).toThrow(message);
  });

  it('keeps a path prefix of --service for the routes', () => {
    expect(parseServiceUrl('https://proxy.internal/rookery/oltp').href).toBe('https://proxy.internal/rookery/oltp/');
  });

  it('reads the first token line of --token-file, warns when others can read it, and refuses an empty one', async () => {
    const shared = join(work, 'shared-token');
    await writeFile(shared, '# comment\n\n  rky_0123456789ab_x  \n');
    await chmod(shared, 0o644);
    await expect(tokenOf(shared, {})).resolves.toBe('rky_0123456789ab_x');
    expect(stderr.join('')).toContain(`token file ${shared} is readable by others (mode 0644): chmod 600 ${shared}`);
    stderr.length = 0;
    await expect(tokenOf(tokenFile, { ROOKERY_TOKEN: 'ignored' })).resolves.toBe('rky_0123456789ab_secret');
    expect(stderr).toEqual([]);
    const empty = join(work, 'empty-token');
    await writeFile(empty, '# nothing\n', { mode: 0o600 });
    await expect(tokenOf(empty, {})).rejects.toThrow(`--token-file ${empty} holds no token`);
    await expect(tokenOf(undefined, { ROOKERY_TOKEN: ' rky_env \n' })).resolves.toBe('rky_env');
    await expect(tokenOf(undefined, {})).resolves.toBeUndefined();
  });

  it('builds the restore request of the contract: logical with its options, physical with a recovery target', () => {
    expect(restoreRequest({ backup: 'latest', targetUrl: 'postgres://restorer@db:5432/copy', clean: true, table: 'public.t' })).toEqual({
      backup: 'latest',
      target: { kind: 'logical', url: 'postgres://restorer@db:5432/copy', clean: true, table: 'public.t' },
    });
    expect(restoreRequest({ backup: 'b1', to: '/srv/restores/x', targetTime: '2026-12-07T12:00:00Z' })).toEqual({
      backup: 'b1',
      target: { kind: 'physical', directory: '/srv/restores/x', recoveryTarget: { time: '2026-12-07T12:00:00Z' } },
    });
    expect(restoreRequest({ backup: 'latest', to: '/srv/restores/y' })).toEqual({
      backup: 'latest',
      target: { kind: 'physical', directory: '/srv/restores/y' },
    });
  });
});
