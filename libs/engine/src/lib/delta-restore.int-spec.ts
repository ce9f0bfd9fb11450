import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from '@rookery/config';
import { PgBinaries, PgCtlDriver, PgSqlClient, ProcessRunner, lookupOsUser } from '@rookery/postgres';
import { TestCluster, diffTableChecksums, freeLoopbackPort, seedOltp, startCluster, tableChecksums } from '@rookery/testing';
import { createEngine } from './engine.factory';
import { RookeryEngine } from './rookery.engine';

/**
 * Delta restore on a real PostgreSQL 15 cluster (issue 17 item 3): a restored copy that ran and
 * drifted (rows changed, a table dropped and one created, a relation file deleted, stray files) is
 * brought back with `restore --delta` and must be the directory a fresh restore of the same backup
 * gives, file for file before either starts, and table for table after. Refused: the copy while
 * its server runs, and the data directory of another initdb.
 */
jest.setTimeout(300_000);

const sql = new PgSqlClient({ applicationName: 'delta-restore-spec' });
const DATABASE = 'penguinmails_oltp';

describe('restore --delta into a drifted copy of the same system', () => {
  let work: string;
  let source: TestCluster;
  let engine: RookeryEngine;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-delta-'));
    // Restored servers run as the postgres account: they may pass through, not list.
    await chmod(work, 0o711);
    source = await startCluster({ name: 'delta-source' });
    await seedOltp(source.url, { sizeMb: 4 });
    await source.query('create table delta_rows (id int primary key, note text not null)', [], DATABASE);
    await source.query("insert into delta_rows select i, 'row ' || i from generate_series(1, 20000) i", [], DATABASE);
    await source.query('create table delta_dropped as select i as id, md5(i::text) as note from generate_series(1, 5000) i', [], DATABASE);
    await source.query('create table delta_victim as select i as id, md5(i::text) as note from generate_series(1, 5000) i', [], DATABASE);
    const config = buildConfig(
      {
        repositories: [`file://${join(work, 'repo')}`],
        tiers: { oltp: { pgUrl: source.url, policy: { physical: { incremental: { maxChainFraction: 10 } } } } },
      },
      'delta int-spec',
    );
    engine = await createEngine(config, { actor: 'test' });
  });

  afterAll(async () => {
    for (const directory of ['a', 'b']) await engine?.stopRestored(join(work, directory)).catch(() => undefined);
    await engine?.close();
    await source?.destroy();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ends identical to a fresh restore, and refuses a running copy and another system', async () => {
    const full = await engine.backup({ tier: 'oltp' });
    const copy = join(work, 'a');
    const fresh = join(work, 'b');

    // The copy runs and drifts from the backup.
    const copyPort = await freeLoopbackPort();
    await engine.restore({ tier: 'oltp', backup: full.id, to: copy, start: true, port: copyPort });
    const copyUrl = `postgres://postgres@127.0.0.1:${copyPort}/${DATABASE}`;
    await sql.query(copyUrl, "update delta_rows set note = 'drifted' where id % 7 = 0");
    await sql.query(copyUrl, 'drop table delta_dropped');
    await sql.query(copyUrl, 'create table delta_added as select i from generate_series(1, 3000) i');
    const [{ path: victim }] = await sql.query<{ path: string }>(copyUrl, "select pg_relation_filepath('delta_victim') as path");
    const [{ oid: database }] = await sql.query<{ oid: number }>(copyUrl, `select oid from pg_database where datname = '${DATABASE}'`);
    await sql.query(copyUrl, 'checkpoint');

    // Its server runs: refused before anything is written, and it keeps running.
    await expect(engine.restore({ tier: 'oltp', backup: full.id, to: copy, delta: true })).rejects.toThrow(
      new RegExp(`a server is running on '${copy}' \\(postmaster.pid names process \\d+\\): refusing to restore into it`),
    );
    expect(await sql.query(copyUrl, 'select count(*)::int as n from delta_added')).toEqual([{ n: 3000 }]);

    await engine.stopRestored(copy);
    await rm(join(copy, victim));
    // The source moves on: the copy is brought to a block incremental taken after the full.
    await source.query("update delta_rows set note = 'changed at the source' where id % 11 = 0", [], DATABASE);
    await source.query('create table delta_later as select i as id from generate_series(1, 2000) i', [], DATABASE);
    await source.query('checkpoint');
    const before = await tableChecksums(source.urlFor(DATABASE));
    const backup = await engine.backup({ tier: 'oltp', type: 'incremental' });
    expect(backup.type).toBe('incremental');
    await writeFile(join(copy, 'base', String(database), '999999'), Buffer.alloc(8192, 1));
    await writeFile(join(copy, 'stray.txt'), 'not from the backup');

    const delta = await engine.restore({ tier: 'oltp', backup: backup.id, to: copy, delta: true });
    const counts = delta.delta;
    expect(counts).toBeDefined();
    // Most files came through untouched; the changed pages, the deleted file and the strays did not.
    expect(counts?.filesKept).toBeGreaterThan(500);
    expect(counts?.pagesRewritten).toBeGreaterThan(0);
    expect(counts?.filesCreated).toBeGreaterThanOrEqual(2);
    expect(counts?.entriesRemoved).toBeGreaterThanOrEqual(3);

    await engine.restore({ tier: 'oltp', backup: backup.id, to: fresh });
    // Before either starts (PostgreSQL rewrites files as it runs): the same files, bytes, modes and owners.
    const [deltaTree, freshTree] = await Promise.all([describeTree(copy), describeTree(fresh)]);
    expect(firstDifference(deltaTree, freshTree)).toBeNull();
    expect(deltaTree.size).toBeGreaterThan(900);

    const ports = [await freeLoopbackPort(), await freeLoopbackPort()];
    await engine.startRestored(copy, { port: ports[0] });
    await engine.startRestored(fresh, { port: ports[1] });
    for (const port of ports) {
      const after = await tableChecksums(`postgres://postgres@127.0.0.1:${port}/${DATABASE}`);
      expect(diffTableChecksums(before, after)).toEqual([]);
      expect(Object.keys(after)).toEqual(
        expect.arrayContaining(['public.delta_rows', 'public.delta_dropped', 'public.delta_victim', 'public.delta_later']),
      );
    }

    // Another initdb's data directory is another database system: refused, naming both, and left as it was.
    const other = join(work, 'other');
    const runner = new ProcessRunner({ baseEnv: process.env });
    const binaries = await PgBinaries.resolve({ runner });
    const account = process.getuid?.() === 0 ? lookupOsUser('postgres') : null;
    await mkdir(other, { mode: 0o700 });
    if (account) await chown(other, account.uid, account.gid);
    await new PgCtlDriver(runner, binaries).initdb(other, {
      user: account ? 'postgres' : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
      noSync: true,
    });
    const otherBefore = await describeTree(other);
    await expect(engine.restore({ tier: 'oltp', backup: backup.id, to: other, delta: true })).rejects.toThrow(
      new RegExp(
        `restore directory '${other}' belongs to database system \\d+; backup '${backup.id}' is of database system ${backup.postgres.systemIdentifier}`,
      ),
    );
    expect(await describeTree(other)).toEqual(otherBefore);

    // A delta that fails halfway (a damaged artifact) leaves the copy as it is, without pg_control,
    // and says so: it cannot be started half-applied.
    await engine.stopRestored(copy);
    const artifact = await largestFile(join(work, 'repo'));
    const bytes = await readFile(artifact);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(artifact, bytes);
    await expect(engine.restore({ tier: 'oltp', backup: backup.id, to: copy, delta: true })).rejects.toMatchObject({
      hint: expect.stringContaining(`${copy} cannot be started until a restore into it completes (its pg_control was withdrawn)`),
    });
    expect((await readdir(join(copy, 'global'))).filter((name) => name.startsWith('pg_control'))).not.toContain('pg_control');
    expect((await readdir(copy)).length).toBeGreaterThan(10);
  });
});

