import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buildConfig } from '@rookery/config';
import { Store, WalFileName, parseWalFileName, walHistoryFileName, walSegmentFileName } from '@rookery/core';
import {
  ArchiverLaunch,
  PrefetcherLaunch,
  MISSING_FRESH_MS,
  WalEngine,
  WalLaunchers,
  WalPrefetcher,
  bootClock,
  clearPrefetchSpool,
  createWalEngine,
  walBinding,
  walPushFastPath,
} from '@rookery/wal';
import { createDecompressStream, createDecryptStream, parseEncryptionKey } from '@rookery/pipeline';
import { WalArchive } from '@rookery/repository';
import { createStore } from '@rookery/storage';
import { SeededRandom, differentialSeeds, walSegmentBytes } from '@rookery/testing';
import { walMain } from './wal.main';

/**
 * Differential proof of the WAL fast paths against the plain commands, over generated cases.
 *
 * wal-get: the restore_command `rookery restore` writes (bin/rookery-wal-get … --prefetch N, a
 * spool seeded by the prefetcher's own code, its "not archived" markers, in some cases the
 * prefetcher itself running beside recovery, started by the first miss) against a plain
 * `rookery wal-get` without prefetch (wal.prefetchSegments: 0). wal-push: archive_command through
 * bin/rookery-wal-push, bin/rookery.js's node fast path and the background archiver
 * (wal.archiveAsync) against the synchronous push (archiveAsync off), on two repositories with the
 * same earlier state. Both must give the same exit status for every call, the same restored
 * bytes, and repositories holding the same files, which decode to the bytes pushed.
 *
 * Generated: compression codec and frame size (chunk boundaries), encryption on and off,
 * timelines, segment numbers and sizes (empty included), holes in the archive, segments archived
 * only as .partial, .history and .backup files, names that are not WAL file names, a spool with
 * stale, foreign-boot and symlinked markers and staging files beside what the prefetcher left,
 * files touched, replaced by an identical copy or rewritten between calls, a copy already
 * archived (identical or not).
 *
 * The real scripts run; node is a stub that records its arguments and exits 42, and what it would
 * have run (bin/rookery.js: the node fast path, then the WAL commands) runs here in-process with
 * exactly those arguments, the background archiver and the prefetcher too (as bin/rookery.js
 * would start them). A
 * failure prints its seed; ROOKERY_DIFF_SEED=<seed> replays that case alone.
 */
const root = resolve(__dirname, '..', '..', '..');
const walGetScript = join(root, 'bin', 'rookery-wal-get');
const walPushScript = join(root, 'bin', 'rookery-wal-push');
const NODE_STUB_EXIT = 42;
const GET_CASES = 32;
const PUSH_CASES = 16;
const CODECS = ['none', 'zstd', 'lz4', 'gzip'] as const;
const BAD_NAMES = [
  'RECOVERYXLOG',
  // WAL-shaped, but no file PostgreSQL archives: a segment part past 0xFF, timeline 0.
  '000000010000000000000100',
  '000000000000000000000001',
  '00000000.history',
  '00000001000000000000000g',
  '0000000100000000000000',
  '00000001.HISTORY',
  'xlogtemp.123',
];

