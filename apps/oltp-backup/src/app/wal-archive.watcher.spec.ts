import { parseWalFileName } from '@rookery/core';
import { WalObject } from '@rookery/repository';
import { newlyArchived } from './wal-archive.watcher';

const object = (name: string, archivedAt: string): WalObject => ({
  key: `oltp/wal/00000001/${name}-${'a'.repeat(64)}.zst`,
  tier: 'oltp',
  file: parseWalFileName(name) as WalObject['file'],
  sha256: 'a'.repeat(64),
  codec: 'zstd',
  encrypted: false,
  storedBytes: 1234,
  archivedAt: new Date(archivedAt),
});

describe('newlyArchived', () => {
  it('reports each file once; at start-up only the recent ones, older ones are marked as history', () => {
    const reported = new Set<string>();
    const listing = [
      object('000000010000000000000001', '2026-11-26T00:00:00Z'),
      object('000000010000000000000002', '2026-11-26T11:30:00Z'),
    ];
    expect(newlyArchived(listing, reported, new Date('2026-11-26T11:00:00Z')).map((file) => file.name)).toEqual([
      '000000010000000000000002',
    ]);
    expect(newlyArchived(listing, reported, null)).toEqual([]);
    const later = [
      ...listing,
      object('000000010000000000000003', '2026-11-26T11:40:00Z'),
      object('00000002.history', '2026-11-26T11:41:00Z'),
    ];
    expect(newlyArchived(later, reported, null)).toEqual([
      {
        tier: 'oltp',
        name: '000000010000000000000003',
        sha256: 'a'.repeat(64),
        bytes: 16 * 1024 * 1024,
        archivedAt: '2026-11-26T11:40:00.000Z',
      },
      { tier: 'oltp', name: '00000002.history', sha256: 'a'.repeat(64), bytes: 1234, archivedAt: '2026-11-26T11:41:00.000Z' },
    ]);
  });
});
