import { spawnSync } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  MISSING_FRESH_MS,
  MISSING_RECHECK_MS,
  MissingMarkers,
  PrefetcherLaunch,
  WalPrefetcher,
  bootClock,
  clearPrefetchSpool,
  handOverIdleSpool,
  requestPrefetch,
} from './wal-prefetch';
import type { WalTransfer } from './wal.transfer';

/**
 * "Not archived" markers: what the prefetcher writes (MissingMarkers) and how bin/rookery-wal-get
 * reads them (the real script; node is replaced by a stub that says it ran, so the shell's own
 * answers are told apart from node's).
 */
const script = resolve(__dirname, '..', '..', '..', '..', 'bin', 'rookery-wal-get');
const SEGMENT = '000000010000000000000004';
const NODE_RAN = 42;

describe('missing markers', () => {
  let work: string;
  let spool: string;
  let stubNode: string;

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-markers-'));
    spool = join(work, 'pg_wal', 'rookery-prefetch');
    await mkdir(spool, { recursive: true, mode: 0o700 });
    stubNode = join(work, 'node');
    await writeFile(stubNode, `#!/bin/sh\necho node ran >&2\nexit ${NODE_RAN}\n`, { mode: 0o755 });
  });

  afterEach(() => rm(work, { recursive: true, force: true }));

  function walGet(name: string, prefetch = '3') {
    const run = spawnSync(
      script,
      ['--config', 'rookery.yaml', 'wal-get', name, 'pg_wal/RECOVERYXLOG', '--tier', 'oltp', '--prefetch', prefetch],
      {
        cwd: work,
        env: { ...process.env, ROOKERY_NODE: stubNode },
        encoding: 'utf8',
      },
    );
    return { status: run.status, stderr: run.stderr };
  }

  /** A marker whose check started `ageMs` ago on this boot (negative: in the future). */
  async function marker(name: string, ageMs: number, boot?: string): Promise<string> {
    const [bootId, centiseconds] = ((await bootClock()) as string).split(' ');
    const path = join(spool, `${name}.missing`);
    await writeFile(path, `${boot ?? bootId} ${Number(centiseconds) - Math.round(ageMs / 10)}\n`, { mode: 0o600 });
    return path;
  }

  const exists = (path: string) =>
    stat(path).then(
      () => true,
      () => false,
    );

  describe('bin/rookery-wal-get', () => {
    it.each([
      ['a segment', SEGMENT],
      ['a timeline history file', '00000002.history'],
    ])('answers 1 without node from a fresh marker for %s, marking it used; a used marker answers while fresh', async (_label, name) => {
      const path = await marker(name, 0);
      const answer = walGet(name);
      expect(answer.status).toBe(1);
      expect(answer.stderr).toBe(`rookery: WAL file '${name}' of tier 'oltp' is not in the archive (checked by the prefetcher)\n`);
      expect(await exists(path)).toBe(false);
      expect(await exists(`${path}.used`)).toBe(true); // tells the prefetcher to check again
      // Recovery asks again within milliseconds: the same fresh check answers.
      expect(walGet(name).status).toBe(1);
      // A used marker past the bound answers nothing.
      await rename(await marker(name, MISSING_FRESH_MS + 600), `${path}.used`);
      expect(walGet(name).status).toBe(NODE_RAN);
    });

    it(`trusts a marker up to ${MISSING_FRESH_MS} ms old, not older, not from the future or another boot`, async () => {
      const fresh = await marker(SEGMENT, MISSING_FRESH_MS - 600);
      expect(walGet(SEGMENT).status).toBe(1);
      await rm(`${fresh}.used`);
      const stale = await marker(SEGMENT, MISSING_FRESH_MS + 600);
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
      expect(await exists(stale)).toBe(true); // not used: node answered
      await marker(SEGMENT, -1_000);
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
      await marker(SEGMENT, 0, '00000000-0000-0000-0000-000000000000');
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
    });

    it.each([
      ['empty', ''],
      ['no time', 'x\n'],
      ['a time that is not a number', 'BOOT 12a4\n'],
      ['a leading zero', 'BOOT 0100\n'],
      ['a time too long to be one', 'BOOT 1234567890123456789\n'],
    ])('ignores a marker with %s', async (_label, content) => {
      const [bootId] = ((await bootClock()) as string).split(' ');
      await writeFile(join(spool, `${SEGMENT}.missing`), content.replace('BOOT', bootId), { mode: 0o600 });
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
    });

    it('ignores a marker that is a symlink, is not a file, or is another account’s, and a spool that is a symlink', async () => {
      const elsewhere = await marker('000000010000000000000009', 0);
      await symlink(elsewhere, join(spool, `${SEGMENT}.missing`));
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
      expect(await exists(elsewhere)).toBe(true);
      await rm(join(spool, `${SEGMENT}.missing`));

      await mkdir(join(spool, `${SEGMENT}.missing`));
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
      await rm(join(spool, `${SEGMENT}.missing`), { recursive: true });

      if (process.getuid?.() === 0) {
        const theirs = await marker(SEGMENT, 0);
        await chown(theirs, 65534, 65534);
        expect(walGet(SEGMENT).status).toBe(NODE_RAN);
        await rm(theirs);
      }

      const real = join(work, 'real-spool');
      await mkdir(real, { mode: 0o700 });
      await writeFile(join(real, `${SEGMENT}.missing`), await readFile(await marker(SEGMENT, 0)));
      await rm(spool, { recursive: true });
      await symlink(real, spool);
      expect(walGet(SEGMENT).status).toBe(NODE_RAN);
    });

    it('answers nothing from a marker it cannot remove (the prefetcher just found the file), without --prefetch, or for other names', async () => {
      await marker(SEGMENT, 0);
      await chmod(spool, 0o500); // the rename fails as it would on a marker removed under it
      if (process.getuid?.() !== 0) expect(walGet(SEGMENT).status).toBe(NODE_RAN); // root removes regardless
      await chmod(spool, 0o700);
      expect(walGet(SEGMENT, '0').status).toBe(NODE_RAN);
      await marker(`${SEGMENT}.partial`, 0);
      expect(walGet(`${SEGMENT}.partial`).status).toBe(NODE_RAN);
      await marker('00000001.history.partial', 0);
      expect(walGet('00000001.history.partial').status).toBe(NODE_RAN);
    });

    it('serves a prefetched segment before any marker', async () => {
      await marker(SEGMENT, 0);
      await writeFile(join(spool, SEGMENT), 'segment bytes', { mode: 0o600 });
      expect(walGet(SEGMENT).status).toBe(0);
      expect(await readFile(join(work, 'pg_wal', 'RECOVERYXLOG'), 'utf8')).toBe('segment bytes');
    });
  });

  describe('MissingMarkers', () => {
    const clock = async () => 'boot 12345';
    const markerPath = (name: string) => join(spool, `${name}.missing`);
    const entries = async () => new Set(await readdir(spool));

    async function missing(markers: MissingMarkers, name: string, options: { write: boolean; follow?: boolean } = { write: true }) {
      const { ticket, stamp } = await markers.begin(name);
      await markers.missing(name, ticket, stamp, options);
    }

    it('writes a marker atomically, this account’s, mode 0600, with the clock read before the check', async () => {
      await missing(new MissingMarkers(spool, clock), SEGMENT);
      expect(await readFile(markerPath(SEGMENT), 'utf8')).toBe('boot 12345\n');
      const info = await stat(markerPath(SEGMENT));
      expect(info.mode & 0o777).toBe(0o600);
      expect(info.uid).toBe(process.getuid?.());
      expect(await readdir(spool)).toEqual([`${SEGMENT}.missing`]); // no temporary left
    });

    it('removes the marker when a check finds the file or fails; a confirming check writes none', async () => {
      const markers = new MissingMarkers(spool, clock);
      await missing(markers, SEGMENT);
      let check = await markers.begin(SEGMENT);
      await markers.failed(SEGMENT, check.ticket);
      expect(await exists(markerPath(SEGMENT))).toBe(false);
      await missing(markers, SEGMENT, { write: false });
      expect(await exists(markerPath(SEGMENT))).toBe(false);
      await missing(markers, SEGMENT);
      check = await markers.begin(SEGMENT);
      await markers.found(SEGMENT, check.ticket);
      expect(await exists(markerPath(SEGMENT))).toBe(false);
      expect(await markers.due(await entries(), Date.now() + MISSING_RECHECK_MS)).toEqual({ mark: [], confirm: [] }); // no longer watched
    });

    it('lands only the newest check of a name: an older "missing" never overwrites a newer "archived"', async () => {
      const markers = new MissingMarkers(spool, clock);
      const older = await markers.begin(SEGMENT);
      const newer = await markers.begin(SEGMENT);
      await markers.found(SEGMENT, newer.ticket);
      await markers.missing(SEGMENT, older.ticket, older.stamp, { write: true });
      expect(await exists(markerPath(SEGMENT))).toBe(false);
    });

    it('writes no marker without a clock', async () => {
      await missing(new MissingMarkers(spool, async () => null), SEGMENT);
      expect(await readdir(spool)).toEqual([]);
    });

    it('checks a used marker again at once; a fresh one or the followed end after the recheck interval; never while a check runs; never on a schedule once stale', async () => {
      const markers = new MissingMarkers(spool, clock);
      const history = '00000002.history';
      const end = '000000010000000000000005';
      await missing(markers, SEGMENT);
      await missing(markers, history);
      await missing(markers, end, { write: true, follow: true });
      const writtenAt = Date.now();
      expect(await markers.due(await entries(), writtenAt + 1)).toEqual({ mark: [], confirm: [] });
      await rename(markerPath(history), `${markerPath(history)}.used`); // what bin/rookery-wal-get does
      expect(await markers.due(await entries(), writtenAt + 1)).toEqual({ mark: [history], confirm: [] });
      // The used marker answers until the new check lands, which replaces it.
      expect(await exists(`${markerPath(history)}.used`)).toBe(true);
      await missing(markers, history);
      expect(await exists(`${markerPath(history)}.used`)).toBe(false);
      expect(await exists(markerPath(history))).toBe(true);
      // A marker removed by someone else (rm -r of the data directory) is not a use: nothing is rewritten.
      await rm(markerPath(SEGMENT));
      expect(await markers.due(await entries(), writtenAt + 1)).toEqual({ mark: [], confirm: [] });
      await markers.begin(history);
      expect(await markers.due(await entries(), writtenAt + MISSING_RECHECK_MS)).toEqual({ mark: [], confirm: [SEGMENT, end] });
      // Stale: only the followed end is checked again.
      expect(await markers.due(await entries(), writtenAt + MISSING_FRESH_MS + 1)).toEqual({ mark: [], confirm: [end] });
      markers.unfollow();
      expect(await markers.due(await entries(), writtenAt + MISSING_FRESH_MS + 1)).toEqual({ mark: [], confirm: [] });
    });

    it('drops a name whose marker is stale (not followed), removing the marker', async () => {
      const markers = new MissingMarkers(spool, clock);
      await missing(markers, SEGMENT);
      expect(await markers.due(await entries(), Date.now() + MISSING_FRESH_MS + 1)).toEqual({ mark: [], confirm: [] });
      expect(await readdir(spool)).toEqual([]);
    });

    it('a marker written by MissingMarkers with the boot clock is answered by bin/rookery-wal-get', async () => {
      const markers = new MissingMarkers(spool);
      await missing(markers, '00000003.history');
      expect(walGet('00000003.history').status).toBe(1);
      expect((await markers.due(await entries(), Date.now())).mark).toEqual(['00000003.history']);
    });
  });
});

