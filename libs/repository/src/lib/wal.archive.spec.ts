import { WalFileName, parseWalFileName } from '@rookery/core';
import { walLayout } from './wal.archive';

const SHA = 'ab'.repeat(32);

function file(name: string): WalFileName {
  const parsed = parseWalFileName(name);
  if (!parsed) throw new Error(`not a WAL file name: ${name}`);
  return parsed;
}

describe('walLayout', () => {
  it.each([
    ['000000010000000000000003', 'zstd', false, 'oltp/wal/00000001/000000010000000000000003-' + SHA + '.zst'],
    ['000000020000000100000000.partial', 'gzip', true, 'oltp/wal/00000002/000000020000000100000000.partial-' + SHA + '.gz.enc'],
    ['0000001A.history', 'none', false, 'oltp/wal/0000001A/0000001A.history-' + SHA],
    [
      '000000010000000000000002.00000028.backup',
      'lz4',
      true,
      'oltp/wal/00000001/000000010000000000000002.00000028.backup-' + SHA + '.lz4.enc',
    ],
  ] as const)('keys %s (%s, encrypted %s) and parses the key back', (name, codec, encrypted, key) => {
    expect(walLayout.key('oltp', file(name), SHA, codec, encrypted)).toBe(key);
    expect(walLayout.parseKey(key)).toEqual({ key, tier: 'oltp', file: file(name), sha256: SHA, codec, encrypted });
  });

  it.each([
    ['oltp/wal/00000001/000000010000000000000003-' + SHA + '.zst.tmp-1234', 'a temporary upload'],
    ['oltp/wal/00000001/000000010000000000000003-' + SHA.slice(2) + '.zst', 'short checksum'],
    ['oltp/wal/00000001/000000010000000000000003-' + SHA.toUpperCase() + '.zst', 'upper-case checksum'],
    ['oltp/wal/00000001/000000010000000000000003.zst', 'no checksum'],
    ['oltp/wal/00000001/000000010000000000000003-' + SHA + '.br', 'unknown codec'],
    ['oltp/wal/00000001/000000010000000000000003-' + SHA + '.enc.zst', 'suffixes out of order'],
    ['oltp/wal/00000002/000000010000000000000003-' + SHA + '.zst', 'timeline folder differs from the name'],
    ['oltp/wal/00000001/RECOVERYXLOG-' + SHA + '.zst', 'not a WAL file name'],
    ['oltp/backups/2026-11-26/x/000000010000000000000003-' + SHA + '.zst', 'outside wal/'],
    ['prefix/oltp/wal/00000001/000000010000000000000003-' + SHA + '.zst', 'a store prefix left in the key'],
  ])('ignores %s (%s)', (key) => {
    expect(walLayout.parseKey(key)).toBeNull();
  });

  it('puts every file of a timeline under its folder', () => {
    expect(walLayout.timelinePrefix('queue', 26)).toBe('queue/wal/0000001A/');
    expect(
      walLayout.key('queue', file('0000001A0000000000000001'), SHA, 'zstd', false).startsWith(walLayout.timelinePrefix('queue', 26)),
    ).toBe(true);
  });
});
