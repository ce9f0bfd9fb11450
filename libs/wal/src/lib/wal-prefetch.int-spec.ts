import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, symlinkSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { pollUntil, walSegmentBytes } from '@rookery/testing';
import { WalPrefetcher, bootClock, stopPrefetcher, writePrefetchCursor } from './wal-prefetch';
import { WalSpool, readRegularFile } from './wal.spool';
import { WalEngine, createWalEngine } from './wal.factory';

/**
 * Archive-get prefetch through the real scripts (bin/rookery-wal-get → bin/rookery.js wal-get
 * --prefetch, the detached prefetcher) against a filesystem repository: prefetched segments are
 * served from the spool without node (ROOKERY_NODE=/bin/false proves it), a damaged object never
 * reaches the spool and its wal-get fails with 128, the prefetcher stops at the archive's end
 * (wal-get exits 1 there), and when idle it exits and removes the spool. What it finds not
 * archived it marks, and the script answers 1 from those markers without node; a segment archived
 * after its marker was written is fetched all the same. PITR with prefetch (the restore_command
 * rookery restore writes) is covered by pitr.int-spec.ts.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const fastPath = join(root, 'bin', 'rookery-wal-get');
const SEGMENT_BYTES = 1024 * 1024;
/** How long a wait may take before it fails (generous: a wait for a condition, never a bound), and a case of several waits. */
const WAIT_MS = 180_000;
const WAIT_TEST_MS = 3 * WAIT_MS;
const segment = (n: number, timeline = 1) => `0000000${timeline}0000000000000${n.toString(16).toUpperCase().padStart(3, '0')}`;

