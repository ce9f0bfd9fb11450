import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@rookery/core';
import { DEFAULT_PG_BIN_DIR, PgBinaries } from './pg-binaries';
import { ProcessRunner } from './process.runner';

/** A runner whose `pg_config --bindir` answers `answer`, counting the calls. */
function fakeRunner(answer: string | undefined): ProcessRunner & { lookups: string[][] } {
  const lookups: string[][] = [];
  return {
    lookups,
    runSync: (command: string, args: readonly string[]) => {
      lookups.push([command, ...args]);
      return answer;
    },
  } as unknown as ProcessRunner & { lookups: string[][] };
}

describe('PgBinaries', () => {
  let binDir: string;
  let empty: string;

  beforeAll(() => {
    binDir = mkdtempSync(join(tmpdir(), 'rookery-pgbin-'));
    empty = mkdtempSync(join(tmpdir(), 'rookery-pgbin-empty-'));
    for (const tool of ['pg_basebackup', 'pg_ctl']) {
      writeFileSync(join(binDir, tool), '#!/bin/sh\n');
      chmodSync(join(binDir, tool), 0o755);
    }
  });

  afterAll(() => {
    rmSync(binDir, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  it('checks an explicit directory when resolving, without running pg_config', async () => {
    const runner = fakeRunner('/elsewhere');
    const binaries = await PgBinaries.resolve({ binDir, runner });
    expect(binaries.path('pg_ctl')).toBe(join(binDir, 'pg_ctl'));
    expect(runner.lookups).toEqual([]);
    await expect(PgBinaries.resolve({ binDir: empty, runner })).rejects.toThrow(ConfigError);
  });

  it('runs pg_config only when a program is first asked for, and once', async () => {
    const runner = fakeRunner(`${binDir}\n`);
    const binaries = await PgBinaries.resolve({ runner });
    expect(runner.lookups).toEqual([]);
    expect(binaries.path('pg_basebackup')).toBe(join(binDir, 'pg_basebackup'));
    expect(binaries.path('pg_ctl')).toBe(join(binDir, 'pg_ctl'));
    expect(binaries.binDir).toBe(binDir);
    expect(runner.lookups).toEqual([['pg_config', '--bindir']]);
  });

  it('falls back to the PostgreSQL 15 default without a pg_config', async () => {
    const runner = fakeRunner(undefined);
    const binaries = await PgBinaries.resolve({ runner });
    expect(binaries.binDir).toBe(DEFAULT_PG_BIN_DIR);
    expect(runner.lookups).toHaveLength(1);
  });

  it('names the directory pg_config gave when it holds no PostgreSQL programs', async () => {
    const binaries = await PgBinaries.resolve({ runner: fakeRunner(empty) });
    expect(() => binaries.path('pg_ctl')).toThrow(new RegExp(`no PostgreSQL programs in ${empty} \\(from 'pg_config --bindir'\\)`));
  });

  it('names a program missing from the directory', async () => {
    const binaries = await PgBinaries.resolve({ binDir });
    expect(() => binaries.path('pg_dump')).toThrow(`postgresql program 'pg_dump' not found in ${binDir}`);
  });
});
