import { chmod, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertCliBuilt, runRookery } from '@rookery/testing';

/**
 * `--env-file=PATH` (the secrets a restored server's restore_command and archive_command read
 * instead of their environment): taken only from a regular file of this account's, mode 0600,
 * opened once and checked through that descriptor; a symbolic link or a readable file is refused.
 */
describe('rookery --env-file', () => {
  let work: string;
  let envFile: string;

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-env-file-'));
    envFile = join(work, 'restore.env');
    // A variable whose effect shows: the config file it names does not exist.
    await writeFile(envFile, JSON.stringify({ ROOKERY_CONFIG: join(work, 'from-env-file.yaml') }), { mode: 0o600 });
    await symlink(envFile, join(work, 'link.env'));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  const run = (file: string) => {
    const env = { ...process.env };
    delete env['ROOKERY_CONFIG'];
    return runRookery([`--env-file=${file}`, 'info', '--tier', 'oltp', '--repo', `file://${join(work, 'repo')}`], { env });
  };

  it('loads the variables of a 0600 file of this account', () => {
    const result = run(envFile);
    expect([result.status, result.stderr]).toEqual([
      2,
      expect.stringContaining(`cannot read config file '${join(work, 'from-env-file.yaml')}'`),
    ]);
  });

  it.each([
    ['a symbolic link to it', 'link.env', 0o600],
    ['it readable by others', 'restore.env', 0o644],
  ])('refuses %s, loading nothing', async (_case, name, mode) => {
    await chmod(envFile, mode);
    try {
      const result = run(join(work, name));
      expect([result.status, result.stderr]).toEqual([
        2,
        `rookery: environment file '${join(work, name)}' must be a regular file of this account's with mode 0600 (hint: chmod 600 it)\n`,
      ]);
    } finally {
      await chmod(envFile, 0o600);
    }
  });
});
