import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guardedSettings } from './recovery-settings';
import { neutraliseConfigText, neutraliseReason, neutraliseRestoredSettings, parseConfigLine } from './settings-guard';

describe('settings guard', () => {
  it.each([
    ["archive_command = 'touch /tmp/x'", { name: 'archive_command', value: 'touch /tmp/x' }],
    ["Recovery_End_Command='it''s'", { name: 'recovery_end_command', value: "it's" }],
    ['shared_preload_libraries pg_stat_statements # comment', { name: 'shared_preload_libraries', value: 'pg_stat_statements' }],
    ["include_dir 'conf.d'", { name: 'include_dir', value: 'conf.d' }],
    ['# archive_command = x', null],
    ['', null],
  ])('parses %p', (line, expected) => {
    expect(parseConfigLine(line)).toEqual(expected);
  });

  it.each([
    ['archive_command', 'touch /tmp/x', {}, true],
    ['archive_command', '', {}, false],
    ['archive_library', 'basic_archive', {}, true],
    ['ssl_passphrase_command', 'echo secret', {}, true],
    ['shared_preload_libraries', 'evil', {}, true],
    ['shared_preload_libraries', '', {}, false],
    ['shared_preload_libraries', 'pg_stat_statements', { shared_preload_libraries: 'pg_stat_statements' }, false],
    [
      'shared_preload_libraries',
      'pg_stat_statements,"auto_explain"',
      { shared_preload_libraries: 'pg_stat_statements, auto_explain' },
      false,
    ],
    ['shared_preload_libraries', 'pg_stat_statements,evil', { shared_preload_libraries: 'pg_stat_statements' }, true],
    ['shared_preload_libraries', '"pg_stat_statements, evil"', { shared_preload_libraries: 'pg_stat_statements, evil' }, true],
    ['shared_preload_libraries', '', { shared_preload_libraries: 'pg_stat_statements' }, true],
    ['dynamic_library_path', '$libdir', { dynamic_library_path: '$libdir' }, false],
    ['dynamic_library_path', '/tmp/lib:$libdir', { dynamic_library_path: '$libdir' }, true],
    ['dynamic_library_path', '/tmp/lib', {}, true],
    ['work_mem', '64MB', {}, false],
  ])('%s = %p (recorded %p): neutralised %p', (name, value, recorded, expected) => {
    expect(neutraliseReason(name, value, recorded) !== null).toBe(expected);
  });

  it('comments out a hostile command under a marker line and keeps everything else', () => {
    const text = "work_mem = '64MB'\narchive_command = 'touch /tmp/pwned'\nrecovery_end_command = 'touch /tmp/pwned'\n";
    const result = neutraliseConfigText(text, 'postgresql.auto.conf');
    expect(result.text.split('\n')).toEqual([
      "work_mem = '64MB'",
      expect.stringMatching(/^# rookery restore: disabled archive_command: .*--keep-settings/),
      "#archive_command = 'touch /tmp/pwned'",
      expect.stringMatching(/^# rookery restore: disabled recovery_end_command: /),
      "#recovery_end_command = 'touch /tmp/pwned'",
      '',
    ]);
    expect(result.neutralised.map((entry) => [entry.setting, entry.value, entry.line])).toEqual([
      ['archive_command', 'touch /tmp/pwned', 2],
      ['recovery_end_command', 'touch /tmp/pwned', 3],
    ]);
  });

  it('follows includes inside the data directory and reports those outside it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rookery-guard-'));
    try {
      await mkdir(join(dir, 'conf.d'));
      await writeFile(
        join(dir, 'postgresql.conf'),
        "include 'extra.conf'\ninclude_dir 'conf.d'\ninclude_if_exists '/etc/elsewhere.conf'\n",
      );
      await writeFile(join(dir, 'extra.conf'), "shared_preload_libraries = 'evil'\n");
      await writeFile(join(dir, 'conf.d', 'a.conf'), "archive_cleanup_command = 'rm -rf /'\n");
      await writeFile(join(dir, 'postgresql.auto.conf'), "ssl_passphrase_command = 'echo x'\n");

      const report = await neutraliseRestoredSettings(dir, null);

      expect(report.neutralised.map((entry) => `${entry.file}:${entry.setting}`)).toEqual([
        'extra.conf:shared_preload_libraries',
        'conf.d/a.conf:archive_cleanup_command',
        'postgresql.auto.conf:ssl_passphrase_command',
      ]);
      expect(report.uninspected).toEqual([{ file: '/etc/elsewhere.conf', reason: expect.stringContaining('outside') }]);
      expect(await readFile(join(dir, 'extra.conf'), 'utf8')).toContain("#shared_preload_libraries = 'evil'");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps the library settings the manifest records and neutralises the ones added to them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rookery-guard-libraries-'));
    try {
      const conf = "shared_preload_libraries = 'pg_stat_statements'\ndynamic_library_path = '$libdir'\n";
      await writeFile(join(dir, 'postgresql.conf'), conf);
      await writeFile(join(dir, 'postgresql.auto.conf'), "shared_preload_libraries = 'pg_stat_statements, evil'\n");
      const recorded = { shared_preload_libraries: 'pg_stat_statements', dynamic_library_path: '$libdir' };
      const report = await neutraliseRestoredSettings(dir, null, recorded);
      expect(report.neutralised).toEqual([
        {
          setting: 'shared_preload_libraries',
          value: 'pg_stat_statements, evil',
          file: 'postgresql.auto.conf',
          line: 1,
          reason: "loads libraries the backup's manifest does not record (it records 'pg_stat_statements')",
        },
      ]);
      expect(await readFile(join(dir, 'postgresql.conf'), 'utf8')).toBe(conf);
      // A manifest without the record (older rookery): every library setting counts as a change.
      const older = await neutraliseRestoredSettings(dir, null);
      expect(older.neutralised.map((entry) => entry.setting)).toEqual(['shared_preload_libraries', 'dynamic_library_path']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("sets rookery's own values: its wal-push when archiving is kept, empty commands otherwise", () => {
    const request = {
      selfCommand: ['/usr/bin/node', '/opt/rookery/bin/rookery.js'],
      tier: 'oltp' as const,
      target: { kind: 'latest' as const },
      archiveMode: 'keep' as const,
      envFile: '/data/pg_wal/rookery-restore.env',
    };
    expect(Object.fromEntries(guardedSettings(request, ['shared_preload_libraries']))).toEqual({
      archive_command: '/usr/bin/node /opt/rookery/bin/rookery.js --env-file=/data/pg_wal/rookery-restore.env wal-push %p --tier oltp',
      archive_library: '',
      recovery_end_command: '',
      archive_cleanup_command: '',
      ssl_passphrase_command: '',
      shared_preload_libraries: '',
    });
    expect(Object.fromEntries(guardedSettings({ ...request, archiveMode: 'off' }, []))['archive_command']).toBe('');
    // A neutralised library setting falls back to the backup's record, not to nothing.
    expect(
      Object.fromEntries(guardedSettings(request, ['shared_preload_libraries'], { shared_preload_libraries: 'pg_stat_statements' }))[
        'shared_preload_libraries'
      ],
    ).toBe('pg_stat_statements');
    expect(Object.fromEntries(guardedSettings(null, []))['restore_command']).toBe('');
  });
});
