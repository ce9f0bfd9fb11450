import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildConfig } from '@rookery/config';
import { RookeryEngine, createEngine } from '@rookery/engine';
import { lookupOsUser } from '@rookery/postgres';
import {
  ROOKERY_BIN,
  TestCluster,
  acquireS3,
  assertCliBuilt,
  seedTablespaceCluster,
  diffTableChecksums,
  fileSnapshot,
  s3StoreUrl,
  startCluster,
  switchAndWaitArchived,
  tableChecksums,
} from '@rookery/testing';
import { BackupValidator } from './backup.validator';
import { DisasterRecovery } from './disaster-recovery';
import { resolveRegion } from './disaster-recovery.plan';
import { RestoreDrill } from './restore.drill';
import { ValidationTools, createValidationTools } from './validation.tools';

jest.setTimeout(300_000);

const DATABASES = ['postgres', 'inspace'] as const;
type Checksums = Record<(typeof DATABASES)[number], Awaited<ReturnType<typeof tableChecksums>>>;

/** pg_tblspc/<oid> → its target, of a restored data directory. */
async function tablespaceLinks(dataDirectory: string): Promise<Record<string, string>> {
  const links: Record<string, string> = {};
  for (const oid of await readdir(join(dataDirectory, 'pg_tblspc'))) links[oid] = await readlink(join(dataDirectory, 'pg_tblspc', oid));
  return links;
}

/** Whether `path` is strictly inside `directory`. */
function inside(path: string, directory: string): boolean {
  const rest = relative(directory, path);
  return rest !== '' && !rest.startsWith('..') && !rest.startsWith('/');
}

/**
 * The validator, a drill and `dr` of a cluster with two user tablespaces (a table, an index and a
 * database in them): each restores the tablespaces into its own scratch space (the pg_tblspc links
 * are read while the copy exists), never into the production directories (their files, sizes and
 * modification times are the same after a drill), and passes: pg_verifybackup over the files
 * behind the links, the drill's data checks, dr's tables identical from the secondary region.
 */
