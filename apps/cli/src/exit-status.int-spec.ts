import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Store } from '@rookery/core';
import { createStore } from '@rookery/storage';
import { CONTENT_DATABASE, TestCluster, acquireS3, freeLoopbackPort, s3StoreUrl, seedContent, startCluster } from '@rookery/testing';

/**
 * Exit status is the truth (issue 12, item 1): a command that ran to its end without doing
 * everything it was asked — a DR that left a tier unrestored, a replication with a failed copy, a
 * storage-class transition where an artifact did not move — exits non-zero with one line on
 * stderr saying what is missing, through the real `rookery` command (bin/rookery.js over the
 * compiled build) against a real filesystem repository and the S3-compatible server. Each failing
 * run has a succeeding twin, so a command that always failed would not pass either. The other
 * commands, which fail by throwing, get one failing run each.
 */
const root = resolve(__dirname, '..', '..', '..');
const bin = join(root, 'bin', 'rookery.js');

function rookery(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { cwd: root, env: process.env, encoding: 'utf8', timeout: 180_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The lines a run wrote on stderr (the AWS SDK's and Node's notices are not rookery's). */
function stderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.length > 0);
}

describe('exit status of runs that did not do everything they were asked', () => {
  let work: string;
  let source: TestCluster;
  let target: TestCluster;
  let repo: string;
  let contentUrl: string;
  const stores: Store[] = [];

  beforeAll(async () => {
    if (!existsSync(join(root, 'dist', 'apps', 'cli', 'src', 'main.js'))) throw new Error('the CLI is not built: run npm run build');
    work = await mkdtemp(join(tmpdir(), 'rookery-exit-'));
    await chmod(work, 0o711);
    [source, target] = await Promise.all([startCluster({ name: 'exit-source' }), startCluster({ name: 'exit-target' })]);
    await seedContent(source.url, { sizeMb: 1, seed: 12 });
    contentUrl = source.urlFor(CONTENT_DATABASE);
    repo = `file://${join(work, 'repo')}`;
    const backup = rookery(['backup', '--tier', 'content', '--repo', repo, '--pg-url', contentUrl]);
    expect([backup.status, backup.stderr]).toEqual([0, '']);
  }, 180_000);

  afterAll(async () => {
    for (const store of stores) await store.close();
    await Promise.all([source?.destroy(), target?.destroy()]);
    await rm(work, { recursive: true, force: true });
  });

  /** An S3 store URL nothing answers: a closed loopback port, one attempt, a short connect timeout. */
  async function unreachableS3(): Promise<string> {
    const port = await freeLoopbackPort();
    const query = new URLSearchParams({
      region: 'us-east-1',
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: 'true',
      connectTimeoutMs: '500',
      maxAttempts: '1',
    });
    return `s3://gone/rookery?${query.toString()}`;
  }

  it('dr: a tier left unrestored fails the run (and the rehearsal), though the other tier was restored', async () => {
    const dr = (tiers: string[], extra: string[]) =>
      rookery([
        'dr',
        '--mode',
        'partial',
        ...tiers.flatMap((tier) => ['--tier', tier]),
        '--region',
        'primary',
        '--repo',
        repo,
        '--target-url',
        target.url,
        ...extra,
      ]);
    // What was asked could all be done: exit 0.
    const whole = dr(['content'], ['--report', join(work, 'dr-whole.md')]);
    expect([whole.status, whole.stderr]).toEqual([0, '']);
    await target.query(`drop database ${CONTENT_DATABASE}`);

    const plan = dr(['content', 'olap'], ['--dry-run']);
    expect(stderrLines(plan.stderr)).toEqual([
      'rookery: disaster recovery plan (partial) from region primary: 1 of 2 tier(s) cannot be restored: olap (no whole backup of tier olap in this region)',
    ]);
    expect(plan.status).toBe(1);

    const run = dr(['content', 'olap'], ['--report', join(work, 'dr-report.md')]);
    expect(run.stdout).toMatch(/^ok {6}content: /m);
    expect(run.stdout).toMatch(/^FAILED {2}olap: no whole backup/m);
    expect(stderrLines(run.stderr)).toEqual([
      'rookery: disaster recovery (partial) from region primary: 1 of 2 tier(s) not restored: olap (no whole backup of tier olap in this region)',
    ]);
    expect(run.status).toBe(1);
  }, 120_000);

  it('dr: a tier whose restore fails (a damaged artifact) fails the run', async () => {
    // A copy of the repository with one byte of an artifact flipped.
    const damagedDir = join(work, 'repo-damaged');
    await cp(join(work, 'repo'), damagedDir, { recursive: true });
    const artifacts = (await readdir(damagedDir, { recursive: true })).filter((name) => /\/backups\/.*\.zst$/.test(`/${name}`));
    expect(artifacts.length).toBeGreaterThan(0);
    const handle = await open(join(damagedDir, artifacts[0]), 'r+');
    const byte = Buffer.alloc(1);
    const { size } = await handle.stat();
    await handle.read(byte, 0, 1, Math.floor(size / 2));
    byte[0] ^= 0xff;
    await handle.write(byte, 0, 1, Math.floor(size / 2));
    await handle.close();
    await target.query(`drop database if exists ${CONTENT_DATABASE}`);

    const run = rookery([
      'dr',
      '--mode',
      'partial',
      '--tier',
      'content',
      '--region',
      'primary',
      '--repo',
      `file://${damagedDir}`,
      '--target-url',
      target.url,
      '--report',
      join(work, 'dr-damaged.md'),
    ]);
    expect(run.stdout).toMatch(/^FAILED {2}content: /m);
    expect(stderrLines(run.stderr)).toEqual([
      expect.stringMatching(
        /^rookery: disaster recovery \(partial\) from region primary: 1 of 1 tier\(s\) not restored: content \((cannot decompress artifact|checksum mismatch for artifact) '[^']+'.*\)$/,
      ),
    ]);
    expect(run.status).toBe(1);
  }, 120_000);

  it('replicate: an unreachable region fails the run, counted in the summary, and a reachable one does not', async () => {
    const unreachable = await unreachableS3();
    const first = rookery(['replicate', '--tier', 'content', '--repo', repo, '--repo', unreachable]);
    expect(first.stdout).toContain('backups: 0 copied, 1 failed, 0 current;');
    expect(first.stdout).toContain('wal: not copied (the region failed, see above)');
    expect(stderrLines(first.stderr)).toEqual([
      expect.stringMatching(
        /^rookery: replication of tier content incomplete: region archive: 1 backup copy\(ies\) failed, .*bucket 'gone'/,
      ),
    ]);
    expect(first.status).toBe(1);

    const archive = `file://${join(work, 'archive')}`;
    const copied = rookery(['replicate', '--tier', 'content', '--repo', repo, '--repo', archive]);
    expect(copied.stdout).toContain('backups: 1 copied, 0 failed, 0 current;');
    expect([copied.status, copied.stderr]).toEqual([0, '']);

    // Copied before, unreachable now: nothing failed to copy, but nothing was checked either.
    const again = rookery(['replicate', '--tier', 'content', '--repo', repo, '--repo', unreachable]);
    expect(again.stdout).toContain(
      'backups: 0 copied, 0 failed, 0 current, 1 not checked (copied before; the region could not be reached);',
    );
    expect(stderrLines(again.stderr)).toEqual([
      expect.stringMatching(/^rookery: replication of tier content incomplete: region archive: .*bucket 'gone'/),
    ]);
    expect(again.status).toBe(1);

    // A region the policy names with no repository configured is a copy not made either.
    const lone = rookery(['replicate', '--tier', 'content', '--repo', repo]);
    expect(stderrLines(lone.stderr)).toEqual(['rookery: replication of tier content incomplete: region archive: no repository configured']);
    expect(lone.status).toBe(1);
  }, 120_000);

  it('catalog rebuild: a damaged manifest it could not index fails the run, naming it, and the intact repository does not', async () => {
    const rebuild = async (repoDir: string, name: string) => {
      const config = join(work, `catalog-${name}.yaml`);
      await writeFile(config, `catalog:\n  url: sqlite://${join(work, `catalog-${name}.sqlite`)}\n`);
      return rookery(['catalog', 'rebuild', '--tier', 'content', '--config', config, '--repo', `file://${repoDir}`]);
    };
    const intact = await rebuild(join(work, 'repo'), 'intact');
    expect(intact.stdout).toMatch(/content +1 backups indexed/);
    expect([intact.status, intact.stderr]).toEqual([0, '']);

    const damagedDir = join(work, 'repo-damaged-manifest');
    await cp(join(work, 'repo'), damagedDir, { recursive: true });
    const [manifest] = (await readdir(damagedDir, { recursive: true })).filter((name) => name.endsWith('manifest.json'));
    const path = join(damagedDir, manifest);
    await writeFile(path, (await readFile(path, 'utf8')).replace('"type": "full"', '"type": "snapshot"'));
    const run = await rebuild(damagedDir, 'damaged');
    expect(run.stdout).toMatch(/content +0 backups indexed, 0 stale records removed, 1 damaged manifests skipped/);
    expect(stderrLines(run.stderr)).toEqual([
      expect.stringMatching(
        /^rookery: catalog rebuild skipped 1 damaged manifest\(s\), first content\/backups\/.*\/manifest\.json: manifest .* does not match its checksum \(check the backup with rookery verify/,
      ),
    ]);
    expect(run.status).toBe(1);
  }, 120_000);

  /** The other commands fail by throwing: each exits 1 with one line saying what failed, on what. */
  it.each<[string, () => Promise<string[]>, RegExp]>([
    [
      'hold of a backup that does not exist',
      async () => ['hold', '--tier', 'content', '--backup', '20200101T000000Z-content', '--repo', repo],
      /^rookery: backup '20200101T000000Z-content' of tier 'content' not found/,
    ],
    [
      'drill of a tier with no backup',
      async () => ['drill', '--tier', 'olap', '--repo', repo],
      /^rookery: backup 'latest' of tier 'olap' not found/,
    ],
    [
      'check on a server that does not archive',
      async () => ['check', '--tier', 'oltp', '--pg-url', source.url, '--repo', repo],
      /^rookery: .*archive_mode/,
    ],
    [
      'expire against an unreachable store',
      async () => ['expire', '--tier', 'content', '--repo', await unreachableS3()],
      /^rookery: .* in bucket 'gone' failed: .*ECONNREFUSED/,
    ],
    [
      'info against an unreachable store',
      async () => ['info', '--repo', await unreachableS3()],
      /^rookery: .* in bucket 'gone' failed: .*ECONNREFUSED/,
    ],
    [
      'catalog rebuild with the catalog database down',
      async () => {
        const config = join(work, 'catalog-down.yaml');
        await writeFile(config, `catalog:\n  url: postgresql://rookery@127.0.0.1:${await freeLoopbackPort()}/rookery\n`);
        return ['catalog', 'rebuild', '--config', config, '--repo', repo];
      },
      /^rookery: cannot open the catalog database postgresql:\/\/rookery@127\.0\.0\.1:\d+\/rookery: connect ECONNREFUSED/,
    ],
  ])('%s exits 1 with one line on stderr', async (_name, args, line) => {
    const run = rookery(await args());
    expect(stderrLines(run.stderr)).toEqual([expect.stringMatching(line)]);
    expect(run.status).toBe(1);
  });

  it('transition: an artifact that did not move fails the run; the others moved', async () => {
    const server = await acquireS3('primary');
    const bucket = `exit-status-${randomBytes(3).toString('hex')}`;
    await server.createBucket(bucket);
    const s3 = s3StoreUrl(server, bucket, 'rookery');
    const config = join(work, 'transition.yaml');
    // Written in STANDARD, due for GLACIER after 30 days.
    await writeFile(
      config,
      'tiers:\n  content:\n    policy:\n      storageClass: STANDARD\n      transitions:\n        - afterDays: 30\n          storageClass: GLACIER\n',
    );
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const backup = rookery(['backup', '--tier', 'content', '--json', '--config', config, '--repo', s3, '--pg-url', contentUrl]);
      expect([backup.status, backup.stderr]).toEqual([0, '']);
      ids.push((JSON.parse(backup.stdout) as { id: string }).id);
    }
    // The first backup's artifacts vanish from the store behind its manifest's back.
    const store = createStore(s3);
    stores.push(store);
    const gone: string[] = [];
    // Matched as a path segment: two backups of one second are '<id>' and '<id>-2', and a substring
    // match took the second one's artifacts too (seen when both backups ran in the same second).
    for await (const object of store.list(''))
      if (object.key.includes(`/${ids[0]}/`) && !object.key.endsWith('.json')) gone.push(object.key);
    expect(gone.length).toBeGreaterThan(0);
    for (const key of gone) await store.remove(key);

    const later = new Date(Date.now() + 40 * 24 * 60 * 60 * 1000).toISOString();
    const args = ['transition', '--tier', 'content', '--config', config, '--repo', s3, '--now', later];
    const planned = rookery([...args, '--dry-run']);
    expect([planned.status, planned.stderr]).toEqual([0, '']);
    const run = rookery(args);
    expect(run.stdout).toMatch(new RegExp(`^${ids[1]} .* moved$`, 'm'));
    expect(run.stdout).toMatch(new RegExp(`^${ids[0]} .* failed: `, 'm'));
    expect(stderrLines(run.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^rookery: transition of tier content in s3://${bucket}/rookery .*: ${gone.length} of \\d+ artifact\\(s\\) did not move, first \\S*${ids[0]}\\S*: `,
        ),
      ),
    ]);
    expect(run.status).toBe(1);
  }, 120_000);
});
