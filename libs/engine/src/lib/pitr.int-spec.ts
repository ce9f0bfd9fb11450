import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildConfig } from '@rookery/config';
import { RecoveryTarget, RestoreTargetError, parseRecoveryTarget } from '@rookery/core';
import { PgSqlClient, lookupOsUser } from '@rookery/postgres';
import { TestCluster, acquireS3, freeLoopbackPort, startCluster, switchAndWaitArchived } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * Point-in-time recovery end to end: a real cluster archives through the real `rookery wal-push`
 * process into a filesystem repository and an S3 one, a writer commits rows one transaction at a
 * time, and restores to a time, an LSN, an xid and a restore point must bring back exactly the
 * rows committed at or before the target (sets compared, commit times from
 * track_commit_timestamp, the very timestamps recovery compares against). Then a restored server
 * promotes, writes and archives on timeline 2, and a later recovery follows it.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');
const sql = new PgSqlClient({ applicationName: 'rookery-pitr-test' });
const ROWS = 100;
const RESTORE_POINT = 'rookery-pitr-test';

interface Row {
  id: number;
  micros: bigint;
}

describe('point-in-time recovery', () => {
  let source: TestCluster;
  let work: string;
  let repoUrl: string;
  let repoDir: string;
  let s3Url: string;
  let fsEngine: RookeryEngine;
  let s3Engine: RookeryEngine;
  const started: { engine: RookeryEngine; dir: string }[] = [];
  /** Rows committed on timeline 1, with their commit times. */
  let rows: Row[];
  const marks: { time?: string; timeMicros?: bigint; lsn?: string; xid?: string } = {};

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-pitr-'));
    await chmod(work, 0o711);
    const postgresUser = lookupOsUser('postgres');
    // archive_command runs as the server's account: it writes the repository's wal/ folder.
    repoDir = join(work, 'repo');
    await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')]) await chown(dir, postgresUser.uid, postgresUser.gid);
    repoUrl = `file://${repoDir}`;

    const s3 = await acquireS3('primary');
    await s3.createBucket('pitr');
    s3Url = `s3://pitr/rookery?region=${s3.region}&endpoint=${encodeURIComponent(s3.endpoint)}&forcePathStyle=true`;
    // The test cluster's server gets no AWS_* from us: a wrapper hands the local S3Proxy's test
    // credentials to the S3 wal-push (and keeps the URL's % signs out of archive_command).
    const s3Push = join(work, 'wal-push-s3.sh');
    await writeFile(
      s3Push,
      [
        '#!/bin/sh',
        `export AWS_ACCESS_KEY_ID='${process.env['AWS_ACCESS_KEY_ID']}' AWS_SECRET_ACCESS_KEY='${process.env['AWS_SECRET_ACCESS_KEY']}' AWS_REGION='${s3.region}'`,
        `exec '${process.execPath}' '${bin}' wal-push "$1" --tier oltp --repo '${s3Url}'`,
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
    const archiveCommand = `${process.execPath} ${bin} wal-push %p --tier oltp --repo ${repoUrl} && ${s3Push} %p`;
    const settings = { archive_mode: 'on', archive_command: archiveCommand, track_commit_timestamp: 'on' };
    source = await startCluster({ name: 'pitr-source', settings });
    // Also in postgresql.auto.conf, so restored servers inherit the archiving (timeline test).
    for (const [name, value] of Object.entries(settings)) await source.query(`alter system set ${name} = '${value.replace(/'/g, "''")}'`);
    await source.query('create table pitr_rows (id int primary key, note text not null)');

    fsEngine = await engineFor(repoUrl);
    s3Engine = await engineFor(s3Url);
    await switchAndWaitArchived(source);
    await fsEngine.backup({ tier: 'oltp' });
    await s3Engine.backup({ tier: 'oltp' });

    // The writer: one transaction per row, in order; marks taken between two commits.
    for (let id = 1; id <= ROWS; id++) {
      const [inserted] = await source.query<{ xid: string }>(
        "insert into pitr_rows values ($1, repeat('x', 200)) returning pg_current_xact_id()::text as xid",
        [id],
      );
      if (id === 60) marks.lsn = (await source.query<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0].lsn;
      if (id === 70) marks.xid = inserted.xid;
      if (id === 80) await source.query('select pg_create_restore_point($1)', [RESTORE_POINT]);
      if (id % 25 === 0) await source.query('select pg_switch_wal()');
    }
    await switchAndWaitArchived(source);
    rows = (
      await source.query<{ id: number; micros: string }>(
        `select id, (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000000)::bigint::text as micros from pitr_rows order by id`,
      )
    ).map((row) => ({ id: row.id, micros: BigInt(row.micros) }));
    // The time target is row 40's exact commit time: inclusive, so row 40 is in and 41 is out.
    const [time] = await source.query<{ iso: string }>(
      `select to_char(pg_xact_commit_timestamp(xmin) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as iso from pitr_rows where id = 40`,
    );
    marks.time = time.iso;
    marks.timeMicros = rows.find((row) => row.id === 40)?.micros;
  }, 300_000);

  afterAll(async () => {
    for (const { engine, dir } of started) await engine.stopRestored(dir).catch(() => undefined);
    await fsEngine?.close();
    await s3Engine?.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  }, 120_000);

  async function engineFor(repository: string): Promise<RookeryEngine> {
    const config = buildConfig({ repositories: [repository], tiers: { oltp: { pgUrl: source.url } } }, 'test');
    return createEngine(config, { actor: 'test', selfCommand: [process.execPath, bin, '--repo', repository] });
  }

  async function restoreAndRead(engine: RookeryEngine, target: RecoveryTarget, name: string, archiveMode: 'keep' | 'off' = 'off') {
    const dir = join(work, name);
    const port = await freeLoopbackPort();
    const result = await engine.restore({ tier: 'oltp', backup: 'latest', to: dir, start: true, port, target, archiveMode });
    started.push({ engine, dir });
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const ids = (await sql.query<{ id: number }>(url, 'select id from pitr_rows order by id')).map((row) => row.id);
    return { result, ids, url, dir };
  }

  const idsUpTo = (last: number) => Array.from({ length: last }, (_, index) => index + 1);

  it('restores exactly the rows committed at or before a target time', async () => {
    const expected = rows.filter((row) => row.micros <= (marks.timeMicros as bigint)).map((row) => row.id);
    expect(expected).toEqual(idsUpTo(40));
    const { result, ids } = await restoreAndRead(fsEngine, parseRecoveryTarget({ targetTime: marks.time }), 'to-time');
    expect(ids).toEqual(expected);
    expect(result.recovery?.outcome).toMatchObject({
      timeline: 2,
      stoppedAt: expect.stringMatching(/^recovery stopping before commit of transaction \d+, time/),
    });
    expect(result.recovery?.outcome?.endLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  }, 180_000);

  it('restores to an LSN through the rookery CLI (real process, restore_command runs rookery wal-get)', async () => {
    const dir = join(work, 'to-lsn');
    const port = await freeLoopbackPort();
    const run = spawnSync(
      process.execPath,
      [
        bin,
        'restore',
        '--tier',
        'oltp',
        '--to',
        dir,
        '--target-lsn',
        marks.lsn as string,
        '--start',
        '--port',
        String(port),
        '--archive-mode',
        'off',
        '--json',
        '--repo',
        repoUrl,
      ],
      { cwd: root, encoding: 'utf8', timeout: 180_000 },
    );
    started.push({ engine: fsEngine, dir });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const output = JSON.parse(run.stdout) as { recovery: { kind: string; reached: { timeline: number; stoppedAt: string } } };
    expect(output.recovery.kind).toBe('lsn');
    expect(output.recovery.reached.stoppedAt).toContain(`recovery stopping after WAL location (LSN) "${marks.lsn}"`);
    const ids = (
      await sql.query<{ id: number }>(`postgres://postgres@127.0.0.1:${port}/postgres`, 'select id from pitr_rows order by id')
    ).map((row) => row.id);
    expect(ids).toEqual(idsUpTo(60));
  }, 180_000);

  it('restores to a transaction id', async () => {
    const { ids } = await restoreAndRead(fsEngine, parseRecoveryTarget({ targetXid: marks.xid }), 'to-xid');
    expect(ids).toEqual(idsUpTo(70));
  }, 180_000);

  it('restores to a named restore point from the S3 repository', async () => {
    const { result, ids } = await restoreAndRead(s3Engine, parseRecoveryTarget({ targetName: RESTORE_POINT }), 'to-name-s3');
    expect(ids).toEqual(idsUpTo(80));
    expect(result.recovery?.outcome?.stoppedAt).toContain(`recovery stopping at restore point "${RESTORE_POINT}"`);
  }, 180_000);

  it("answers the restored server's first restore_command calls from what the restore looked up before the start, without node", async () => {
    // Every node the restore and its server run goes through this wrapper, which records its arguments.
    const calls = join(work, 'node-calls.log');
    const node = join(work, 'node-recording.sh');
    await writeFile(calls, '', { mode: 0o666 });
    await chmod(calls, 0o666);
    await writeFile(node, `#!/bin/sh\necho "$*" >> '${calls}'\nexec '${process.execPath}' "$@"\n`, { mode: 0o755 });
    const config = buildConfig({ repositories: [repoUrl], tiers: { oltp: { pgUrl: source.url } } }, 'test');
    const engine = await createEngine(config, { actor: 'test', selfCommand: [node, bin, '--repo', repoUrl] });
    try {
      const [backup] = (await engine.list('oltp')).backups;
      const { ids, url, result } = await restoreAndRead(engine, parseRecoveryTarget({}), 'latest-prefetched');
      expect(ids).toEqual(idsUpTo(ROWS));
      // Every phase is reported (the figures themselves are tools/bench/pitr.mjs's).
      const { planMs, extractMs, syncMs, startMs } = result.timings;
      for (const ms of [planMs, extractMs, syncMs, startMs]) expect(ms).toBeGreaterThanOrEqual(0);
      // The restore synced the file system: the server's start-up pass is one syncfs, not an fsync per file.
      expect(await sql.query(url, 'show recovery_init_sync_method')).toEqual([{ recovery_init_sync_method: 'syncfs' }]);
      const lines = (await readFile(calls, 'utf8')).split('\n').filter(Boolean);
      // The backup's first segment, fetched by the restore before the start, is served from the
      // spool without node, whatever answered the asks before it: a "not archived" marker
      // answers only while its check is fresh, and when one has aged (a loaded machine), node
      // answers that history file and keeps the spool. How many of the start's asks started node
      // is a figure of tools/bench/pitr.mjs, not a check.
      const asked = lines.filter((line) => line.includes(' wal-get ')).map((line) => line.split(' wal-get ')[1].split(' ')[0]);
      expect(asked).not.toContain(backup.walRange?.start);
    } finally {
      await engine.close();
    }
  }, 180_000);

  it('recovers the same rows with the prefetcher in the restore process (default) and in a process of its own (restore.prefetchInProcess off)', async () => {
    const plainConfig = buildConfig(
      { repositories: [repoUrl], tiers: { oltp: { pgUrl: source.url } }, restore: { prefetchInProcess: false } },
      'test',
    );
    const plain = await createEngine(plainConfig, { actor: 'test', selfCommand: [process.execPath, bin, '--repo', repoUrl] });
    try {
      const inProcess = await restoreAndRead(fsEngine, parseRecoveryTarget({ targetXid: marks.xid }), 'xid-prefetch-in-process');
      const separate = await restoreAndRead(plain, parseRecoveryTarget({ targetXid: marks.xid }), 'xid-prefetch-process');
      expect(inProcess.ids).toEqual(idsUpTo(70));
      expect(separate.ids).toEqual(inProcess.ids);
      // The restore ran the prefetcher (it says what it fetched); the plain way left it to the server's misses.
      expect(inProcess.result.prefetch).toEqual({ fetched: expect.any(Number), stoppedAt: expect.anything() });
      expect(separate.result.prefetch).toBeUndefined();
      // Stopped with recovery: its spool is gone.
      expect(existsSync(join(inProcess.dir, 'pg_wal', 'rookery-prefetch'))).toBe(false);
    } finally {
      await plain.close();
    }
  }, 360_000);

  it('refuses targets outside the window, and malformed ones, before writing anything', async () => {
    const [backup] = (await fsEngine.list('oltp')).backups;
    const before = new Date(new Date(backup.finishedAt).getTime() - 1000).toISOString();
    const after = new Date(Date.now() + 3_600_000).toISOString();
    for (const [flags, name] of [
      [{ targetTime: before }, 'too-early'],
      [{ targetTime: after }, 'too-late'],
      [{ targetLsn: '0/100' }, 'lsn-too-early'],
      [{ targetLsn: 'FF/0' }, 'lsn-too-late'],
      [{ targetName: 'no-such-point' }, 'no-such-point'],
    ] as const) {
      const dir = join(work, name);
      const attempt = fsEngine.restore({ tier: 'oltp', backup: 'latest', to: dir, target: parseRecoveryTarget(flags) });
      await expect(attempt).rejects.toThrow(RestoreTargetError);
      await expect(attempt).rejects.toThrow(
        /recoverable window \(newest timeline 1\): LSN [0-9A-F]+\/[0-9A-F]+ to [0-9A-F]+\/[0-9A-F]+, time /,
      );
      expect(existsSync(dir)).toBe(false);
    }
    const dir = join(work, 'malformed');
    const run = spawnSync(
      process.execPath,
      [bin, 'restore', '--tier', 'oltp', '--to', dir, '--target-time', '2026-11-26 02:00:00', '--repo', repoUrl],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^rookery: --target-time '2026-11-26 02:00:00' is not an ISO 8601 time with a UTC offset or Z/);
    expect(existsSync(dir)).toBe(false);
  }, 120_000);

  it('follows a promotion: restore, promote, write and archive on timeline 2, then recover to an LSN on it', async () => {
    // The restored server keeps archiving (archive_mode kept): its new timeline goes to the repository.
    const first = await restoreAndRead(fsEngine, parseRecoveryTarget({ targetTime: marks.time }), 'timeline-2', 'keep');
    expect(first.ids).toEqual(idsUpTo(40));
    let lsnOnTimeline2 = '';
    for (let id = 1001; id <= 1020; id++) {
      await sql.query(first.url, "insert into pitr_rows values ($1, 'timeline 2')", [id]);
      if (id === 1010)
        lsnOnTimeline2 = (await sql.query<{ lsn: string }>(first.url, 'select pg_current_wal_insert_lsn()::text as lsn'))[0].lsn;
    }
    await switchAndWaitArchived({ query: (text) => sql.query(first.url, text) });
    const window = await fsEngine.recoveryWindow('oltp');
    expect(window.newestTimeline).toBe(2);

    const second = await restoreAndRead(fsEngine, parseRecoveryTarget({ targetLsn: lsnOnTimeline2 }), 'timeline-2-pitr');
    expect(second.ids).toEqual([...idsUpTo(40), ...Array.from({ length: 10 }, (_, index) => 1001 + index)]);
    // The second restore followed timeline 2 and was promoted onto a third.
    expect(second.result.recovery?.outcome?.timeline).toBe(3);
  }, 240_000);

  it('verify --wal reports a continuous archive, and a gap once a segment is lost', async () => {
    const report = await fsEngine.walContinuity('oltp');
    expect(report.conflicts).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.backups[0].timelines).toEqual([1, 2]);

    const timeline1 = join(repoDir, 'oltp', 'wal', '00000001');
    const [segment] = (await readdir(timeline1))
      .filter((name) => /^[0-9A-F]{24}-/.test(name))
      .sort()
      .slice(2, 3);
    await rm(join(timeline1, segment));
    const run = spawnSync(process.execPath, [bin, 'verify', '--tier', 'oltp', '--wal', '--repo', repoUrl], { cwd: root, encoding: 'utf8' });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toContain(`missing ${segment.slice(0, 24)}`);
    expect(run.stderr).toContain('cuts short the recovery window');
  }, 120_000);
});