describe('validation, drills and dr of a cluster with tablespaces', () => {
  let work: string;
  let source: TestCluster;
  let locations: Record<string, string>;
  let repoUrl: string;
  let secondaryUrl: string;
  let engine: RookeryEngine;
  let before: Checksums;
  const engines: RookeryEngine[] = [];

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-validation-tablespaces-'));
    await chmod(work, 0o711);
    const owner = lookupOsUser('postgres');
    // archive_command runs as the server's account: it writes the repository's wal/ folder.
    const repoDir = join(work, 'repo');
    await mkdir(join(repoDir, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repoDir, join(repoDir, 'oltp'), join(repoDir, 'oltp', 'wal')]) await chown(dir, owner.uid, owner.gid);
    repoUrl = `file://${repoDir}`;
    const s3 = await acquireS3('secondary');
    const bucket = `ts-dr-${randomBytes(3).toString('hex')}`;
    await s3.createBucket(bucket);
    secondaryUrl = s3StoreUrl(s3, bucket, 'rookery');
    source = await startCluster({
      name: 'validation-tablespaces',
      settings: { archive_mode: 'on', archive_command: `${process.execPath} ${ROOKERY_BIN} wal-push %p --tier oltp --repo ${repoUrl}` },
    });
    locations = await seedTablespaceCluster(source, join(work, 'disks'));
    before = await checksums((database) => source.urlFor(database));
    engine = await engineFor([repoUrl, secondaryUrl], repoUrl);
    await engine.backup({ tier: 'oltp' });
    await switchAndWaitArchived(source);
  }, 300_000);

  afterAll(async () => {
    for (const each of engines) await each.close();
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  async function engineFor(repositories: string[], selfRepository: string): Promise<RookeryEngine> {
    const config = buildConfig({ repositories, tiers: { oltp: { pgUrl: source.url } } }, 'test');
    const created = await createEngine(config, {
      actor: 'test',
      selfCommand: [process.execPath, ROOKERY_BIN, '--repo', selfRepository],
    });
    engines.push(created);
    return created;
  }

  async function checksums(urlFor: (database: string) => string): Promise<Checksums> {
    const result = {} as Checksums;
    for (const database of DATABASES) result[database] = await tableChecksums(urlFor(database));
    return result;
  }

  async function scratchDirectory(name: string): Promise<string> {
    const dir = join(work, name);
    await mkdir(dir, { mode: 0o711 });
    await chmod(dir, 0o711);
    return dir;
  }

  it('the validator restores every tablespace into its scratch directory and pg_verifybackup passes over the files behind the links', async () => {
    const scratch = await scratchDirectory('validations');
    const tools = createValidationTools(engine.toolkit, { workDirectory: scratch });
    // The restored copy is gone after validation: its links are read as pg_verifybackup is called on it.
    const seen: Record<string, string>[] = [];
    const observed: ValidationTools = {
      ...tools,
      verifybackup: {
        verify: async (directory, options) => {
          seen.push(await tablespaceLinks(directory));
          return tools.verifybackup.verify(directory, options);
        },
      } as ValidationTools['verifybackup'],
    };
    const { id } = await engine.find('oltp', 'latest');
    const report = await new BackupValidator(engine, observed).validate('oltp', id);

    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checks.find((check) => check.name === 'pg_verifybackup')).toMatchObject({ ok: true });
    expect(seen).toHaveLength(1);
    expect(Object.values(seen[0])).toHaveLength(2);
    for (const target of Object.values(seen[0])) expect({ target, inside: inside(target, scratch) }).toEqual({ target, inside: true });
    expect(await readdir(scratch)).toEqual([]);
  });

  it('a drill restores the tablespaces into its scratch directory, passes, and touches nothing outside it', async () => {
    const drills = await scratchDirectory('drills');
    const tools = createValidationTools(engine.toolkit, { workDirectory: drills });
    // A free port is asked for between the restore and the start: the drill's copy is complete then.
    const seen: Record<string, string>[] = [];
    const observed: ValidationTools = {
      ...tools,
      freePort: async () => {
        for (const entry of await readdir(drills)) seen.push(await tablespaceLinks(join(drills, entry, 'data')));
        return tools.freePort();
      },
    };
    // Production stands still meanwhile (stopped), so any change in its directories is the drill's.
    await source.stop();
    try {
      const production = [source.dataDir, locations.fast, locations.cold];
      const snapshots = await Promise.all(production.map(fileSnapshot));

      const report = await new RestoreDrill(engine, observed).run('oltp');

      expect(report.checks.filter((check) => !check.ok)).toEqual([]);
      expect(report).toMatchObject({ ok: true, recovery: 'archived-wal' });
      expect(seen).toHaveLength(1);
      expect(Object.values(seen[0])).toHaveLength(2);
      for (const target of Object.values(seen[0])) expect({ target, inside: inside(target, drills) }).toEqual({ target, inside: true });
      expect(await Promise.all(production.map(fileSnapshot))).toEqual(snapshots);
      expect(await readdir(drills)).toEqual([]);
    } finally {
      await source.start();
    }
  });

  it('dr from the secondary region alone restores the tablespaces into its workdir, and every table identical', async () => {
    const replicated = await engine.replicate('oltp');
    expect(replicated.regions[0].error).toBeUndefined();
    const drEngine = await engineFor([secondaryUrl], secondaryUrl);
    const region = resolveRegion('secondary', ['oltp'], (tier) => drEngine.config.tiers[tier].policy.regions, [secondaryUrl]);
    const workdir = join(work, 'dr');
    const dr = new DisasterRecovery(drEngine, createValidationTools(drEngine.toolkit, { workDirectory: workdir }));
    const request = { mode: 'complete' as const, region, tiers: ['oltp' as const], workdir };
    const plans = await dr.plan(request);
    expect(plans[0].problem).toBeNull();
    const report = await dr.run(request, plans);
    const dataDirectory = join(workdir, 'oltp');
    try {
      expect(report.tiers[0].error).toBeNull();
      expect(report.ok).toBe(true);
      const links = await tablespaceLinks(dataDirectory);
      expect(Object.values(links)).toHaveLength(2);
      for (const target of Object.values(links)) expect({ target, inside: inside(target, workdir) }).toEqual({ target, inside: true });
      const url = new URL(report.tiers[0].url as string);
      const after = await checksums((database) => {
        url.pathname = `/${database}`;
        return url.toString();
      });
      for (const database of DATABASES)
        expect({ database, diff: diffTableChecksums(before[database], after[database]) }).toEqual({ database, diff: [] });
    } finally {
      await drEngine.stopRestored(dataDirectory).catch(() => undefined);
    }
  });
});
