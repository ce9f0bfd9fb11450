import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTENT_DATABASE, TestCluster, assertCliBuilt, runRookery, seedContent, startCluster } from '@rookery/testing';

/**
 * Input that is not what it claims is refused (issue 13, items 4 and 5), against real PostgreSQL
 * and a file:// repository: wal-push of junk or of another cluster's WAL, a selective logical
 * restore that matches nothing, expire --now in the future, a repository URL without a directory.
 */
describe('input that is not what it claims', () => {
  let work: string;
  let repo: string;
  let source: TestCluster;
  let other: TestCluster;

  /** Every object under the tier's WAL archive (the system record included). */
  const walObjects = async (): Promise<string[]> => repositoryFiles(join('oltp', 'wal'));

  /** Every file under `under` in the repository, relative to it. */
  const repositoryFiles = async (under: string): Promise<string[]> => {
    const found: string[] = [];
    const walk = async (directory: string, prefix: string): Promise<void> => {
      for (const entry of await readdir(directory, { withFileTypes: true }).catch(() => [])) {
        if (entry.isDirectory()) await walk(join(directory, entry.name), `${prefix}${entry.name}/`);
        else found.push(`${prefix}${entry.name}`);
      }
    };
    await walk(join(work, 'repo', under), '');
    return found.sort();
  };

  /** Closes the current segment; returns its path in pg_wal. */
  const switchSegment = async (cluster: TestCluster): Promise<string> => {
    await cluster.query('create table if not exists wal_probe (n int); insert into wal_probe select generate_series(1, 100)');
    const [row] = await cluster.query<{ name: string }>('select pg_walfile_name(pg_switch_wal()) as name');
    return join(cluster.dataDir, 'pg_wal', row.name);
  };

  const systemOf = async (cluster: TestCluster): Promise<string> =>
    (await cluster.query<{ id: string }>('select system_identifier::text as id from pg_control_system()'))[0].id;

  const walPush = (path: string) => runRookery(['wal-push', path, '--tier', 'oltp', '--repo', repo]);

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-inputs-'));
    await chmod(work, 0o711);
    repo = `file://${join(work, 'repo')}`;
    source = await startCluster({ name: 'inputs' });
    other = await startCluster({ name: 'inputs-other' });
  }, 300_000);

  afterAll(async () => {
    await source?.destroy();
    await other?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("archives the cluster's segments and refuses junk and another cluster's segment, storing nothing", async () => {
    const first = await switchSegment(source);
    expect(walPush(first).status).toBe(0);
    const second = await switchSegment(source);
    expect(walPush(second).status).toBe(0);
    const [system] = await source.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    expect(JSON.parse(await readFile(join(work, 'repo', 'oltp', 'wal', 'system.json'), 'utf8'))).toMatchObject({
      systemIdentifier: system.id,
      segmentSize: 16 * 1024 * 1024,
    });
    const before = await walObjects();

    // An 8-byte file named like the next segment.
    const junk = join(
      work,
      second.slice(-24).replace(/.$/, (digit) => (parseInt(digit, 16) + 1).toString(16).toUpperCase()),
    );
    await writeFile(junk, 'junkjunk');
    const junkRun = walPush(junk);
    expect([junkRun.status, junkRun.stderr]).toEqual([
      1,
      expect.stringMatching(/is 8 bytes, too short for a WAL page header; nothing was stored/),
    ]);

    // A real segment of another cluster, under a name the repository does not hold yet.
    let foreign = await switchSegment(other);
    while ((await walObjects()).some((key) => key.includes(foreign.slice(-24)))) foreign = await switchSegment(other);
    const foreignRun = walPush(foreign);
    expect([foreignRun.status, foreignRun.stderr]).toEqual([
      1,
      expect.stringMatching(/comes from database system \d+, but this repository archives system \d+; nothing was stored/),
    ]);

    expect(await walObjects()).toEqual(before);
    // The cluster's own next segment still archives.
    expect(walPush(await switchSegment(source)).status).toBe(0);
  }, 300_000);

  it("the tier's first physical backup records its system; a backup of another cluster is refused before anything is written", async () => {
    const system = { id: await systemOf(source) };
    const first = runRookery(['backup', '--tier', 'queue', '--repo', repo, '--pg-url', source.url, '--json']);
    expect([first.status, first.stderr]).toEqual([0, '']);
    const manifest = JSON.parse(first.stdout) as { walRange: { start: string } };
    expect(JSON.parse(await readFile(join(work, 'repo', 'queue', 'wal', 'system.json'), 'utf8'))).toMatchObject({
      systemIdentifier: system.id,
      segmentSize: 16 * 1024 * 1024,
      firstSegment: manifest.walRange.start,
    });

    // Recorded by the first backup (queue) or by the first wal-push (oltp): either way, the other cluster is not this tier's.
    for (const tier of ['queue', 'oltp']) {
      const before = await repositoryFiles(tier);
      const refused = runRookery(['backup', '--tier', tier, '--repo', repo, '--pg-url', other.url]);
      expect([refused.status, refused.stderr]).toEqual([
        2,
        expect.stringContaining(
          `tiers.${tier}.pgUrl points at database system ${await systemOf(other)}, but tier '${tier}' archives system ${system.id}; nothing was backed up`,
        ),
      ]);
      expect(await repositoryFiles(tier)).toEqual(before);
    }
  }, 300_000);

  it('expire --now later than the clock is refused without --dry-run, deleting nothing', async () => {
    const before = await walObjects();
    const refused = runRookery(['expire', '--tier', 'oltp', '--repo', repo, '--now', '2999-01-01T00:00:00Z']);
    expect([refused.status, refused.stderr]).toEqual([
      2,
      expect.stringMatching(/^rookery: --now 2999-01-01T00:00:00.000Z is later than the clock .* accepted only with --dry-run/),
    ]);
    expect(await walObjects()).toEqual(before);
    const planned = runRookery(['expire', '--tier', 'oltp', '--repo', repo, '--now', '2999-01-01T00:00:00Z', '--dry-run']);
    expect([planned.status, planned.stderr]).toEqual([0, '']);
    expect(await walObjects()).toEqual(before);
  });

  it.each(['file://', 'file:///'])('--repo %s is refused', (url) => {
    const run = runRookery(['info', '--repo', url]);
    expect([run.status, run.stderr]).toEqual([2, expect.stringMatching(/a directory below the filesystem root/)]);
  });

  it('a selective logical restore that matches nothing exits 2 naming it, creating nothing', async () => {
    await seedContent(source.url, { sizeMb: 1, seed: 13 });
    const backup = runRookery(['backup', '--tier', 'content', '--repo', repo, '--pg-url', source.urlFor(CONTENT_DATABASE), '--json']);
    expect([backup.status, backup.stderr]).toEqual([0, '']);
    const databases = async () =>
      (await source.query<{ datname: string }>('select datname from pg_database order by 1')).map((row) => row.datname);
    const before = await databases();

    for (const [selection, miss] of [
      [['--table', 'nosuch'], "--table 'nosuch'"],
      [['--schema', 'nosuch'], "--schema 'nosuch'"],
      [['--table', 'public.nosuch'], "--table 'public.nosuch'"],
    ] as const) {
      const run = runRookery([
        'restore',
        '--tier',
        'content',
        '--repo',
        repo,
        '--backup',
        'latest',
        '--target-url',
        source.urlFor('restored'),
        ...selection,
      ]);
      expect([run.status, run.stderr]).toEqual([2, expect.stringContaining(`rookery: ${miss} matches nothing in backup`)]);
      expect(await databases()).toEqual(before);
    }
    const found = runRookery([
      'restore',
      '--tier',
      'content',
      '--repo',
      repo,
      '--backup',
      'latest',
      '--target-url',
      source.urlFor('restored'),
      '--table',
      'content_objects',
    ]);
    expect([found.status, found.stderr]).toEqual([0, '']);
    const count = async (database: string) =>
      (await source.query<{ n: string }>('select count(*)::text as n from content_objects', [], database))[0].n;
    expect(await count('restored')).toBe(await count(CONTENT_DATABASE));
  }, 300_000);
});
