import { backupDateFolder, compareBackupIds, compareBackupsByAge, isBackupId, makeBackupId } from './backup-id';
import { formatLsn, isValidLsn, parseLsn, walSegmentName } from './lsn';
import { UnsignedManifest, canonicalJson, codecExtension, isManifestIntact, signManifest } from './manifest';
import { Secret, redactUrl } from './secret';

describe('LSN math', () => {
  it.each([
    ['0/0', 0n],
    ['0/3000028', 0x3000028n],
    ['16/B374D848', (0x16n << 32n) | 0xb374d848n],
    ['FFFFFFFF/FFFFFFFF', 0xffffffffffffffffn],
  ])('parses and formats %s', (text, value) => {
    expect(parseLsn(text)).toBe(value);
    expect(formatLsn(value)).toBe(text);
  });

  it.each(['', '0', '0/', '/1', 'G/1', '123456789/0', '0/3000028 junk'])('refuses %j', (text) => {
    expect(isValidLsn(text)).toBe(false);
    expect(() => parseLsn(text)).toThrow(RangeError);
  });

  it.each([
    [1, '0/3000028', '000000010000000000000003'],
    [1, '0/FFFFFFF', '00000001000000000000000F'],
    [2, '1/0', '000000020000000100000000'],
    [3, '16/B374D848', '0000000300000016000000B3'],
  ])('names the WAL segment of timeline %d at %s', (timeline, lsn, name) => {
    expect(walSegmentName(timeline, parseLsn(lsn))).toBe(name);
  });
});

describe('backup ids', () => {
  it('sort by time and name the tier', () => {
    const id = makeBackupId('oltp', new Date('2026-11-26T02:00:00.123Z'));
    expect(id).toBe('20261126T020000Z-oltp');
    expect(isBackupId(id)).toBe(true);
    expect(makeBackupId('oltp', new Date('2026-11-26T02:00:01Z')) > id).toBe(true);
    expect(backupDateFolder(new Date('2026-11-26T23:59:59Z'))).toBe('2026-11-26');
    expect(isBackupId('../etc/passwd')).toBe(false);
  });

  it('order by age: the second, then the suffix that keeps one second apart (none, 2, … 10), which plain string order gets wrong', () => {
    const second = new Date('2026-11-26T02:00:00Z');
    const ids = [
      '20261126T020001Z-oltp',
      ...['10', '9', '2'].map((suffix) => makeBackupId('oltp', second, suffix)),
      makeBackupId('oltp', second),
    ];
    expect([...ids].sort(compareBackupIds)).toEqual([
      '20261126T020000Z-oltp',
      '20261126T020000Z-oltp-2',
      '20261126T020000Z-oltp-9',
      '20261126T020000Z-oltp-10',
      '20261126T020001Z-oltp',
    ]);
    // In a manifest key, the folder of the second backup of a second sorts before the first's.
    expect('20261126T020000Z-oltp-2/manifest.json' < '20261126T020000Z-oltp/manifest.json').toBe(true);
    expect(compareBackupIds('20261126T020000Z-oltp-2', '20261126T020000Z-oltp')).toBeGreaterThan(0);
    expect(compareBackupIds('custom-id', '20261126T020000Z-oltp')).toBeGreaterThan(0);
    expect(compareBackupIds('20261126T020000Z-oltp', '20261126T020000Z-oltp')).toBe(0);
    const at = '2026-11-26T02:00:00.500Z';
    expect(
      compareBackupsByAge({ startedAt: at, id: '20261126T020000Z-oltp-10' }, { startedAt: at, id: '20261126T020000Z-oltp-9' }),
    ).toBeGreaterThan(0);
    expect(
      compareBackupsByAge(
        { startedAt: '2026-11-26T02:00:00.400Z', id: '20261126T020000Z-oltp-10' },
        { startedAt: at, id: '20261126T020000Z-oltp-9' },
      ),
    ).toBeLessThan(0);
  });
});

describe('manifest checksum', () => {
  const unsigned: UnsignedManifest = {
    formatVersion: 1,
    id: '20261126T020000Z-oltp',
    tier: 'oltp',
    database: 'penguinmails_oltp',
    type: 'full',
    method: 'physical',
    startedAt: '2026-11-26T02:00:00.000Z',
    finishedAt: '2026-11-26T02:01:00.000Z',
    postgres: { version: '15.8', versionNum: 150008, systemIdentifier: '7311' },
    timeline: 1,
    startLsn: '0/2000028',
    stopLsn: '0/2000100',
    walRange: { start: '000000010000000000000002', stop: '000000010000000000000002' },
    parent: null,
    retentionUntil: '2027-02-24T02:01:00.000Z',
    storageClass: 'STANDARD_IA',
    regions: ['us-east-1'],
    bytes: 100,
    storedBytes: 40,
    artifacts: [],
    tool: { name: 'rookery', version: '0.1.0' },
  };

  it('is independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
  });

  it('detects any change to a signed manifest', () => {
    const signed = signManifest(unsigned);
    expect(isManifestIntact(signed)).toBe(true);
    expect(isManifestIntact(JSON.parse(JSON.stringify(signed)))).toBe(true);
    expect(isManifestIntact({ ...signed, stopLsn: '0/2000200' })).toBe(false);
    expect(isManifestIntact({ ...signed, checksum: '' })).toBe(false);
  });

  it.each([
    ['none', ''],
    ['gzip', '.gz'],
    ['zstd', '.zst'],
    ['lz4', '.lz4'],
  ] as const)('codec %s has extension %j', (codec, extension) => {
    expect(codecExtension(codec)).toBe(extension);
  });
});

describe('secrets', () => {
  it('never print', () => {
    const secret = new Secret('hunter2');
    expect(`${secret}`).toBe('[redacted]');
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(secret.reveal()).toBe('hunter2');
  });

  it.each([
    ['postgres://backup:hunter2@db:5432/x', 'hunter2'],
    ['s3://bucket/p?region=r&secretKey=abc123', 'abc123'],
  ])('are redacted from URLs: %s', (url, secret) => {
    expect(redactUrl(url)).not.toContain(secret);
  });
});
