import { SourceUnavailableError } from '@rookery/core';
import { checkTablespaces } from './physical-backup.service';

const fast = { oid: 16384, name: 'fast', location: '/srv/fast' };

describe('checkTablespaces', () => {
  it('accepts tablespaces outside the data directory on PostgreSQL 15+', () => {
    expect(checkTablespaces('db', { versionNum: 150_004, dataDirectory: '/var/lib/pg/data' }, [fast])).toEqual([fast]);
    // A sibling whose name starts like the data directory is outside it.
    const sibling = { ...fast, location: '/var/lib/pg/data2' };
    expect(checkTablespaces('db', { versionNum: 150_004, dataDirectory: '/var/lib/pg/data/' }, [sibling])).toEqual([sibling]);
  });

  it.each([
    [{ versionNum: 150_004, dataDirectory: '/srv' }, fast, /tablespace 'fast' \(16384\) is inside the data directory \(\/srv\/fast\)/],
    [{ versionNum: 150_004, dataDirectory: '/srv/fast' }, fast, /inside the data directory/],
    [{ versionNum: 140_010, dataDirectory: '/var/lib/pg/data' }, fast, /from PostgreSQL 15 on \(server 140010\)/],
    [{ versionNum: 150_004, dataDirectory: '/var/lib/pg/data' }, { ...fast, location: 'relative' }, /has no absolute location/],
  ])('refuses %j with %j', (server, tablespace, message) => {
    expect(() => checkTablespaces('db', server, [tablespace])).toThrow(SourceUnavailableError);
    expect(() => checkTablespaces('db', server, [tablespace])).toThrow(message);
  });

  it('accepts a cluster without tablespaces on any version', () => {
    expect(checkTablespaces('db', { versionNum: 130_000 }, [])).toEqual([]);
  });
});