describe('clearPrefetchSpool', () => {
  it('removes the spool, leaving nothing beside it, and accepts one that is already gone', async () => {
    const work = await mkdtemp(join(tmpdir(), 'rookery-clear-'));
    try {
      const spool = join(work, 'rookery-prefetch');
      await mkdir(spool);
      await writeFile(join(spool, `${SEGMENT}.missing`), 'x');
      await clearPrefetchSpool(spool);
      expect(await readdir(work)).toEqual([]);
      await clearPrefetchSpool(spool);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

/**
 * Who runs the prefetcher, decided without timing: a run of misses starts one (its lock is taken
 * for it at once, before it has loaded), and a miss that comes in while an idle one leaves is
 * either served by it (it goes on) or finds none and starts one.
 */
describe('starting and leaving', () => {
  let work: string;
  let spool: string;
  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-prefetcher-'));
    spool = join(work, 'pg_wal', 'rookery-prefetch');
    await mkdir(join(work, 'pg_wal'));
  });
  afterEach(() => rm(work, { recursive: true, force: true }));

  const launch = () => ({ tier: 'oltp', spoolDirectory: spool, depth: 3, globalArgs: [] });
  const cursorWrite = async () => {
    const info = await stat(join(spool, 'cursor'));
    return `${info.dev}:${info.ino}`;
  };

  it('starts one prefetcher for a run of misses, and a new one once that one is gone', async () => {
    const launched: PrefetcherLaunch[] = [];
    // This test process stands in for a prefetcher still loading: alive, not yet running.
    const loading = (request: PrefetcherLaunch) => (launched.push(request), process.pid);
    await requestPrefetch(launch(), '000000010000000000000004', loading);
    await requestPrefetch(launch(), '000000010000000000000005', loading);
    expect(launched).toHaveLength(1);
    expect(await readFile(join(spool, 'archiver.pid'), 'utf8')).toBe(`${process.pid}\n`);
    expect(await readFile(join(spool, 'cursor'), 'utf8')).toBe('000000010000000000000005\n');

    // It died: the next miss starts another.
    const dead = spawnSync('true').pid as number;
    await rm(join(spool, 'archiver.pid'));
    await requestPrefetch(launch(), '000000010000000000000006', (request) => (launched.push(request), dead));
    await requestPrefetch(launch(), '000000010000000000000007', (request) => (launched.push(request), process.pid));
    expect(launched).toHaveLength(3);
  });

  it('an idle prefetcher leaving gives its spool up, unless a miss moved the cursor since it last looked', async () => {
    await requestPrefetch(launch(), '000000010000000000000004', () => process.pid);
    const seen = await cursorWrite();
    expect(await handOverIdleSpool(spool, seen)).toBe('gave-up');
    expect(await readdir(join(work, 'pg_wal'))).toEqual([]);

    await requestPrefetch(launch(), '000000010000000000000004', () => process.pid);
    const before = await cursorWrite();
    // The same name asked again (recovery retries a segment): still a miss to serve.
    await requestPrefetch(launch(), '000000010000000000000004', () => undefined);
    expect(await cursorWrite()).not.toBe(before);
    expect(await handOverIdleSpool(spool, before)).toBe('resumed');
    expect((await readdir(spool)).sort()).toEqual(['archiver.pid', 'cursor']);
    expect(await readdir(join(work, 'pg_wal'))).toEqual(['rookery-prefetch']);

    await clearPrefetchSpool(spool);
    expect(await handOverIdleSpool(spool, before)).toBe('removed');
  });

  it('a prefetcher whose spool was removed before it got going never recreates it', async () => {
    const wal = {
      get: async () => Promise.reject(new Error('not called')),
      archive: { versions: async () => [] },
    } as unknown as WalTransfer;
    const summary = await new WalPrefetcher(wal).run({ tier: 'oltp', spoolDirectory: spool, depth: 3, processMax: 1, idleMs: 0 });
    expect(summary.ran).toBe(false);
    expect(await readdir(join(work, 'pg_wal'))).toEqual([]);
  });

  it('an idle prefetcher leaves and removes its spool', async () => {
    const notArchived = Object.assign(new Error('not archived'), { code: 'WAL_NOT_FOUND' });
    const wal = { get: async () => Promise.reject(notArchived), archive: { versions: async () => [] } } as unknown as WalTransfer;
    await requestPrefetch(launch(), '000000010000000000000004', () => undefined);
    const summary = await new WalPrefetcher(wal).run({
      tier: 'oltp',
      spoolDirectory: spool,
      depth: 3,
      processMax: 1,
      idleMs: 0,
      markerClock: async () => null,
    });
    expect(summary).toEqual({ ran: true, fetched: 0, stoppedAt: 'end' });
    expect(await readdir(join(work, 'pg_wal'))).toEqual([]);
  });
});
