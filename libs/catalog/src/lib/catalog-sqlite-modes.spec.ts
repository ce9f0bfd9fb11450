import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LooseUmaskScratch, looseUmaskScratch } from '@rookery/testing';
import { BackupCatalog } from './backup.catalog';
import { EventLedger } from './event.ledger';

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

describe("a SQLite catalog file is its owner's alone", () => {
  let scratch: LooseUmaskScratch;
  let dir: string;

  beforeEach(async () => {
    // The loosest umask: the modes must come from rookery, not from the caller's umask.
    scratch = await looseUmaskScratch('rookery-catalog-modes-');
    dir = scratch.path;
  });

  afterEach(() => scratch.close());

  it("creates the catalog 0600 and the directories it needs 0700, and so do SQLite's journals", async () => {
    const path = join(dir, 'state', 'catalog.sqlite');
    const catalog = await BackupCatalog.open(`sqlite://${path}`);
    await catalog.markInterrupted('oltp', 'modes spec');
    await catalog.close();

    expect(await modeOf(join(dir, 'state'))).toBe(0o700);
    const files = await readdir(join(dir, 'state'));
    expect(files).toContain('catalog.sqlite');
    for (const file of files) expect([file, await modeOf(join(dir, 'state', file))]).toEqual([file, 0o600]);
  });

  it('takes group and other access away from an existing catalog (one created while the umask decided)', async () => {
    const path = join(dir, 'ledger.sqlite');
    await writeFile(path, '', { mode: 0o644 });
    const ledger = await EventLedger.open(`sqlite://${path}`);
    await ledger.close();

    expect(await modeOf(path)).toBe(0o600);
  });
});
