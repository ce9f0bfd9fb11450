import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseWalFileName } from '@rookery/core';
import { SeededRandom, differentialSeeds, walSegmentBytes } from '@rookery/testing';
import {
  GLOBAL_OPTIONS_WITH_VALUE,
  PREFETCH_DIRECTORY,
  WalPushInvocation,
  WalSpool,
  bootClock,
  fileIdentity,
  isWalFileName,
  parseWalPushArgs,
  writeCachedSettings,
} from '@rookery/wal';
import { GlobalOptions } from './cli.config';
import { rootProgram } from './cli.program';
import { buildWalProgram } from './wal.main';

/**
 * Conformance of the WAL grammars over generated inputs: the WAL file-name grammar of
 * @rookery/core (parseWalFileName) against the node fast path's (isWalFileName) and
 * bin/rookery-wal-get's; the wal-push arguments of the fast-path parser (parseWalPushArgs) against
 * the CLI's (commander) and bin/rookery-wal-push's. A failure prints its seed;
 * ROOKERY_DIFF_SEED=<seed> replays that case alone.
 */
const root = resolve(__dirname, '..', '..', '..');
const NODE_STUB_EXIT = 42;
const HEX = '0123456789ABCDEF';

function hex(random: SeededRandom, length: number): string {
  return Array.from({ length }, () => random.pick([...HEX])).join('');
}

/** A name near the grammar's edges: timeline 0, segment parts at and above 0x100, lower case, odd suffixes. */
function generatedName(random: SeededRandom): string {
  const timeline = random.pick(['00000000', '00000001', '0000000A', hex(random, 8)]);
  const segment = `${random.pick(['00000000', hex(random, 8)])}${random.pick(['000000', '000001', hex(random, 6)])}${hex(random, 2)}`;
  const name = random.pick([
    `${timeline}${segment}`,
    `${timeline}${segment}.partial`,
    `${timeline}${segment}.${hex(random, 8)}.backup`,
    `${timeline}.history`,
    `${timeline}${segment}`.slice(0, random.int(1, 23)),
    `${timeline}${segment}x`,
    `${timeline}.HISTORY`,
    `${timeline}${segment}.partial.tmp`,
  ]);
  return random.chance(0.1) ? name.toLowerCase() : name;
}