/** Per path: type, mode, owner, and size + SHA-256 or link target (mtimes differ: the restore writes its settings as it goes). */
async function describeTree(root: string): Promise<Map<string, string>> {
  const described = new Map<string, string>();
  const walk = async (relative: string) => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const found = await lstat(join(root, path));
      const who = `${(found.mode & 0o7777).toString(8)} ${found.uid}:${found.gid}`;
      if (found.isSymbolicLink()) described.set(path, `symlink ${await readlink(join(root, path))}`);
      else if (found.isDirectory()) {
        described.set(path, `directory ${who}`);
        await walk(path);
      } else {
        const digest = createHash('sha256')
          .update(await readFile(join(root, path)))
          .digest('hex');
        described.set(path, `file ${who} ${found.size} ${digest}`);
      }
    }
  };
  await walk('');
  return described;
}

async function largestFile(root: string): Promise<string> {
  let largest = { path: '', size: -1 };
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const { size } = await lstat(path);
    if (size > largest.size) largest = { path, size };
  }
  return largest.path;
}

function firstDifference(got: Map<string, string>, expected: Map<string, string>): string | null {
  for (const [path, value] of expected) if (got.get(path) !== value) return `${path}: expected ${value}, got ${got.get(path) ?? 'nothing'}`;
  for (const [path, value] of got) if (!expected.has(path)) return `${path}: not expected, got ${value}`;
  return null;
}
