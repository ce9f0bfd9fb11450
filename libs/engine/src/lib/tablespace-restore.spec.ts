import { ArtifactRecord, ConfigError, IntegrityError, RestoreTargetError } from '@rookery/core';
import { parseTablespaceMap, planTablespaces } from './tablespace-restore';

const artifact = (overrides: Partial<ArtifactRecord>): ArtifactRecord => ({
  name: 'base.tar.zst',
  kind: 'base-tar',
  bytes: 1,
  storedBytes: 1,
  sha256: 'x',
  compression: { codec: 'zstd', level: 1 },
  encryption: { algorithm: 'none' },
  ...overrides,
});

const backup = {
  id: 'b1',
  artifacts: [
    artifact({}),
    artifact({ name: 'tablespace-16384.tar.zst', kind: 'tablespace-tar', tablespace: { oid: 16384, name: 'fast', location: '/srv/fast' } }),
    artifact({
      name: 'tablespace-16390.tar.zst',
      kind: 'tablespace-tar',
      tablespace: { oid: 16390, name: 'cold', location: '/srv/cold/' },
    }),
  ],
};
const DATA = '/restore/data';

describe('planTablespaces', () => {
  it('keeps the original directories by default', () => {
    expect(planTablespaces(backup, DATA, {}).map((target) => target.restoredTo)).toEqual(['/srv/fast', '/srv/cold']);
  });

  it('maps by original location, name or OID, and puts the others under all/<oid>', () => {
    expect(planTablespaces(backup, DATA, { map: { '/srv/fast/': '/mnt/a' }, all: '/mnt/rest' }).map((target) => target.restoredTo)).toEqual(
      ['/mnt/a', '/mnt/rest/16390'],
    );
    expect(planTablespaces(backup, DATA, { map: { cold: '/mnt/c/' } }).map((target) => target.restoredTo)).toEqual(['/srv/fast', '/mnt/c']);
    expect(planTablespaces(backup, DATA, { map: { '16384': '/mnt/f' } })[0].restoredTo).toBe('/mnt/f');
  });

  it.each([
    [{ map: { '/srv/other': '/mnt/a' } }, ConfigError, /has no tablespace '\/srv\/other'.*/],
    [{ map: { fast: 'relative/dir' } }, ConfigError, /not an absolute path/],
    [{ all: 'relative' }, ConfigError, /--tablespace-map-all: 'relative' is not an absolute path/],
    [{ map: { fast: '/mnt/x', '16384': '/mnt/y' } }, ConfigError, /names tablespace 'fast' twice/],
    [{ map: { fast: '/restore/data/ts' } }, RestoreTargetError, /inside the data directory/],
    [{ map: { fast: '/restore' } }, RestoreTargetError, /around the data directory/],
    [{ map: { fast: DATA } }, RestoreTargetError, /the data directory/],
    [{ map: { fast: '/mnt/x', cold: '/mnt/x/y' } }, RestoreTargetError, /would share \/mnt\/x/],
    [{ map: { fast: '/mnt/x', cold: '/mnt/x' } }, RestoreTargetError, /would share \/mnt\/x/],
  ])('refuses %j', (mapping, type, message) => {
    expect(() => planTablespaces(backup, DATA, mapping)).toThrow(type);
    expect(() => planTablespaces(backup, DATA, mapping)).toThrow(message);
  });

  it('refuses a manifest whose tablespace artifact has no valid OID or location, or lists one twice', () => {
    const broken = (tablespace: unknown) => ({
      id: 'b2',
      artifacts: [artifact({ kind: 'tablespace-tar', tablespace: tablespace as ArtifactRecord['tablespace'] })],
    });
    expect(() => planTablespaces(broken(undefined), DATA, {})).toThrow(IntegrityError);
    expect(() => planTablespaces(broken({ oid: 0, name: 'x', location: '/x' }), DATA, {})).toThrow(IntegrityError);
    expect(() => planTablespaces(broken({ oid: 5, name: 'x', location: 'x' }), DATA, {})).toThrow(IntegrityError);
    const twice = { id: 'b3', artifacts: [backup.artifacts[1], backup.artifacts[1]] };
    expect(() => planTablespaces(twice, DATA, {})).toThrow(/lists a tablespace twice/);
  });
});

describe('parseTablespaceMap', () => {
  it('reads "<oid> <location>" lines, a backslash escaping the next character', () => {
    expect(parseTablespaceMap('16384 /srv/fast\n16390 /srv/with\\ space\\\\x\n')).toEqual([
      { oid: 16384, location: '/srv/fast' },
      { oid: 16390, location: '/srv/with space\\x' },
    ]);
    expect(parseTablespaceMap('')).toEqual([]);
  });

  it('refuses a line of another shape', () => {
    expect(() => parseTablespaceMap('fast /srv/fast\n')).toThrow(IntegrityError);
  });
});