describe('WAL grammars against @rookery/core and the CLI, over generated inputs', () => {
  let work: string;
  let stubNode: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-wal-grammar-'));
    stubNode = join(work, 'node');
    await writeFile(stubNode, `#!/bin/sh\nexit ${NODE_STUB_EXIT}\n`, { mode: 0o755 });
  });

  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  function runScript(script: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): number | null {
    const environment: NodeJS.ProcessEnv = { PATH: process.env['PATH'], PWD: cwd, ROOKERY_NODE: stubNode, ...env };
    return spawnSync(join(root, 'bin', script), args, { cwd, env: environment }).status;
  }

  function forEachSeed(count: number, check: (random: SeededRandom) => Promise<void> | void): Promise<void> {
    return differentialSeeds(count).reduce(
      (previous, seed) =>
        previous.then(async () => {
          try {
            await check(new SeededRandom(seed));
          } catch (error) {
            throw new Error(`seed ${seed} (replay: ROOKERY_DIFF_SEED=${seed}): ${error instanceof Error ? error.message : String(error)}`);
          }
        }),
      Promise.resolve(),
    );
  }

  it('the node fast path takes exactly the WAL file names parseWalFileName accepts', () =>
    forEachSeed(2_000, (random) => {
      const name = generatedName(random);
      expect([name, isWalFileName(name)]).toEqual([name, parseWalFileName(name) !== null]);
    }));

  it('bin/rookery-wal-get serves from the prefetch spool only segments, and answers "not archived" only for segments and histories, as parseWalFileName says', async () => {
    const pgWal = join(work, 'get', 'pg_wal');
    const spool = join(pgWal, PREFETCH_DIRECTORY);
    await forEachSeed(150, async (random) => {
      const name = generatedName(random);
      const kind = parseWalFileName(name)?.kind;
      await rm(spool, { recursive: true, force: true });
      await mkdir(spool, { recursive: true, mode: 0o700 });
      const args = ['wal-get', name, join(pgWal, 'RECOVERYXLOG'), '--tier', 'oltp', '--prefetch', '4'];
      await writeFile(join(spool, name), 'prefetched');
      expect([name, runScript('rookery-wal-get', args, work)]).toEqual([name, kind === 'segment' ? 0 : NODE_STUB_EXIT]);
      await rm(join(spool, name), { force: true });
      await writeFile(join(spool, `${name}.missing`), `${await bootClock()}\n`);
      const answersMissing = kind === 'segment' || kind === 'history';
      expect([name, runScript('rookery-wal-get', args, work)]).toEqual([name, answersMissing ? 1 : NODE_STUB_EXIT]);
    });
  });

  it("bin/rookery.js's command finder knows the CLI's global options that take a value", () => {
    const withValue = rootProgram().options.filter((option) => option.required || option.optional);
    expect([...GLOBAL_OPTIONS_WITH_VALUE].sort()).toEqual(withValue.map((option) => option.long).sort());
  });

  describe('wal-push arguments', () => {
    const SEGMENT = '000000010000000000000003';
    let cwd: string;
    let config: string;
    let store: string;

    beforeAll(async () => {
      cwd = join(work, 'push');
      await mkdir(join(cwd, 'pg_wal'), { recursive: true });
      config = join(cwd, 'rookery.yaml');
      await writeFile(config, 'wal:\n  archiveAsync: true\n');
      await writeFile(join(cwd, 'pg_wal', SEGMENT), walSegmentBytes(SEGMENT));
      store = `file://${join(work, 'repo')}`;
      // The caches the CLI writes once it validated the configuration, and the archiver's acknowledgement of the file.
      const env = { TMPDIR: join(work, 'tmp') };
      await mkdir(env.TMPDIR, { mode: 0o700 });
      const settings = { spoolPath: join(work, 'spool'), store, archiveTimeoutSeconds: 60 };
      const invocation: WalPushInvocation = { path: `pg_wal/${SEGMENT}`, tier: 'oltp', repositories: [], json: false };
      await writeCachedSettings(invocation, settings, env, cwd);
      const spool = WalSpool.forTier(settings.spoolPath, 'oltp');
      await spool.prepare();
      const identity = await fileIdentity(join(cwd, 'pg_wal', SEGMENT));
      await spool.acknowledge(SEGMENT, { store, identity, sha256: '0'.repeat(64), at: new Date(0).toISOString() });
    });

    /** Argument lists around what archive_command passes: repeated, inline, empty and missing values, other options. */
    function generatedArgs(random: SeededRandom): string[] {
      const units = [
        () => [random.pick([`pg_wal/${SEGMENT}`, join(cwd, 'pg_wal', SEGMENT), SEGMENT, '', 'extra'])],
        () => ['--tier', random.pick(['oltp', 'oltp', 'queue', '1x', 'OLTP', '', '-x'])],
        () => [`--tier=${random.pick(['oltp', 'queue', '', 'a=b'])}`],
        () => ['--config', random.pick([config, 'rookery.yaml', '', '--json'])],
        () => [`--config=${random.pick([config, ''])}`],
        () => ['--repo', store],
        () => [random.pick(['--json', '--json=1', '--log-level', '-x', '--', '-', '--tierx', '--help'])],
      ];
      const args = [units[0](), units[1]()];
      for (let count = random.int(0, 3); count > 0; count--) args.splice(random.int(0, args.length), 0, random.pick(units)());
      return args.flat();
    }

    /** What the full CLI's wal-push (commander) reads from `args`, or null when it refuses them. */
    async function cliInvocation(args: string[]): Promise<WalPushInvocation | null> {
      const program = buildWalProgram();
      let parsed: WalPushInvocation | null = null;
      for (const command of [program, ...program.commands])
        command.configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
      program.commands
        .find((command) => command.name() === 'wal-push')
        ?.action((path: string, _options: unknown, command: import('commander').Command) => {
          const globals = command.optsWithGlobals<GlobalOptions & { json?: boolean }>();
          parsed = {
            path,
            tier: globals.tier ?? '',
            configFile: globals.config,
            repositories: globals.repo ?? [],
            json: Boolean(globals.json),
          };
        });
      try {
        await program.parseAsync(['wal-push', ...args], { from: 'user' });
      } catch {
        return null;
      }
      return parsed;
    }

    it('what the fast-path parser accepts, the CLI reads the same way', async () => {
      let compared = 0;
      await forEachSeed(400, async (random) => {
        const args = generatedArgs(random);
        const fast = parseWalPushArgs(['wal-push', ...args]);
        if (fast === null) return;
        compared++;
        expect([args, await cliInvocation(args)]).toEqual([args, fast]);
      });
      expect(compared).toBeGreaterThan(40);
    });

    it('bin/rookery-wal-push answers without node exactly when the parser reads the acknowledged file, tier and config, without --repo or --json', async () => {
      let servedCount = 0;
      await forEachSeed(300, (random) => {
        const args = generatedArgs(random);
        const invocation = parseWalPushArgs(['wal-push', ...args]);
        const served =
          invocation !== null &&
          invocation.tier === 'oltp' &&
          invocation.repositories.length === 0 &&
          !invocation.json &&
          resolve(cwd, invocation.path) === join(cwd, 'pg_wal', SEGMENT) &&
          resolve(cwd, invocation.configFile ?? 'rookery.yaml') === config;
        const status = runScript('rookery-wal-push', args, cwd, { TMPDIR: join(work, 'tmp') });
        expect([args, status]).toEqual([args, served ? 0 : NODE_STUB_EXIT]);
        if (served) servedCount++;
      });
      expect(servedCount).toBeGreaterThan(5);
    });
  });
});