/** `length` bytes that look random (AES-CTR keystream), the same for the same seed. */
function streamBytes(seed: number, length: number): Buffer {
  const key = createHash('sha256').update(`wal-fast-path ${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

function content(random: SeededRandom): Buffer {
  const size = random.chance(0.05) ? 0 : random.chance(0.2) ? random.int(1, 64) : random.int(65, 48_000);
  return streamBytes(random.int(0, 0xffffffff), size);
}

/**
 * Bytes wal-push accepts under `name`: a segment of 1 MiB (the smallest segment size) with a
 * valid long page header and random bytes after it; a .partial cut to a random length after its
 * header; any other file (history, backup history) random bytes.
 */
function walContent(random: SeededRandom, name: string): Buffer {
  const file = parseWalFileName(name, SEGMENT_SIZE);
  if (!file || file.kind === 'history' || file.kind === 'backup') return content(random);
  const bytes = walSegmentBytes(name.slice(0, 24), { size: SEGMENT_SIZE, fill: 0 });
  const body = content(random);
  body.copy(bytes, 64, 0, Math.min(body.length, SEGMENT_SIZE - 64));
  return file.kind === 'partial' ? bytes.subarray(0, random.int(64, SEGMENT_SIZE)) : bytes;
}

const SEGMENT_SIZE = 1024 * 1024;

interface Encoding {
  compression: { codec: string; chunkSizeMb: number };
  encryption?: { keyFile: string };
}

function generateEncoding(random: SeededRandom, keyFile: string): Encoding {
  const encoding: Encoding = {
    compression: {
      codec: random.pick(CODECS),
      chunkSizeMb: random.pick([0.004, 0.01, 0.03, 1]),
    },
  };
  if (random.chance(0.4)) encoding.encryption = { keyFile };
  return encoding;
}

describe('WAL fast paths against the plain commands, over generated cases', () => {
  let work: string;
  // What bin/rookery.js passes the WAL commands (launchArchiver, launchPrefetcher), run in this process.
  let launchers: WalLaunchers;
  let keyFile: string;
  let stubNode: string;
  let stubArgs: string;
  const savedTmpdir = process.env['TMPDIR'];
  /** Background archivers and prefetchers started in-process (what bin/rookery.js would start detached). */
  const background = new Set<Promise<unknown>>();
  let stderr: string[] = [];

  beforeAll(async () => {
    // tmpfs where there is one: the stores' fsyncs cost nothing there; the bytes are what is compared.
    work = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'rookery-wal-diff-'));
    keyFile = join(work, 'backup.key');
    await writeFile(keyFile, Buffer.alloc(32, 9).toString('hex'), {
      mode: 0o600,
    });
    stubNode = join(work, 'node');
    stubArgs = join(work, 'node.args');
    await writeFile(stubNode, `#!/bin/sh\nprintf '%s\\0' "$@" > '${stubArgs}'\nexit ${NODE_STUB_EXIT}\n`, { mode: 0o755 });
    // The settings caches of wal-push (node writes, the shell reads) live under TMPDIR.
    process.env['TMPDIR'] = join(work, 'tmp');
    await mkdir(process.env['TMPDIR'], { mode: 0o700 });
    launchers = { archiver: launchArchiverInProcess, prefetcher: () => undefined };
    jest.spyOn(process.stderr, 'write').mockImplementation((text: string | Uint8Array) => {
      stderr.push(String(text));
      return true;
    });
  });

  afterAll(async () => {
    jest.restoreAllMocks();
    await Promise.allSettled(background);
    if (savedTmpdir === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = savedTmpdir;
    await rm(work, { recursive: true, force: true });
  });

  /**
   * A detached rookery of bin/rookery.js (the background archiver, the prefetcher), in this
   * process: the same arguments, run by the same program, awaited by settle().
   */
  function runInBackground(args: string[]): Promise<number> {
    const signals = new Set(process.listeners('SIGTERM'));
    const exited = walMain(['node', 'rookery', ...args], launchers).finally(() => {
      // It listens for SIGTERM/SIGINT as a process of its own would: drop its listeners.
      for (const name of ['SIGTERM', 'SIGINT'] as const)
        for (const listener of process.listeners(name)) if (!signals.has(listener)) process.removeListener(name, listener);
    });
    background.add(exited);
    void exited.finally(() => background.delete(exited));
    return exited;
  }

  /** bin/rookery.js's launchArchiver. */
  function launchArchiverInProcess(launch: ArchiverLaunch): {
    exited: Promise<unknown>;
  } {
    const early = launch.early ? ['--early'] : [];
    return {
      exited: runInBackground([...launch.globalArgs, 'wal-archiver', '--tier', launch.tier, '--wal-dir', launch.walDirectory, ...early]),
    };
  }

  /** bin/rookery.js's launchPrefetcher: its pid is this process's (requestPrefetch takes the spool's lock for it). */
  function launchPrefetcherInProcess(launch: PrefetcherLaunch): number {
    void runInBackground([
      ...launch.globalArgs,
      'wal-prefetcher',
      '--tier',
      launch.tier,
      '--spool',
      launch.spoolDirectory,
      '--depth',
      String(launch.depth),
    ]);
    return process.pid;
  }

  /**
   * Runs a fast-path script with node replaced by the stub: the shell's own exit status, or
   * null when it handed over to node, whose arguments must then be the script's own.
   */
  async function script(path: string, args: string[], expectedNodeArgs: string[]): Promise<number | null> {
    await rm(stubArgs, { force: true });
    const run = spawnSync(path, args, {
      cwd: process.cwd(),
      env: { ...process.env, PWD: process.cwd(), ROOKERY_NODE: stubNode },
      encoding: 'utf8',
    });
    if (run.status !== NODE_STUB_EXIT) return run.status;
    const handed = (await readFile(stubArgs, 'utf8')).split('\0').slice(0, -1);
    expect(handed).toEqual([join(root, 'bin', 'rookery.js'), ...expectedNodeArgs]);
    return null;
  }

  /** bin/rookery.js in this process: the wal-push node fast path, then the WAL commands. */
  async function rookery(args: string[]): Promise<number> {
    if (args.includes('wal-push')) {
      const output = {
        stdout: () => undefined,
        stderr: (text: string) => void stderr.push(text),
      };
      const code = await walPushFastPath(args, process.env, process.cwd(), output, launchArchiverInProcess);
      if (code !== null) return code;
    }
    return walMain(['node', 'rookery', ...args], launchers);
  }

  async function settle(): Promise<void> {
    while (background.size > 0) await Promise.allSettled([...background]);
  }

  async function runCases(count: number, base: number, run: (seed: number, random: SeededRandom) => Promise<void>): Promise<void> {
    for (const seed of differentialSeeds(count, base)) {
      stderr = [];
      try {
        await run(seed, new SeededRandom(seed));
      } catch (error) {
        await settle();
        const message = error instanceof Error ? error.message : String(error);
        throw new Error(
          `case seed ${seed} failed (replay: ROOKERY_DIFF_SEED=${seed}): ${message}\nstderr of the case:\n${stderr.join('').slice(-3000)}`,
        );
      }
    }
  }

  describe('wal-get: bin/rookery-wal-get with prefetch against plain wal-get', () => {
    it(`gives the same exit status and bytes for every request (${GET_CASES} cases)`, async () => {
      let answeredByShell = 0;
      let requests = 0;
      /** Segments a running prefetcher (not the seeding) fetched, as its log says. */
      let prefetchedByRunner = 0;
      await runCases(GET_CASES, 51_100, async (seed, random) => {
        const dir = join(work, `get-${seed}`);
        const repo = join(dir, 'repo');
        const pgWal = join(dir, 'data', 'pg_wal');
        const spool = join(pgWal, 'rookery-prefetch');
        const plainDir = join(dir, 'plain');
        const source = join(dir, 'source');
        await Promise.all([pgWal, plainDir, source, repo].map((path) => mkdir(path, { recursive: true })));
        const config = join(dir, 'rookery.yaml');
        const document = {
          repositories: [`file://${repo}`],
          ...generateEncoding(random, keyFile),
          wal: { processMax: random.int(1, 4) },
        };
        await writeFile(config, JSON.stringify(document));
        const engine = createWalEngine(buildConfig(document, config, {}, {}, dir), { oneShot: true });
        try {
          // The archive: a run of segments on one timeline with holes, some only as .partial,
          // the timeline's and the next one's history files, a backup history file.
          const timeline = random.pick([1, 2, 0xa, 0x1f, 0x100]);
          const first = BigInt(random.int(1, 0x3ff));
          const archived = new Map<string, Buffer>();
          const asked: string[] = [];
          const archive = async (name: string, bytes: Buffer) => {
            await writeFile(join(source, name), bytes);
            await engine.wal.push('oltp', join(source, name));
          };
          const count = random.int(3, 10);
          for (let index = 0n; index < BigInt(count); index++) {
            const name = walSegmentFileName(timeline, first + index);
            asked.push(name);
            const roll = random.next();
            if (roll < 0.75) archived.set(name, walContent(random, name));
            else if (roll < 0.85) {
              const bytes = walContent(random, `${name}.partial`);
              archived.set(name, bytes);
              await archive(`${name}.partial`, bytes);
              continue;
            }
            const bytes = archived.get(name);
            if (bytes) await archive(name, bytes);
          }
          asked.push(walSegmentFileName(timeline, first + BigInt(count)));
          for (const history of [walHistoryFileName(timeline), walHistoryFileName(timeline + 1)]) {
            asked.push(history);
            if (random.chance(0.5)) {
              const bytes = Buffer.from(
                `${timeline}\t0/${random.int(1, 0xffffff).toString(16).toUpperCase()}\tno recovery target specified\n`,
              );
              archived.set(history, bytes);
              await archive(history, bytes);
            }
          }
          const backupFile = `${walSegmentFileName(timeline, first)}.00000028.backup`;
          asked.push(backupFile);
          if (random.chance(0.5)) {
            archived.set(backupFile, content(random));
            await archive(backupFile, archived.get(backupFile) as Buffer);
          }

          // The spool as the restore seeds it (the prefetcher's own fetch and check code).
          await mkdir(spool, { mode: 0o700 });
          const after = parseWalFileName(walSegmentFileName(timeline, first - 1n)) as WalFileName;
          await new WalPrefetcher(engine.wal).seed({
            tier: 'oltp',
            spoolDirectory: spool,
            after,
            segments: random.int(1, 8),
          });
          await hostileSpoolEntries(random, spool, asked, archived);
          // A prefetcher running beside recovery in some cases, started by the first miss as
          // bin/rookery.js starts it; in the others the seeded spool is all there is.
          launchers.prefetcher = random.chance(0.4) ? launchPrefetcherInProcess : () => undefined;

          // What recovery asks for, in an order of its own, with a few names that are no WAL files.
          const names = Array.from({ length: random.int(3, 10) }, () =>
            random.chance(0.08) ? random.pick(BAD_NAMES) : random.pick(asked),
          );
          for (const name of names) {
            const prefetch = random.chance(0.1) ? '0' : String(random.int(1, 32));
            const destination = join(pgWal, 'RECOVERYXLOG');
            const plainDestination = join(plainDir, 'RECOVERYXLOG');
            await rm(destination, { force: true });
            await rm(plainDestination, { force: true });
            const args = ['--config', config, 'wal-get', name, destination, '--tier', 'oltp', '--prefetch', prefetch];
            let fast = await script(walGetScript, args, args);
            if (fast === null) fast = await rookery(args);
            else answeredByShell++;
            const plain = await rookery(['--config', config, 'wal-get', name, plainDestination, '--tier', 'oltp']);
            requests++;
            const what = `wal-get ${name} (--prefetch ${prefetch})`;
            if (fast !== plain) throw new Error(`${what}: the fast path exited ${fast}, the plain one ${plain}`);
            if (plain !== 0) continue;
            const [fastBytes, plainBytes] = await Promise.all([readFile(destination), readFile(plainDestination)]);
            if (!plainBytes.equals(archived.get(name) as Buffer))
              throw new Error(`${what}: the plain path restored other bytes than were archived`);
            if (!fastBytes.equals(plainBytes)) throw new Error(`${what}: the fast path restored other bytes than the plain one`);
          }
        } finally {
          // Recovery is over: without its spool a prefetcher leaves.
          await clearPrefetchSpool(spool).catch(() => undefined);
          await settle();
          prefetchedByRunner += stderr.join('').split(' prefetched (').length - 1;
          await engine.close();
          await rm(dir, { recursive: true, force: true });
        }
      });
      // The shell answered on its own often enough to be proved (unless a single seed replays).
      if (!process.env['ROOKERY_DIFF_SEED']) expect([answeredByShell > requests / 5, prefetchedByRunner > 0]).toEqual([true, true]);
    }, 600_000);
  });

  /**
   * Spool entries the script must not answer from: markers past the freshness bound or from
   * another boot (for archived names and missing ones), a marker that is a symlink to a fresh one,
   * staging files of a fetch in progress.
   */
  async function hostileSpoolEntries(random: SeededRandom, spool: string, asked: string[], archived: Map<string, Buffer>): Promise<void> {
    const [boot, centiseconds] = ((await bootClock()) as string).split(' ');
    for (const name of asked) {
      if (random.chance(0.7)) continue;
      const marker = join(spool, `${name}.missing`);
      if (existsSync(marker) || existsSync(`${marker}.used`)) continue;
      const roll = random.next();
      if (roll < 0.35) {
        const age = Math.round((MISSING_FRESH_MS + random.int(600, 5_000)) / 10);
        await writeFile(random.chance(0.5) ? marker : `${marker}.used`, `${boot} ${Number(centiseconds) - age}\n`, { mode: 0o600 });
      } else if (roll < 0.55) {
        await writeFile(marker, `00000000-0000-0000-0000-000000000000 ${centiseconds}\n`, { mode: 0o600 });
      } else if (roll < 0.75) {
        const fresh = join(spool, `.${name}.fresh`);
        await writeFile(fresh, `${boot} ${centiseconds}\n`, { mode: 0o600 });
        await symlink(fresh, marker);
      } else if (archived.has(name)) {
        await writeFile(join(spool, `.${name}.fetching`), (archived.get(name) as Buffer).subarray(0, 7));
      }
    }
  }

  describe('wal-push: bin/rookery-wal-push with asynchronous archiving against the synchronous push', () => {
    it(`gives the same exit status for every call and stores the same files (${PUSH_CASES} cases)`, async () => {
      let answeredByShell = 0;
      let calls = 0;
      await runCases(PUSH_CASES, 73_700, async (seed, random) => {
        const dir = join(work, `push-${seed}`);
        const pgWal = join(dir, 'pg_wal');
        const scratch = join(dir, 'scratch');
        await Promise.all([join(pgWal, 'archive_status'), scratch].map((path) => mkdir(path, { recursive: true })));
        const encoding = generateEncoding(random, keyFile);
        const processMax = random.int(1, 3);
        const fast = {
          repositories: [`file://${join(dir, 'fast')}`],
          ...encoding,
          wal: {
            archiveAsync: true,
            spoolPath: join(dir, 'spool'),
            processMax,
            archiveTimeoutSeconds: 30,
            archiverIdleSeconds: 0.05,
          },
        };
        const plain = {
          repositories: [`file://${join(dir, 'plain')}`],
          ...encoding,
          wal: { processMax },
        };
        const fastConfig = join(dir, 'fast.yaml');
        const plainConfig = join(dir, 'plain.yaml');
        await writeFile(fastConfig, JSON.stringify(fast));
        await writeFile(plainConfig, JSON.stringify(plain));
        const engines = [fast, plain].map((document) =>
          createWalEngine(buildConfig(document, 'test', {}, {}, dir), {
            oneShot: true,
          }),
        );
        const stores = [fast, plain].map((document) => createStore(document.repositories[0]));
        try {
          const name = generatePushName(random);
          const path = join(pgWal, name);
          const pushed: Buffer[] = [];
          // What the archive already holds under the name: nothing, this very file, or another.
          let bytes = walContent(random, name);
          const earlier = parseWalFileName(name) ? random.pick(['none', 'none', 'none', 'same', 'other'] as const) : 'none';
          if (earlier !== 'none') {
            const copy = earlier === 'same' ? bytes : walContent(random, name);
            await writeFile(join(scratch, name), copy);
            for (const engine of engines) await engine.wal.push('oltp', join(scratch, name));
            pushed.push(copy);
          }
          await writeFile(path, bytes);
          await writeFile(join(pgWal, 'archive_status', `${name}.ready`), '');
          pushed.push(bytes);

          const steps = random.int(1, 3);
          for (let step = 0; step < steps; step++) {
            // Between two calls (PostgreSQL retries after a failure) the file may be touched,
            // replaced by an identical copy, or rewritten.
            const change = step === 0 ? 'none' : random.pick(['none', 'none', 'touch', 'copy', 'rewrite'] as const);
            if (change === 'touch') await utimes(path, new Date(), new Date(Date.now() + random.int(1, 100_000)));
            if (change === 'copy') {
              await writeFile(join(scratch, 'copy'), bytes);
              await rename(join(scratch, 'copy'), path);
            }
            if (change === 'rewrite') {
              bytes = walContent(random, name);
              await writeFile(path, bytes);
              pushed.push(bytes);
            }
            const args = [path, '--tier', 'oltp', '--config', fastConfig];
            const fastPush = async () => {
              let code = await script(walPushScript, args, ['wal-push', ...args]);
              if (code === null) code = await rookery(['wal-push', ...args]);
              else answeredByShell++;
              await settle();
              return code;
            };
            const plainPush = () => rookery(['--config', plainConfig, 'wal-push', path, '--tier', 'oltp']);
            const fastCode = await fastPush();
            // Asked again at once (an archive_command that is retried, a check): now the records exist.
            const again = await fastPush();
            const plainCode = await plainPush();
            const plainAgain = await plainPush();
            calls += 2;
            const what = `wal-push ${name} (call ${step + 1}, after '${change}')`;
            if (fastCode !== plainCode) throw new Error(`${what}: the fast path exited ${fastCode}, the plain one ${plainCode}`);
            if (again !== plainAgain) throw new Error(`${what}, asked again: the fast path exited ${again}, the plain one ${plainAgain}`);
          }
          const [fastFiles, plainFiles] = await Promise.all(stores.map((store) => archivedContent(store, name, encoding)));
          if (fastFiles.join() !== plainFiles.join())
            throw new Error(`the repositories hold other files for ${name}: fast ${fastFiles.join()} | plain ${plainFiles.join()}`);
          const wanted = new Set(pushed.map((buffer) => sha256(buffer)));
          for (const file of fastFiles) if (!wanted.has(file)) throw new Error(`${name} decodes to bytes that were never pushed`);
        } finally {
          await settle();
          await Promise.all([...engines.map((engine: WalEngine) => engine.close()), ...stores.map((store) => store.close())]);
          await rm(dir, { recursive: true, force: true });
        }
      });
      if (!process.env['ROOKERY_DIFF_SEED']) expect(answeredByShell).toBeGreaterThan(calls / 5);
    }, 600_000);
  });
});

