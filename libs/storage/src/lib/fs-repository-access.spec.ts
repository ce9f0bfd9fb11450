import { chown, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LooseUmaskScratch, directoryEntries, entriesWithOtherModes, looseUmaskScratch, worldAccessibleEntries } from '@rookery/testing';
import { FsStoreDriver } from './fs-store.driver';

const asRoot = process.getuid?.() === 0;
/** Accounts by number only: root may hand entries to any uid, whether or not /etc/passwd names it. */
const CLUSTER_ACCOUNT = { uid: 4242, gid: 4343 };
const ROOT_OWNER = { uid: 5151, gid: 5252 };
const SHARED_GROUP = 4545;

describe('filesystem repository ownership and modes', () => {
  let scratch: LooseUmaskScratch;
  let dir: string;

  beforeEach(async () => {
    // The loosest umask: the modes must come from the store, not from the caller's umask.
    scratch = await looseUmaskScratch('rookery-fs-access-');
    dir = scratch.path;
  });

  afterEach(() => scratch.close());

  it("creates directories 0700 and files 0600, parents above the root traversable only: the repository is its owner's alone", async () => {
    const repo = join(dir, 'above', 'repo');
    const store = new FsStoreDriver(repo);
    await store.write('oltp/wal/00000001/000000010000000000000003.partial', Buffer.from('wal'));
    await store.write('oltp/base/20261207T030000F/manifest.json', Buffer.from('{}'));

    expect((await stat(join(dir, 'above'))).mode & 0o7777).toBe(0o711);
    expect((await directoryEntries(repo)).filter((entry) => !entry.directory).length).toBe(2);
    expect(await entriesWithOtherModes(repo, { directory: 0o700, file: 0o600 })).toEqual([]);
  });

  it('check() leaves nothing behind in a fresh repository but its root', async () => {
    const repo = join(dir, 'repo');
    await new FsStoreDriver(repo).check();

    expect(await readdir(repo)).toEqual([]);
    expect((await stat(repo)).mode & 0o7777).toBe(0o700);
  });

  it('with a shared group: directories 02770, files 0640, nothing world-readable', async () => {
    const repo = join(dir, 'repo');
    const store = new FsStoreDriver(repo, { group: process.getgid?.() ?? 0 });
    await store.write('oltp/wal/00000001/000000010000000000000003', Buffer.from('wal'));

    expect(await entriesWithOtherModes(repo, { directory: 0o2770, file: 0o640 })).toEqual([]);
    expect(await worldAccessibleEntries(repo)).toEqual([]);
  });

  (asRoot ? describe : describe.skip)('run as root', () => {
    it('hands everything it creates in a fresh repository, the root included, to the default owner', async () => {
      const repo = join(dir, 'repo');
      const store = new FsStoreDriver(repo, { defaultOwner: () => CLUSTER_ACCOUNT });
      await store.write('oltp/base/20261207T030000F/base.tar.zst', Buffer.from('artifact'));
      await store.write('oltp/wal/00000001/000000010000000000000003', Buffer.from('wal'));

      const entries = await directoryEntries(repo);
      expect(entries.map((entry) => entry.path)).toContain(join(repo, 'oltp', 'wal', '00000001', '000000010000000000000003'));
      expect(entries.filter((entry) => entry.uid !== CLUSTER_ACCOUNT.uid || entry.gid !== CLUSTER_ACCOUNT.gid)).toEqual([]);
    });

    it('hands new entries to the owner of an existing root directory, whatever the default', async () => {
      const repo = join(dir, 'repo');
      await mkdir(repo, { mode: 0o750 });
      await chown(repo, ROOT_OWNER.uid, ROOT_OWNER.gid);
      const store = new FsStoreDriver(repo, { defaultOwner: () => CLUSTER_ACCOUNT });
      await store.write('queue/wal/00000001/000000010000000000000007.partial', Buffer.from('wal'));

      expect((await directoryEntries(repo)).filter((entry) => entry.uid !== ROOT_OWNER.uid || entry.gid !== ROOT_OWNER.gid)).toEqual([]);
    });

    it("with a shared group: directories setgid and group-writable, files group-readable, everything the group's, still nothing world-readable", async () => {
      const repo = join(dir, 'repo');
      const store = new FsStoreDriver(repo, { defaultOwner: () => CLUSTER_ACCOUNT, group: SHARED_GROUP });
      await store.write('oltp/wal/00000001/000000010000000000000003', Buffer.from('wal'));

      const entries = await directoryEntries(repo);
      expect(entries.filter((entry) => entry.uid !== CLUSTER_ACCOUNT.uid || entry.gid !== SHARED_GROUP)).toEqual([]);
      expect(await entriesWithOtherModes(repo, { directory: 0o2770, file: 0o640 })).toEqual([]);
      expect(await worldAccessibleEntries(repo)).toEqual([]);
    });

    it("keeps what it creates root's in a root-owned repository when no account is named", async () => {
      const store = new FsStoreDriver(join(dir, 'repo'));
      await store.write('oltp/manifest.json', Buffer.from('{}'));

      expect((await directoryEntries(join(dir, 'repo'))).filter((entry) => entry.uid !== 0)).toEqual([]);
    });
  });
});
