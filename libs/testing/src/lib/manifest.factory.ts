import { BackupManifest, UnsignedManifest, signManifest } from '@rookery/core';

/**
 * A signed manifest of a physical oltp backup with one base-tar artifact, for specs. Overrides
 * replace fields; the artifact's sizes follow `bytes` / `storedBytes` unless `artifacts` is given.
 */
export function makeManifest(overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  const bytes = overrides.bytes ?? 6_000_000_000;
  const storedBytes = overrides.storedBytes ?? 1_000_000_000;
  return signManifest({
    formatVersion: 1,
    id: '20261126T020000Z-oltp',
    tier: 'oltp',
    database: 'penguinmails_oltp',
    type: 'full',
    method: 'physical',
    startedAt: '2026-11-26T02:00:00.000Z',
    finishedAt: '2026-11-26T02:03:00.000Z',
    postgres: { version: '15.8', versionNum: 150008, systemIdentifier: '7312345678901234567' },
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    walRange: { start: '000000010000000000000002', stop: '000000010000000000000002' },
    parent: null,
    retentionUntil: '2027-02-24T02:03:00.000Z',
    storageClass: 'STANDARD_IA',
    regions: ['local'],
    bytes,
    storedBytes,
    artifacts: [
      {
        name: 'base.tar.zst',
        kind: 'base-tar',
        bytes,
        storedBytes,
        sha256: 'a'.repeat(64),
        logicalSha256: 'b'.repeat(64),
        compression: { codec: 'zstd', level: 1 },
        encryption: { algorithm: 'none' },
      },
    ],
    tool: { name: 'rookery', version: '0.1.0' },
    ...overrides,
  });
}