function generatePushName(random: SeededRandom): string {
  const timeline = random.pick([1, 2, 0xa, 0x1f]);
  const segment = walSegmentFileName(timeline, BigInt(random.int(1, 0x3ff)));
  const roll = random.next();
  if (roll < 0.6) return segment;
  if (roll < 0.72) return `${segment}.partial`;
  if (roll < 0.82) return walHistoryFileName(timeline);
  if (roll < 0.92) return `${segment}.${random.int(0, 0xffffff).toString(16).toUpperCase().padStart(8, '0')}.backup`;
  return random.pick(BAD_NAMES);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The sha256 of every stored copy of `name`, each decoded (decrypted, decompressed) and checked against its key. */
async function archivedContent(store: Store, name: string, encoding: Encoding): Promise<string[]> {
  const file = parseWalFileName(name);
  if (!file) return [];
  const hashes: string[] = [];
  for (const object of await new WalArchive(store).versions('oltp', file)) {
    const hash = createHash('sha256');
    const stages = [];
    if (object.encrypted)
      stages.push(
        createDecryptStream(parseEncryptionKey(Buffer.alloc(32, 9).toString('hex')), {
          label: object.key,
          binding: walBinding('oltp', object.file),
        }),
      );
    if (object.codec !== 'none') stages.push(createDecompressStream({ codec: object.codec, level: 0 }, { label: object.key }));
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback();
      },
    });
    await pipeline([await store.read(object.key), ...stages, sink]);
    const decoded = hash.digest('hex');
    if (decoded !== object.sha256) throw new Error(`${object.key} decodes to sha256 ${decoded}`);
    if (object.codec !== (encoding.compression.codec as string) || object.encrypted !== Boolean(encoding.encryption))
      throw new Error(`${object.key} is not encoded as configured`);
    hashes.push(decoded);
  }
  return hashes.sort();
}
