import { spawnSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { chmod, copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The runtime: rookery runs on the `node` dependency pinned in package.json (the one npm ci builds
 * the native modules for), whatever node starts it. The specs run on it (npm test and npx put
 * node_modules/.bin first on PATH); bin/rookery.js started by another node runs itself again on it.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const pinned = realpathSync(join(root, 'node_modules', 'node', 'bin', 'node'));
const pinnedVersion: string = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).dependencies.node;

describe('the runtime', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-runtime-'));
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('is the pinned node: the specs run on it', () => {
    expect(process.version).toBe(`v${pinnedVersion}`);
    expect(realpathSync(process.execPath)).toBe(pinned);
  });

  it('bin/rookery.js started by another node runs the command on the pinned node and ends with its exit status', async () => {
    // Another node binary: a copy of the pinned one elsewhere (the machine's node may not exist).
    const other = join(work, 'node');
    await copyFile(pinned, other);
    await chmod(other, 0o755);
    // Every node that starts records its binary: the one started first, then the one it ran.
    const record = join(work, 'started');
    const probe = join(work, 'probe.cjs');
    await writeFile(probe, `require('node:fs').appendFileSync(${JSON.stringify(record)}, process.execPath + '\\n');\n`);

    const result = spawnSync(other, [bin, 'no-such-command'], {
      cwd: root,
      env: { ...process.env, NODE_OPTIONS: `--require ${probe}`, ROOKERY_CONFIG: '' },
      encoding: 'utf8',
    });

    expect(result.status).toBe(2);
    expect(result.stderr).toContain("unknown command 'no-such-command'");
    expect((await readFile(record, 'utf8')).trim().split('\n')).toEqual([other, pinned]);
  });
});
