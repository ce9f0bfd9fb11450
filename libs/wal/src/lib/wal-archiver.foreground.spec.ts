import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { walSegmentBytes } from '@rookery/testing';
import { runsWalPushFor } from './wal-archiver.service';
import { ForegroundFailure, awaitAcknowledgement } from './wal-archiver.foreground';
import { globalArgsOf, parseWalPushArgs } from './wal.arguments';
import { identityKey, sameIdentity, secondsWithNanos } from './wal.spool';

describe('parseWalPushArgs (the fast path takes only what it fully understands)', () => {
  it.each([
    [
      ['wal-push', 'pg_wal/000000010000000000000003', '--tier', 'oltp', '--config', '/etc/r.yaml'],
      { path: 'pg_wal/000000010000000000000003', tier: 'oltp', configFile: '/etc/r.yaml' },
    ],
    [
      ['--config=/etc/r.yaml', 'wal-push', 'p', '--tier=queue', '--json'],
      { path: 'p', tier: 'queue', configFile: '/etc/r.yaml', json: true },
    ],
    [['wal-push', 'p', '--tier', 'oltp', '--repo', 'file:///a', '--repo', 'file:///b'], { repositories: ['file:///a', 'file:///b'] }],
  ])('%j', (args, expected) => {
    expect(parseWalPushArgs(args)).toMatchObject(expected);
  });

  it.each([
    [['wal-push', 'p']], // no tier
    [['wal-push', 'p', '--tier', 'oltp', '--pg-url', 'postgres://x']], // an option it does not know
    [['wal-push', 'p', 'q', '--tier', 'oltp']], // two paths
    [['wal-get', 'n', 'd', '--tier', 'oltp']],
    [['wal-push', 'p', '--tier', 'oltp', '--help']],
    [['wal-push', 'p', '--tier', 'oltp', '--config']], // missing value
    [['wal-push', 'p', '--tier', '../x']],
  ])('%j goes to the full CLI', (args) => {
    expect(parseWalPushArgs(args)).toBeNull();
  });

  it('hands the background archiver only the --config/--repo it was given', () => {
    expect(globalArgsOf({ configFile: '/etc/r.yaml', repositories: ['s3://b/p'] })).toEqual([
      '--config',
      '/etc/r.yaml',
      '--repo',
      's3://b/p',
    ]);
  });
});

describe('file identity', () => {
  const identity = { dev: '65024', ino: '2220688', size: '16777216', mtimeNs: '1795709420364723968', ctimeNs: '1795709420000000005' };

  it('prints as GNU stat -c %d:%i:%s:%.9Y:%.9Z does (the shell fast path compares the strings)', () => {
    expect(identityKey(identity)).toBe('65024:2220688:16777216:1795709420.364723968:1795709420.000000005');
    expect(secondsWithNanos('5')).toBe('0.000000005');
  });

  it('differs when any part differs', () => {
    expect(sameIdentity(identity, { ...identity })).toBe(true);
    for (const key of Object.keys(identity) as (keyof typeof identity)[]) {
      expect(sameIdentity(identity, { ...identity, [key]: `${identity[key]}1` })).toBe(false);
    }
  });
});

describe('runsWalPushFor (rookery check)', () => {
  it('recognises the shell fast path as rookery wal-push', () => {
    expect(runsWalPushFor('ROOKERY_NODE=/usr/bin/node /opt/rookery/bin/rookery-wal-push %p --tier oltp --config /etc/r.yaml', 'oltp')).toBe(
      true,
    );
    expect(runsWalPushFor('/opt/rookery/bin/rookery-wal-push %p --tier queue', 'oltp')).toBe(false);
  });
});

const SEGMENT = '000000010000000000000003';

describe('awaitAcknowledgement refuses what is not a WAL segment at once', () => {
  let work: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-foreground-'));
  });

  afterAll(() => rm(work, { recursive: true, force: true }));

  it.each([
    ['an 8-byte file', Buffer.from('junkjunk'), /is 8 bytes, too short for a WAL page header; nothing was stored/],
    [
      'a segment cut short',
      walSegmentBytes(SEGMENT, { size: 1024 * 1024 }).subarray(0, 4096),
      /is 4096 bytes, not a whole segment of 1048576 bytes/,
    ],
    ['zeros', Buffer.alloc(16 * 1024 * 1024), /magic 0x0000 is no PostgreSQL version's/],
  ])('%s: no archiver started, no wait', async (_what, bytes, reason) => {
    const path = join(work, SEGMENT);
    await writeFile(path, bytes);
    const launcher = jest.fn();
    const settings = { spoolPath: join(work, 'spool'), store: 'file:///nowhere', archiveTimeoutSeconds: 3600 };
    const refused = awaitAcknowledgement({ path, tier: 'oltp', repositories: [], json: false }, settings, launcher);
    await expect(refused).rejects.toThrow(ForegroundFailure);
    await expect(refused).rejects.toThrow(reason);
    expect(launcher).not.toHaveBeenCalled();
  });
});
