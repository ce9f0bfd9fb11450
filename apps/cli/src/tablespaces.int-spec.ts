import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readlink, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupCatalog } from '@rookery/catalog';
import type { TablespaceListing } from './cli.output';
import {
  TestCluster,
  assertCliBuilt,
  seedTablespaceCluster,
  diffTableChecksums,
  freeLoopbackPort,
  runRookery,
  startCluster,
  tableChecksums,
} from '@rookery/testing';

jest.setTimeout(300_000);

type TablespaceJson = TablespaceListing;

/**
 * Tablespaces through the real `rookery` command: `info` (listing, --json, --backup ID in text and
 * JSON) shows each tablespace of a backup with its OID, name, original directory and size, and
 * `restore --tablespace-map OLD=NEW --tablespace-map-all DIR` says where each one went and
 * restores every table identical; a malformed --tablespace-map is refused before anything runs.
 */
describe('rookery info and restore of a backup with tablespaces', () => {
  let work: string;
  let repo: string;
  let source: TestCluster;
  let locations: Record<string, string>;
  let backupId: string;
  let before: Record<string, Awaited<ReturnType<typeof tableChecksums>>>;

  function rookery(args: string[], env: NodeJS.ProcessEnv = process.env) {
    return runRookery([...args, '--repo', repo], { env });
  }

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-cli-tablespaces-'));
    // Restored servers run as the postgres account: it must reach their directories.
    await chmod(work, 0o711);
    repo = `file://${join(work, 'repo')}`;
    source = await startCluster({ name: 'cli-tablespaces' });
    locations = await seedTablespaceCluster(source, join(work, 'disks'));
    before = { postgres: await tableChecksums(source.url), inspace: await tableChecksums(source.urlFor('inspace')) };
    const backup = rookery(['backup', '--tier', 'oltp', '--json', '--pg-url', source.url]);
    expect({ status: backup.status, stderr: backup.stderr }).toEqual({ status: 0, stderr: '' });
    backupId = (JSON.parse(backup.stdout) as { id: string }).id;
  }, 300_000);

  afterAll(async () => {
    await source?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  function expectTablespaces(listed: TablespaceJson[] | undefined): void {
    expect(listed).toEqual([
      {
        oid: expect.any(Number),
        name: 'fast',
        location: locations.fast,
        bytes: expect.any(Number),
        storedBytes: expect.any(Number),
        artifact: expect.stringMatching(/^tablespace-\d+\.tar/),
      },
      {
        oid: expect.any(Number),
        name: 'cold',
        location: locations.cold,
        bytes: expect.any(Number),
        storedBytes: expect.any(Number),
        artifact: expect.stringMatching(/^tablespace-\d+\.tar/),
      },
    ]);
    for (const tablespace of listed ?? []) {
      expect(tablespace.artifact).toBe(
        `tablespace-${tablespace.oid}.tar${tablespace.artifact.slice(`tablespace-${tablespace.oid}.tar`.length)}`,
      );
      expect(tablespace.bytes).toBeGreaterThan(0);
      expect(tablespace.storedBytes).toBeGreaterThan(0);
    }
  }

  it('info --json lists the tablespace artifacts: OID, name, original directory and size', () => {
    const info = rookery(['info', '--json']);
    expect(info.status).toBe(0);
    const backup = (
      JSON.parse(info.stdout) as { backups: { id: string; tablespaces?: TablespaceJson[]; artifacts: Record<string, unknown>[] }[] }
    ).backups.find((entry) => entry.id === backupId);
    expectTablespaces(backup?.tablespaces);
    // The artifacts say their kind, and a tablespace's which tablespace it holds.
    for (const tablespace of backup?.tablespaces ?? []) {
      expect(backup?.artifacts).toContainEqual(
        expect.objectContaining({
          name: tablespace.artifact,
          kind: 'tablespace-tar',
          bytes: tablespace.bytes,
          storedBytes: tablespace.storedBytes,
          tablespace: { oid: tablespace.oid, name: tablespace.name, location: tablespace.location },
        }),
      );
    }
    expect(backup?.artifacts).toContainEqual(expect.objectContaining({ kind: 'base-tar' }));
  });

  it('info and info --backup ID show each tablespace in text, and --backup --json lists them', () => {
    const detailJson = rookery(['info', '--backup', backupId, '--json']);
    expect(detailJson.status).toBe(0);
    const detail = JSON.parse(detailJson.stdout) as { tablespaces?: TablespaceJson[] };
    expectTablespaces(detail.tablespaces);

    const listing = rookery(['info']);
    expect(listing.status).toBe(0);
    const text = rookery(['info', '--backup', backupId]);
    expect(text.status).toBe(0);
    for (const output of [listing.stdout, text.stdout]) {
      for (const tablespace of detail.tablespaces ?? []) {
        // One line per tablespace naming its OID, name and original directory (size beside them).
        const line = output.split('\n').find((candidate) => candidate.includes(tablespace.location));
        expect(line).toMatch(new RegExp(`\\b${tablespace.oid}\\b`));
        expect(line).toMatch(new RegExp(`\\b${tablespace.name}\\b`));
        expect(line).toMatch(/\d+(\.\d)? (B|KiB|MiB|GiB)/);
      }
    }
  });

  it('restore --tablespace-map OLD=NEW --tablespace-map-all DIR says where each tablespace went, and restores identical', async () => {
    const dir = join(work, 'restored');
    const moved = join(work, 'moved-fast');
    const all = join(work, 'elsewhere');
    const port = await freeLoopbackPort();
    const restore = rookery([
      'restore',
      '--tier',
      'oltp',
      '--backup',
      backupId,
      '--to',
      dir,
      '--tablespace-map',
      `${locations.fast}=${moved}`,
      '--tablespace-map-all',
      all,
      '--start',
      '--port',
      String(port),
    ]);
    expect({ status: restore.status, stderr: restore.stderr }).toMatchObject({ status: 0 });
    const owner = await stat(dir);
    try {
      const oids = Object.fromEntries(
        (JSON.parse(rookery(['info', '--backup', backupId, '--json']).stdout) as { tablespaces: TablespaceJson[] }).tablespaces.map(
          (tablespace) => [tablespace.name, tablespace.oid],
        ),
      );
      expect(restore.stdout).toContain(`tablespace fast (${oids.fast}) into ${moved} (was ${locations.fast})`);
      expect(restore.stdout).toContain(`tablespace cold (${oids.cold}) into ${join(all, String(oids.cold))} (was ${locations.cold})`);
      expect(await readlink(join(dir, 'pg_tblspc', String(oids.fast)))).toBe(moved);
      expect(await readlink(join(dir, 'pg_tblspc', String(oids.cold)))).toBe(join(all, String(oids.cold)));
      const after = {
        postgres: await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`),
        inspace: await tableChecksums(`postgres://postgres@127.0.0.1:${port}/inspace`),
      };
      expect(diffTableChecksums(before.postgres, after.postgres)).toEqual([]);
      expect(diffTableChecksums(before.inspace, after.inspace)).toEqual([]);
      expect(Object.keys(after.postgres)).toEqual(expect.arrayContaining(['public.hot', 'public.plain_rows']));
      expect(Object.keys(after.inspace)).toEqual(['public.docs']);
    } finally {
      spawnSync('/usr/lib/postgresql/15/bin/pg_ctl', ['stop', '-D', dir, '-m', 'fast'], {
        ...(process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {}),
      });
    }
  });

  it('catalog rebuild indexes the tablespace artifacts with their tablespaces', async () => {
    const catalogUrl = `sqlite://${join(work, 'catalog.sqlite')}`;
    const rebuild = rookery(['catalog', 'rebuild', '--tier', 'oltp'], { ...process.env, ROOKERY_CATALOG_URL: catalogUrl });
    expect({ status: rebuild.status, stderr: rebuild.stderr }).toEqual({ status: 0, stderr: '' });
    const listed = (JSON.parse(rookery(['info', '--backup', backupId, '--json']).stdout) as { tablespaces: TablespaceJson[] }).tablespaces;
    const catalog = await BackupCatalog.open(catalogUrl);
    try {
      const record = await catalog.get(backupId);
      expect(record?.artifacts.filter((artifact) => artifact.kind === 'tablespace-tar')).toEqual(
        listed.map((tablespace) =>
          expect.objectContaining({
            name: tablespace.artifact,
            bytes: tablespace.bytes,
            storedBytes: tablespace.storedBytes,
            tablespace: { oid: tablespace.oid, name: tablespace.name, location: tablespace.location },
          }),
        ),
      );
    } finally {
      await catalog.close();
    }
  });

  it("refuses a --tablespace-map without '=' before anything is written, saying what it must be", async () => {
    const dir = join(work, 'refused');
    const restore = rookery(['restore', '--tier', 'oltp', '--backup', backupId, '--to', dir, '--tablespace-map', 'foo']);
    // A usage error (exit 2), like every argument the operator must correct.
    expect(restore.status).toBe(2);
    expect(restore.stderr).toMatch(/--tablespace-map.*'foo'.*OLD=NEW/);
    expect(restore.stderr.trim().split('\n')).toHaveLength(1);
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
