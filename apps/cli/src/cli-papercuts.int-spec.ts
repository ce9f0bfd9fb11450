import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLedger } from '@rookery/catalog';
import {
  CONTENT_DATABASE,
  TestCluster,
  WORKSPACE_ROOT,
  acquireS3,
  assertCliBuilt,
  runRookery,
  runRookeryLogged,
  runRookeryWithClosedStdout,
  s3StoreUrl,
  seedContent,
  startCluster,
} from '@rookery/testing';

/**
 * The CLI papercuts of issue 12 item 6, through the real `rookery` command (bin/rookery.js over
 * the build) against real PostgreSQL, a filesystem repository and the S3-compatible server: output
 * cut short by its reader, a mistyped repository, what `info` shows of logical tiers, incremental
 * chains and one backup in detail, progress lines in logs, --log-level, the restore hints and
 * --version.
 */
describe('rookery CLI papercuts', () => {
  let work: string;
  let source: TestCluster;
  let repo: string;
  let contentUrl: string;
  let full: string;
  let incremental: string;
  let physical: string;

  const json = <T>(text: string): T => JSON.parse(text) as T;
  const backupId = (stdout: string) => json<{ id: string }>(stdout).id;

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-papercuts-'));
    await chmod(work, 0o711);
    source = await startCluster({ name: 'papercuts' });
    await seedContent(source.url, { sizeMb: 2, seed: 6 });
    contentUrl = source.urlFor(CONTENT_DATABASE);
    repo = `file://${join(work, 'repo')}`;
    const take = (args: string[]) => {
      const run = runRookery(['backup', '--repo', repo, '--json', ...args]);
      expect([run.status, run.stderr]).toEqual([0, '']);
      return backupId(run.stdout);
    };
    full = take(['--tier', 'content', '--pg-url', contentUrl]);
    await source.query(`update content_objects set subject = subject || ' (edited)' where id % 7 = 0`, [], CONTENT_DATABASE);
    incremental = take(['--tier', 'content', '--type', 'incremental', '--pg-url', contentUrl]);
    physical = take(['--tier', 'oltp', '--pg-url', source.url]);
  }, 300_000);

  afterAll(async () => {
    await source?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ends quietly with its own exit status when the reader of its output goes away (info | head)', async () => {
    for (const args of [['info', '--repo', repo], ['info', '--repo', repo, '--json'], ['--help']]) {
      const run = await runRookeryWithClosedStdout(args);
      expect({ args, ...run }).toEqual({ args, status: 0, stderr: '' });
    }
  });

  describe('a mistyped --repo', () => {
    it('fails with one line when the directory does not exist', () => {
      const missing = `file://${join(work, 'no-such-repo')}`;
      const run = runRookery(['info', '--repo', missing]);
      expect(run.stdout).toBe('');
      expect(run.stderr).toBe(
        `rookery: no rookery repository at ${missing}: the directory does not exist (hint: check --repo (or repositories in the config file); a new repository is created by its first backup)\n`,
      );
      expect(run.status).toBe(1);
      expect(runRookery(['info', '--repo', missing, '--backup', full]).status).toBe(1);
    });

    it('fails when the directory holds other files and none of rookery', async () => {
      const elsewhere = join(work, 'not-a-repo');
      await mkdir(join(elsewhere, 'docs'), { recursive: true });
      await writeFile(join(elsewhere, 'docs', 'notes.txt'), 'not a backup\n');
      const run = runRookery(['info', '--repo', `file://${elsewhere}`]);
      expect(run.stderr).toMatch(/^rookery: no rookery repository at file:\/\/.*not-a-repo: it holds other files and none of rookery's/);
      expect(run.status).toBe(1);
    });

    it("answers 'no backups' for a repository holding only a probe left by a killed process (rookery's own file)", async () => {
      const probed = join(work, 'probed-repo');
      await mkdir(probed, { recursive: true });
      await writeFile(join(probed, '.rookery-probe-0123456789ab'), 'rookery store probe\n');
      const run = runRookery(['info', '--repo', `file://${probed}`]);
      expect([run.status, run.stdout, run.stderr]).toEqual([0, 'no backups\n', '']);
    });

    it('fails for a bucket that does not exist and for a prefix holding no repository, on S3', async () => {
      const server = await acquireS3('primary');
      const bucket = `papercuts-${randomBytes(3).toString('hex')}`;
      const missingBucket = runRookery(['info', '--repo', s3StoreUrl(server, bucket, 'rookery')]);
      expect(missingBucket.stderr).toMatch(new RegExp(`^rookery: .*bucket '${bucket}' does not exist`));
      expect(missingBucket.status).toBe(1);
      await server.createBucket(bucket);
      const emptyPrefix = runRookery(['info', '--repo', s3StoreUrl(server, bucket, 'rookery')]);
      expect([emptyPrefix.status, emptyPrefix.stdout, emptyPrefix.stderr]).toEqual([0, 'no backups\n', '']);
    });

    it('still lists nothing, exit 0, in an existing empty repository', async () => {
      const empty = join(work, 'empty-repo');
      await mkdir(empty);
      const run = runRookery(['info', '--repo', `file://${empty}`]);
      expect([run.status, run.stdout, run.stderr]).toEqual([0, 'no backups\n', '']);
    });
  });

  it('shows no WAL section for the logical tiers, text and JSON', () => {
    const text = runRookery(['info', '--repo', repo, '--tier', 'content', '--pg-url', contentUrl]);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain(full);
    expect(text.stdout).not.toMatch(/WAL archive|rpo exposure/);
    const listed = runRookery(['info', '--repo', repo, '--tier', 'content', '--pg-url', contentUrl, '--json']);
    expect(json<{ wal: object }>(listed.stdout).wal).toEqual({});
    // The physical tier keeps its WAL section.
    const oltp = runRookery(['info', '--repo', repo, '--tier', 'oltp', '--pg-url', source.url]);
    expect(oltp.stdout).toContain('WAL archive (oltp)');
  });

  it('shows the incremental parent and chain in info and its JSON', () => {
    const listed = json<{ backups: { id: string; parent: string | null; chain: string[] }[] }>(
      runRookery(['info', '--repo', repo, '--json']).stdout,
    );
    const byId = new Map(listed.backups.map((backup) => [backup.id, backup]));
    expect(byId.get(full)).toMatchObject({ parent: null, chain: [full] });
    expect(byId.get(incremental)).toMatchObject({ parent: full, chain: [full, incremental] });
    const text = runRookery(['info', '--repo', repo, '--tier', 'content']).stdout;
    expect(text.split('\n')[0]).toMatch(/ parent$/);
    expect(text.split('\n').find((line) => line.startsWith(incremental))).toMatch(new RegExp(`${full}$`));
  });

  describe('info --backup ID', () => {
    it('details an incremental: artifacts with sizes and checksums, the chain, copies', () => {
      const manifest = json<{ artifacts: { name: string; sha256: string; storedBytes: number }[] }>(
        runRookery(['info', '--repo', repo, '--backup', incremental, '--json']).stdout,
      );
      expect(manifest).toMatchObject({
        id: incremental,
        tier: 'content',
        type: 'incremental',
        parent: full,
        chain: [
          { id: full, type: 'full', finishedAt: expect.any(String), storedBytes: expect.any(Number) },
          { id: incremental, type: 'incremental', finishedAt: expect.any(String), storedBytes: expect.any(Number) },
        ],
        // The content tier's default policy names a region 'archive' that --repo gives no repository.
        copies: [{ region: 'archive', store: null, status: 'missing', error: null }],
        hold: null,
      });
      expect(manifest.artifacts.length).toBeGreaterThan(0);
      const text = runRookery(['info', '--repo', repo, '--backup', incremental]);
      expect(text.status).toBe(0);
      // One link a line, full first, with what each stores and the chain's total.
      expect(text.stdout).toMatch(
        new RegExp(
          `^  chain           2 backups, .+ stored: what restoring this one reads\\n      ${full} \\(full, .+ stored\\)\\n    → ${incremental} \\(incremental, .+ stored\\)$`,
          'm',
        ),
      );
      expect(text.stdout).toContain('copies          archive: missing (no repository configured for the region)');
      for (const artifact of manifest.artifacts) expect(text.stdout).toMatch(new RegExp(`^  ${artifact.name} .* ${artifact.sha256}$`, 'm'));
    });

    it('shows the validations and drills the compliance ledger recorded for it', async () => {
      const catalog = `sqlite://${join(work, 'catalog.sqlite')}`;
      const env = { ...process.env, ROOKERY_CATALOG_URL: catalog };
      const before = json<{ evidence: object }>(runRookery(['info', '--repo', repo, '--backup', incremental, '--json'], { env }).stdout);
      expect(before.evidence).toEqual({ unavailable: `no catalog at ${join(work, 'catalog.sqlite')}` });
      const ledger = await EventLedger.open(catalog);
      const event = (eventId: string, type: string, data: Record<string, unknown>) => ({
        eventId,
        type,
        subject: 'content',
        source: 'test',
        time: '2026-12-01T00:00:00.000Z',
        data,
      });
      const checks = [
        { name: 'restore', ok: true },
        { name: 'row-counts', ok: false },
      ];
      await ledger.append([
        event('v1', 'dev.rookery.validation.failed', {
          backupId: incremental,
          tier: 'content',
          checks,
          validatedAt: '2026-12-01T00:00:00.000Z',
        }),
        event('d1', 'dev.rookery.drill.completed', {
          backupId: incremental,
          tier: 'content',
          ok: true,
          restoreMs: 900,
          rtoSeconds: 60,
          withinRto: true,
          checks: [],
          finishedAt: '2026-12-01T01:00:00.000Z',
        }),
        event('v2', 'dev.rookery.validation.passed', {
          backupId: full,
          tier: 'content',
          checks: [],
          validatedAt: '2026-12-01T00:00:00.000Z',
        }),
      ]);
      await ledger.close();
      const after = json<{ evidence: object }>(runRookery(['info', '--repo', repo, '--backup', incremental, '--json'], { env }).stdout);
      expect(after.evidence).toEqual({
        catalog,
        records: [
          { kind: 'validation', ok: false, at: '2026-12-01T00:00:00.000Z', detail: 'failed: row-counts' },
          { kind: 'drill', ok: true, at: '2026-12-01T01:00:00.000Z', detail: '0 check(s) passed' },
        ],
      });
      expect(runRookery(['info', '--repo', repo, '--backup', incremental], { env }).stdout).toContain(
        '  validation      FAILED at 2026-12-01T00:00:00.000Z: failed: row-counts\n',
      );
    });

    it('details a physical backup with its WAL range, and fails for an unknown id', () => {
      const detail = json<{ walRange: { start: string; stop: string }; startLsn: string; stopLsn: string }>(
        runRookery(['info', '--repo', repo, '--backup', physical, '--json']).stdout,
      );
      expect(detail.walRange).toEqual({ start: expect.stringMatching(/^[0-9A-F]{24}$/), stop: expect.stringMatching(/^[0-9A-F]{24}$/) });
      const text = runRookery(['info', '--repo', repo, '--backup', physical]).stdout;
      expect(text).toContain(`lsn ${detail.startLsn}..${detail.stopLsn}, needs segments ${detail.walRange.start}..${detail.walRange.stop}`);
      const latest = runRookery(['info', '--repo', repo, '--tier', 'content', '--backup', 'latest', '--json']);
      expect(json<{ id: string }>(latest.stdout).id).toBe(incremental);
      const unknown = runRookery(['info', '--repo', repo, '--backup', '20200101T000000Z-oltp']);
      expect([unknown.status, unknown.stderr]).toEqual([
        1,
        expect.stringMatching(/^rookery: backup '20200101T000000Z-oltp' of tier 'oltp' not found/),
      ]);
    });
  });

  it('takes --type incremental of an OLTP tier without a backup as a full, saying why, then chains an incremental to it and restores it', async () => {
    const own = `file://${join(work, 'repo-blocks')}`;
    const take = () => runRookery(['backup', '--repo', own, '--tier', 'oltp', '--type', 'incremental', '--pg-url', source.url, '--json']);
    const first = take();
    expect(first.status).toBe(0);
    expect(first.stderr).toMatch(/is taken as a full backup, not an incremental: the tier has no backup to take an incremental against/);
    const full = json<{ id: string; type: string }>(first.stdout);
    expect(full.type).toBe('full');
    await source.query('create table blocks_changed as select g from generate_series(1, 1000) g');
    const second = take();
    expect([second.status, second.stderr]).toEqual([0, '']);
    const incremental = json<{ id: string; type: string; parent: string }>(second.stdout);
    expect(incremental).toMatchObject({ type: 'incremental', parent: full.id });
    const dir = join(work, 'restored-blocks');
    const restore = runRookery(['restore', '--repo', own, '--tier', 'oltp', '--backup', incremental.id, '--to', dir]);
    expect([restore.status, restore.stderr]).toEqual([0, '']);
    expect((await readFile(join(dir, 'PG_VERSION'), 'utf8')).trim()).toBe('15');
  });

  it('logs progress lines before the result when stderr is not a terminal', () => {
    const log = join(work, 'backup.log');
    const run = runRookeryLogged(
      ['backup', '--tier', 'content', '--repo', repo, '--pg-url', contentUrl, '--progress-interval', '0', '--log-level', 'info'],
      log,
    );
    expect(run.status).toBe(0);
    const lines = run.output.split('\n');
    const result = lines.findIndex((line) => /^backup \S+ completed$/.test(line));
    const progress = lines.findIndex((line) => /^rookery: backup content: \S+ \S+ \d+(\.\d)? (B|KiB|MiB|GiB)/.test(line));
    expect({ progress: progress >= 0, before: progress < result }).toEqual({ progress: true, before: true });
    // No total is known for a dump: no percentage.
    expect(lines.filter((line) => line.startsWith('rookery: backup content: backup ')).some((line) => line.includes('%'))).toBe(false);
  });

  it('--log-level decides what is printed besides errors', async () => {
    const backup = (level: string) =>
      runRookeryLogged(
        ['backup', '--tier', 'content', '--repo', repo, '--pg-url', contentUrl, '--progress-interval', '0', '--log-level', level],
        join(work, `${level}.log`),
      );
    expect(backup('warn').output).not.toMatch(/^rookery: backup content:/m);
    const debug = runRookery(['--log-level', 'debug', 'info', '--repo', repo, '--tier', 'content']);
    expect(debug.stderr).toContain(`rookery: debug: settings from built-in defaults, repository ${repo}`);
    const bogus = runRookery(['info', '--repo', repo, '--log-level', 'loud']);
    expect(bogus.status).toBe(2);
    expect(bogus.stderr).toMatch(/option '--log-level <level>' argument 'loud' is invalid/);

    // A damaged manifest is a warning: printed at warn, not at error.
    const damaged = join(work, 'damaged-repo');
    await mkdir(join(damaged, 'content', 'backups', '2026-01-01', '20260101T000000Z-content'), { recursive: true });
    await writeFile(join(damaged, 'content', 'backups', '2026-01-01', '20260101T000000Z-content', 'manifest.json'), '{ not json');
    expect(runRookery(['info', '--repo', `file://${damaged}`]).stderr).toMatch(/^rookery: warning: /);
    expect(runRookery(['info', '--repo', `file://${damaged}`, '--log-level', 'error']).stderr).toBe('');
  });

  it('restore hints name the way that works and the tier', async () => {
    const logical = runRookery(['restore', '--tier', 'content', '--repo', repo, '--to', join(work, 'content-dir')]);
    expect(logical.stderr).toMatch(
      /^rookery: tier 'content' takes logical backups .* \(hint: use: rookery restore --tier content --target-url /,
    );
    expect(logical.status).toBe(2);
    const empty = join(work, 'no-oltp-repo');
    await mkdir(empty);
    const none = runRookery(['restore', '--tier', 'oltp', '--repo', `file://${empty}`, '--to', join(work, 'oltp-dir')]);
    expect(none.stderr).toContain('(hint: take a base backup with: rookery backup --tier oltp)');
    expect(none.stderr).not.toContain('<tier>');
    expect(none.status).toBe(1);
  });

  it('--version is the version in package.json', () => {
    const { version } = json<{ version: string }>(readFileSync(join(WORKSPACE_ROOT, 'package.json'), 'utf8'));
    const run = runRookery(['--version']);
    expect([run.status, run.stdout]).toEqual([0, `${version}\n`]);
  });
});
