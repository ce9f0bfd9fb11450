import { join } from 'node:path';
import { LooseUmaskScratch, directoryEntries, entriesWithOtherModes, looseUmaskScratch } from '@rookery/testing';
import { WalSpool } from './wal.spool';

describe('WalSpool modes', () => {
  let scratch: LooseUmaskScratch;
  let dir: string;

  beforeEach(async () => {
    // The loosest umask: the modes must come from the spool, not from the caller's umask.
    scratch = await looseUmaskScratch('rookery-spool-modes-');
    dir = scratch.path;
  });

  afterEach(() => scratch.close());

  it('creates wal.spoolPath and its tier directory 0700, its lock and records 0600: nothing of it is readable by another account', async () => {
    const spoolPath = join(dir, 'spool');
    const spool = WalSpool.forTier(spoolPath, 'oltp');
    expect(await spool.acquireArchiverLock(process.pid)).toBe(true);
    await spool.acknowledge('000000010000000000000003', {
      sha256: 'ab'.repeat(32),
      store: 'file:///repo',
      identity: { dev: '1', ino: '2', size: '16777216', mtimeNs: '3', ctimeNs: '4' },
      at: new Date().toISOString(),
    });
    await spool.fail('000000010000000000000004', { message: 'store unavailable', code: null, at: new Date().toISOString() });

    expect((await directoryEntries(spoolPath)).length).toBe(5);
    expect(await entriesWithOtherModes(spoolPath, { directory: 0o700, file: 0o600 })).toEqual([]);
  });
});