describe('wal-get --prefetch', () => {
  let work: string;
  let repoDir: string;
  let configFile: string;
  /** The same settings with a 2 s idle time: the case that watches a prefetcher leave when idle. */
  let idleConfigFile: string;
  let pgWal: string;
  let spool: string;
  let engine: WalEngine;
  let source: string;
  /** Stands in for node where the shell alone must answer: exit 42 says node ran. */
  let noNode: string;
  const content = new Map<string, Buffer>();

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'wal.main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-prefetch-'));
    repoDir = join(work, 'repo');
    pgWal = join(work, 'data', 'pg_wal');
    spool = join(pgWal, 'rookery-prefetch');
    await mkdir(pgWal, { recursive: true });
    await mkdir(repoDir);
    configFile = join(work, 'rookery.yaml');
    // Long enough that no prefetcher leaves in the middle of a case on a loaded machine (each case
    // stops its own: afterEach).
    const settings = {
      repositories: [`file://${repoDir}`],
      compression: { codec: 'none' },
      wal: { processMax: 2, archiverIdleSeconds: 300 },
    };
    await writeFile(configFile, JSON.stringify(settings));
    idleConfigFile = join(work, 'rookery-idle.yaml');
    await writeFile(idleConfigFile, JSON.stringify({ ...settings, wal: { ...settings.wal, archiverIdleSeconds: 2 } }));
    engine = createWalEngine(buildConfig(settings, 'test'));
    source = join(work, 'source');
    await mkdir(source);
    noNode = join(work, 'no-node');
    await writeFile(noNode, '#!/bin/sh\nexit 42\n', { mode: 0o755 });
    // Segments 1–8 archived on timeline 1 (9 is the archive's end), 10–11 on timeline 2.
    for (const name of [...[1, 2, 3, 4, 5, 6, 7, 8].map((n) => segment(n)), segment(10, 2), segment(11, 2)]) {
      const bytes = walSegmentBytes(name, { size: SEGMENT_BYTES });
      content.set(name, bytes);
      await writeFile(join(source, name), bytes);
      await engine.wal.push('oltp', join(source, name));
    }
    // Segment 6's object is damaged: same size, other bytes (the sha256 in its key no longer matches).
    const walDir = join(repoDir, 'oltp', 'wal', '00000001');
    const damaged = (await readdir(walDir)).find((entry) => entry.startsWith(`${segment(6)}-`)) as string;
    await writeFile(join(walDir, damaged), randomBytes(SEGMENT_BYTES));
  }, WAIT_MS);

  afterAll(async () => {
    await rm(spool, { recursive: true, force: true }); // tells a prefetcher still running to go
    await engine?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** restore_command as rookery restore writes it; `node` replaces the node binary (/bin/false: the shell alone must answer). */
  function walGet(name: string, node = process.execPath, config = configFile) {
    const run = spawnSync(fastPath, ['--config', config, 'wal-get', name, 'pg_wal/RECOVERYXLOG', '--tier', 'oltp', '--prefetch', '3'], {
      cwd: join(work, 'data'),
      env: { ...process.env, ROOKERY_NODE: node },
      encoding: 'utf8',
    });
    return { status: run.status, stderr: run.stderr };
  }

  async function served(name: string): Promise<boolean> {
    return (await readFile(join(pgWal, 'RECOVERYXLOG'))).equals(content.get(name) as Buffer);
  }

  async function spoolSegments(): Promise<string[]> {
    return (await readdir(spool).catch(() => [] as string[])).filter((entry) => /^[0-9A-F]{24}$/.test(entry)).sort();
  }

  /** Waits for `check` to hold: a generous cap, a wait for a condition, never a time bound on it. */
  async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
    await pollUntil(check, (holds) => holds, { what, timeoutMs: WAIT_MS });
  }

  /**
   * wal-get of `name` answered 1 by the shell alone from the prefetcher's marker. A marker answers
   * only while its check is under MISSING_FRESH_MS old: on a loaded machine it may have aged
   * before the ask, so the marker is then marked used, as the script does, and the prefetcher
   * checks again and writes a fresh one; asked again until the shell answers.
   */
  async function answeredFromMarker(name: string): Promise<{ status: number | null; stderr: string }> {
    const marker = join(spool, `${name}.missing`);
    for (;;) {
      const answer = walGet(name, noNode);
      if (answer.status !== 42) return answer;
      // A used marker (any content: a stale one answers nothing) makes the prefetcher check again.
      await rename(marker, `${marker}.used`).catch(() => writeFile(`${marker}.used`, 'used\n'));
      await eventually(async () => existsSync(marker), `a new marker of ${name}`);
    }
  }

  /** Whether process `pid` still exists. */
  const running = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  const log = () => readFile(join(spool, 'prefetcher.log'), 'utf8').catch(() => '');

  // Each case starts with no prefetcher and no spool.
  afterEach(() => stopPrefetcher(join(work, 'data')));

  it(
    'serves prefetched segments from the spool, never a damaged one, and stops at the end',
    async () => {
      // A miss: fetched in the foreground, and the prefetcher starts on the next three.
      expect(walGet(segment(1))).toEqual({ status: 0, stderr: '' });
      expect(await served(segment(1))).toBe(true);
      await eventually(async () => (await spoolSegments()).join() === [2, 3, 4].map((n) => segment(n)).join(), 'segments 2-4 in the spool');

      // Served by the shell alone (node would fail), then by node's own spool check.
      expect(walGet(segment(2), '/bin/false')).toEqual({ status: 0, stderr: '' });
      expect(await served(segment(2))).toBe(true);
      const viaNode = spawnSync(
        process.execPath,
        [
          join(root, 'bin', 'rookery.js'),
          '--config',
          configFile,
          'wal-get',
          segment(3),
          'pg_wal/RECOVERYXLOG',
          '--tier',
          'oltp',
          '--prefetch',
          '3',
        ],
        {
          cwd: join(work, 'data'),
          encoding: 'utf8',
        },
      );
      expect(viaNode.status).toBe(0);
      expect(await served(segment(3))).toBe(true);
      expect(await spoolSegments()).not.toContain(segment(3));

      // 4 and 5 come from the spool; the damaged 6 never enters it and its wal-get aborts recovery.
      expect(walGet(segment(4), '/bin/false').status).toBe(0);
      await eventually(
        async () => (await log()).includes(`stops fetching ahead at ${segment(6)}: checksum mismatch`),
        'the prefetcher to refuse segment 6',
      );
      // 7 may have been fetched alongside 6 (two at once): verified, so it may stay; 6 never lands.
      expect(await spoolSegments()).toContain(segment(5));
      expect((await readdir(spool)).filter((entry) => entry.includes(segment(6)))).toEqual([]);
      expect(walGet(segment(5), '/bin/false').status).toBe(0);
      expect(await served(segment(5))).toBe(true);
      const damaged = walGet(segment(6));
      expect(damaged.status).toBe(128);
      expect(damaged.stderr).toContain('checksum mismatch');

      // Past the damage (a new cursor): 8 is prefetched, 9 is the end; wal-get 9 exits 1.
      expect(walGet(segment(7)).status).toBe(0);
      expect(await served(segment(7))).toBe(true);
      await eventually(async () => (await log()).includes(`stops fetching ahead at ${segment(9)}: end`), 'the prefetcher to reach the end');
      expect(walGet(segment(8), '/bin/false').status).toBe(0);
      expect(await served(segment(8))).toBe(true);
      const end = walGet(segment(9));
      expect(end.status).toBe(1);
      expect(end.stderr).toContain('is not in the archive');
    },
    WAIT_TEST_MS,
  );

  it(
    'an idle prefetcher leaves and removes its spool',
    async () => {
      expect(walGet(segment(1), process.execPath, idleConfigFile).status).toBe(0);
      await eventually(async () => (await spoolSegments()).length === 3, 'segments in the spool');
      // Idle (wal.archiverIdleSeconds = 2 in this config): the spool is renamed aside, then deleted.
      await eventually(async () => !existsSync(spool) && (await readdir(pgWal)).length === 1, 'the spool to be removed');
      expect((await readdir(pgWal)).sort()).toEqual(['RECOVERYXLOG']);
    },
    WAIT_TEST_MS,
  );

  it(
    "a prefetcher inside another process (restore --start's) lands its files as the spool's account and is not doubled by a miss",
    async () => {
      // As root, the account of the spool is another (nobody): each file is given to it before the
      // script may read it. As anyone else the owner is this account (a chown to itself).
      const owner = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      await mkdir(spool, { mode: 0o700 });
      const controller = new AbortController();
      let locked = false;
      const running = new WalPrefetcher(engine.wal).run({
        tier: 'oltp',
        spoolDirectory: spool,
        startAfter: segment(6),
        onLocked: () => (locked = true),
        depth: 3,
        processMax: 2,
        idleMs: WAIT_MS,
        pid: process.pid,
        signal: controller.signal,
        owner,
      });
      await eventually(async () => locked, 'the lock taken');
      // 7 and 8 fetched, 9 is the archive's end (marked).
      await eventually(
        async () =>
          (await spoolSegments()).join() === [7, 8].map((n) => segment(n)).join() && existsSync(join(spool, `${segment(9)}.missing`)),
        'segments 7-8 in the spool and 9 marked',
      );
      const landed = (await readdir(spool)).filter((entry) => /^[0-9A-F]{24}$|\.missing$|^archiver\.pid$|^cursor$/.test(entry));
      expect(landed.length).toBeGreaterThanOrEqual(5);
      for (const entry of landed) expect({ entry, uid: (await lstat(join(spool, entry))).uid }).toEqual({ entry, uid: owner.uid });
      // A miss (node answers it from the store) finds the prefetcher alive and starts none: the lock
      // is still this process's and no prefetcher process wrote a log.
      expect(walGet(segment(1))).toEqual({ status: 0, stderr: '' });
      expect(await served(segment(1))).toBe(true);
      await eventually(async () => (await spoolSegments()).includes(segment(2)), 'segment 2 after the miss at 1');
      expect((await readFile(join(spool, 'archiver.pid'), 'utf8')).trim()).toBe(String(process.pid));
      expect(existsSync(join(spool, 'prefetcher.log'))).toBe(false);
      // Stopped (recovery ended): it removes its spool and says what it fetched.
      controller.abort();
      const summary = await running;
      expect(summary).toMatchObject({ ran: true });
      expect(summary.fetched).toBeGreaterThanOrEqual(3);
      expect(existsSync(spool)).toBe(false);
    },
    WAIT_TEST_MS,
  );

  it(
    "follows no link the spool's account planted: not at a temporary name, not in the lock's or the cursor's place",
    async () => {
      // A root restore's prefetcher writes in the server's spool, which that account can write:
      // whatever it plants must not make root write, give away, touch or hang on another file.
      const victim = join(work, 'victim');
      await writeFile(victim, 'precious\n', { mode: 0o600 });
      const untouched = async () => {
        expect(await readFile(victim, 'utf8')).toBe('precious\n');
        expect((await lstat(victim)).uid).toBe(process.getuid?.() ?? 0);
      };
      await mkdir(spool, { mode: 0o700 });
      const owner = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : null;
      // The cursor's temporary name: the cursor is written as a new file all the same.
      await symlink(victim, join(spool, `.cursor.${process.pid}.tmp`));
      await writePrefetchCursor(spool, segment(1), owner);
      await untouched();
      expect((await lstat(join(spool, 'cursor'))).isFile()).toBe(true);
      // wal-get's temporary name beside its destination: the segment lands, the victim stays.
      await symlink(victim, join(pgWal, `.RECOVERYXLOG.rookery-${process.pid}`));
      await engine.wal.get('oltp', segment(1), join(pgWal, 'RECOVERYXLOG'));
      expect(await served(segment(1))).toBe(true);
      await untouched();
      // A link in the lock's place is no lock: no owner is read through it, its target's times stay.
      const before = (await lstat(victim)).mtimeMs;
      await symlink(victim, join(spool, 'archiver.pid'));
      expect(await new WalSpool(spool).heartbeat(process.pid)).toBe(false);
      expect((await lstat(victim)).mtimeMs).toBe(before);
      // A FIFO where a small file is read is refused at once, not waited on.
      const fifo = join(spool, 'fifo');
      expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
      await expect(readRegularFile(fifo)).rejects.toThrow('is not a regular file');
      await expect(readRegularFile(join(spool, 'archiver.pid'))).rejects.toThrow();
      await rm(spool, { recursive: true, force: true });
      await rm(join(pgWal, 'RECOVERYXLOG'), { force: true });

      // The spool itself replaced by a link while a prefetcher runs: it writes nothing through the
      // link (its files go through the directory it opened) and stops (the spool it held is gone).
      const elsewhere = join(work, 'elsewhere');
      await mkdir(elsewhere);
      await mkdir(spool, { mode: 0o700 });
      // Swapped at the first check's clock reading: after the prefetcher looked at its spool and
      // before anything of that check or fetch is written.
      let swapped = false;
      const summary = await new WalPrefetcher(engine.wal).run({
        tier: 'oltp',
        spoolDirectory: spool,
        startAfter: segment(1),
        depth: 3,
        processMax: 2,
        idleMs: WAIT_MS,
        owner,
        markerClock: async () => {
          if (!swapped) {
            swapped = true;
            renameSync(spool, `${spool}.moved`);
            symlinkSync(elsewhere, spool);
          }
          return bootClock();
        },
      });
      expect(swapped).toBe(true);
      expect(summary.ran).toBe(true);
      expect(await readdir(elsewhere)).toEqual([]);
      await rm(spool, { force: true });
      await rm(`${spool}.moved`, { recursive: true, force: true });
    },
    WAIT_TEST_MS,
  );

  it(
    'prefetches only on the timeline recovery asks for',
    async () => {
      expect(walGet(segment(1)).status).toBe(0);
      await eventually(async () => (await spoolSegments()).length === 3, 'timeline 1 segments in the spool');
      // Recovery moves to timeline 2: the miss re-aims the prefetcher, timeline 1's segments go.
      expect(walGet(segment(10, 2)).status).toBe(0);
      expect(await served(segment(10, 2))).toBe(true);
      await eventually(async () => (await log()).includes(`stops fetching ahead at ${segment(12, 2)}: end`), 'the end of timeline 2');
      await eventually(async () => (await spoolSegments()).join() === segment(11, 2), 'only timeline 2 in the spool');
      expect(walGet(segment(11, 2), '/bin/false').status).toBe(0);
      expect(await served(segment(11, 2))).toBe(true);
    },
    WAIT_TEST_MS,
  );

  it(
    'keeps the spool for a timeline history file that is not archived, and drops it for one that is',
    async () => {
      expect(walGet(segment(1)).status).toBe(0);
      await eventually(async () => (await spoolSegments()).length === 3, 'segments in the spool');
      // Not one the prefetcher watches (it watched timelines 1 to 3 so far): node answers, and no
      // timeline changes, so what was fetched stays (a restore's first asks rely on that).
      expect(walGet('00000009.history').status).toBe(1);
      expect(await spoolSegments()).toHaveLength(3);
      // Archived: recovery may take that timeline, and what was fetched for this one goes.
      const prefetcher = Number.parseInt(await readFile(join(spool, 'archiver.pid'), 'utf8'), 10);
      await writeFile(join(source, '0000000A.history'), '1\t0/9000000\tno recovery target specified\n');
      await engine.wal.push('oltp', join(source, '0000000A.history'));
      expect(walGet('0000000A.history').status).toBe(0);
      expect(existsSync(spool)).toBe(false);
      // The prefetcher sees its spool gone and exits without recreating it.
      await eventually(async () => !running(prefetcher), 'the prefetcher to exit');
      expect(existsSync(spool)).toBe(false);
    },
    WAIT_TEST_MS,
  );

  it(
    'answers "not archived" from the prefetcher\'s markers without node; a segment archived after its marker was written is fetched',
    async () => {
      const marker = (name: string) => join(spool, `${name}.missing`);
      // A miss at 7: 8 is prefetched, 9 is the end; 7's own timeline history and the next one's are not archived.
      expect(walGet(segment(7)).status).toBe(0);
      await eventually(
        async () => [segment(9), '00000001.history', '00000002.history'].every((name) => existsSync(marker(name))),
        'markers for 9 and the history files',
      );
      expect(existsSync(marker(segment(7)))).toBe(false); // archived: never marked

      const end = await answeredFromMarker(segment(9));
      expect(end).toEqual({
        status: 1,
        stderr: `rookery: WAL file '${segment(9)}' of tier 'oltp' is not in the archive (checked by the prefetcher)\n`,
      });
      // The marker was used up; the prefetcher checks again at once and writes a new one.
      await eventually(async () => existsSync(marker(segment(9))), 'the marker of 9 checked again');
      for (const name of ['00000002.history', '00000001.history']) expect((await answeredFromMarker(name)).status).toBe(1);
      expect(existsSync(spool)).toBe(true); // a history file not archived changes no timeline: the spool stays
      // 3 is archived and has no marker: node answers it.
      expect(walGet(segment(3), noNode).status).toBe(42);

      // The primary archives 9 now: the followed end is checked again, its marker goes and 9 is
      // prefetched (how soon, MISSING_RECHECK_MS, is wal-prefetch.spec.ts's to check, on a fake clock).
      const bytes = walSegmentBytes(segment(9), { size: SEGMENT_BYTES });
      content.set(segment(9), bytes);
      await writeFile(join(source, segment(9)), bytes);
      await engine.wal.push('oltp', join(source, segment(9)));
      await eventually(async () => !existsSync(marker(segment(9))), 'the marker of 9 to go');
      await eventually(
        async () => (await log()).includes(`${segment(9)} is archived now: fetching ahead again`),
        'the prefetcher to resume',
      );
      await eventually(async () => (await spoolSegments()).includes(segment(9)), 'segment 9 in the spool');
      expect(walGet(segment(9), noNode).status).toBe(0);
      expect(await served(segment(9))).toBe(true);
      await eventually(async () => existsSync(marker(segment(10))), 'the new end (10) marked');
    },
    WAIT_TEST_MS,
  );
});
