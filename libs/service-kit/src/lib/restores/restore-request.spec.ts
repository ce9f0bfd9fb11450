import { isRookeryError } from '@rookery/core';
import { directoryUnderRoot, engineRestoreRequest, refusePassword, restoreLimits, restoreRequestSchema } from './restore-request';

function refusal(run: () => unknown): { code: string; message: string; hint?: string } {
  try {
    run();
  } catch (error) {
    if (isRookeryError(error)) return { code: error.code, message: error.message, hint: error.hint };
    throw error;
  }
  throw new Error('not refused');
}

describe('refusePassword (a logical target URL)', () => {
  it('answers host:port/database of a URL without a password', () => {
    expect(refusePassword('postgres://restore@db.internal:6432/content_copy')).toBe('db.internal:6432/content_copy');
    expect(refusePassword('postgresql://db.internal/content_copy?sslmode=require')).toBe('db.internal:5432/content_copy');
  });

  it.each([
    'postgres://restore:hunter2@db.internal:5432/content_copy',
    'postgres://restore:@db.internal:5432/content_copy?password=hunter2',
    'postgres://restore@db.internal:5432/content_copy?password=hunter2',
    'postgres://restore@db.internal:5432/content_copy?passfile=/home/hunter2/.pgpass',
  ])('refuses %s, and never repeats the password', (url) => {
    const refused = refusal(() => refusePassword(url));
    expect(refused).toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('target.url carries a password') });
    expect(JSON.stringify(refused)).not.toContain('hunter2');
  });

  it('refuses what is not a postgres URL, naming the field', () => {
    expect(refusal(() => refusePassword('db.internal:5432/x')).message).toContain('target.url');
    expect(refusal(() => refusePassword('mysql://db.internal/x')).message).toContain('expected postgres://');
  });
});

describe('directoryUnderRoot (a physical target directory)', () => {
  it('answers the normalised directory when it lies strictly below the root', () => {
    expect(directoryUnderRoot('/srv/restores/oltp-1', '/srv/restores')).toBe('/srv/restores/oltp-1');
    expect(directoryUnderRoot('/srv/restores/a/../oltp-2/', '/srv/restores/')).toBe('/srv/restores/oltp-2');
    expect(directoryUnderRoot('/srv/restores/..data', '/srv/restores')).toBe('/srv/restores/..data');
  });

  it.each([
    ['/srv/restores', 'is not under restores.directoryRoot'],
    ['/srv/restores/../etc', 'is not under restores.directoryRoot'],
    ['/srv/restores-other/x', 'is not under restores.directoryRoot'],
    ['/var/lib/postgresql/15/main', 'is not under restores.directoryRoot'],
    ['restores/oltp-1', 'is not an absolute path'],
  ])('refuses %s', (directory, why) => {
    expect(refusal(() => directoryUnderRoot(directory, '/srv/restores'))).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining(why),
    });
  });

  it('refuses every directory when no root is configured, saying what to set', () => {
    expect(refusal(() => directoryUnderRoot('/srv/restores/oltp-1', null))).toMatchObject({
      code: 'CONFIG_INVALID',
      message: 'physical restores through this service are off: restores.directoryRoot is not set',
      hint: expect.stringContaining('set restores.directoryRoot'),
    });
  });
});

describe('engineRestoreRequest', () => {
  const limits = { directoryRoot: '/srv/restores', logicalTargetHosts: ['db'] };
  const logical = { backup: 'latest', target: { kind: 'logical' as const, url: 'postgres://restore@db:5432/copy', clean: true } };
  const physical = { backup: '20261207T020000Z-oltp', target: { kind: 'physical' as const, directory: '/srv/restores/one' } };

  it('builds the engine request of a logical restore, with the target described without credentials', () => {
    expect(engineRestoreRequest('content', { method: 'logical' }, logical, limits)).toEqual({
      kind: 'logical',
      target: 'db:5432/copy',
      request: {
        tier: 'content',
        backup: 'latest',
        targetUrl: 'postgres://restore@db:5432/copy',
        clean: true,
        table: undefined,
        schema: undefined,
      },
    });
  });

  it('builds a physical restore that never starts the server, with a recovery target when one is given', () => {
    expect(engineRestoreRequest('oltp', { method: 'physical' }, physical, limits)).toEqual({
      kind: 'physical',
      target: '/srv/restores/one',
      request: { tier: 'oltp', backup: physical.backup, to: '/srv/restores/one', start: false },
    });
    const targeted = { ...physical, target: { ...physical.target, recoveryTarget: { lsn: '0/3000148' } } };
    expect(engineRestoreRequest('oltp', { method: 'physical' }, targeted, limits).request).toMatchObject({
      target: { kind: 'lsn', lsn: 0x3000148n },
    });
  });

  it("refuses a restore of the other method than the tier's, naming it", () => {
    expect(refusal(() => engineRestoreRequest('oltp', { method: 'physical' }, logical, limits)).message).toBe(
      "tier 'oltp' is backed up physically: a logical restore is not possible",
    );
    expect(refusal(() => engineRestoreRequest('content', { method: 'logical' }, physical, limits)).message).toBe(
      "tier 'content' is backed up logically: a physical restore is not possible",
    );
  });

  it('refuses a logical target on a server the limits do not list, and hostaddr (the service would hand it its credentials)', () => {
    const elsewhere = { ...logical, target: { ...logical.target, url: 'postgres://restore@evil.example/copy' } };
    expect(refusal(() => engineRestoreRequest('content', { method: 'logical' }, elsewhere, limits))).toMatchObject({
      message: 'target.url names the server evil.example:5432, which this service does not restore into',
      hint: 'restore into db, or list the server in restores.logicalTargetHosts',
    });
    const otherPort = { ...logical, target: { ...logical.target, url: 'postgres://restore@db:6432/copy' } };
    expect(refusal(() => engineRestoreRequest('content', { method: 'logical' }, otherPort, limits)).message).toContain('db:6432');
    const listedPort = { ...limits, logicalTargetHosts: ['db:6432'] };
    expect(engineRestoreRequest('content', { method: 'logical' }, otherPort, listedPort).target).toBe('db:6432/copy');
    const redirected = { ...logical, target: { ...logical.target, url: 'postgres://restore@db/copy?hostaddr=203.0.113.9' } };
    expect(refusal(() => engineRestoreRequest('content', { method: 'logical' }, redirected, limits)).message).toContain('hostaddr');
    const hostParameter = { ...logical, target: { ...logical.target, url: 'postgres://restore@db/copy?host=evil.example' } };
    expect(refusal(() => engineRestoreRequest('content', { method: 'logical' }, hostParameter, limits)).message).toContain('evil.example');
  });

  it("limits logical restores to the tier's own server unless restores.logicalTargetHosts lists others", () => {
    const tiers = { content: { pgUrl: { reveal: () => 'postgres://backup:pw@pg.internal:5433/content' } } } as never;
    expect(restoreLimits({ restores: { directoryRoot: null, logicalTargetHosts: null }, tiers }, 'content')).toEqual({
      directoryRoot: null,
      logicalTargetHosts: ['pg.internal:5433'],
    });
    expect(restoreLimits({ restores: { directoryRoot: null, logicalTargetHosts: ['copy'] }, tiers }, 'content').logicalTargetHosts).toEqual(
      ['copy'],
    );
  });

  it('refuses two recovery targets at once', () => {
    const two = { ...physical, target: { ...physical.target, recoveryTarget: { lsn: '0/3000148', name: 'before-migration' } } };
    expect(refusal(() => engineRestoreRequest('oltp', { method: 'physical' }, two, limits)).message).toContain(
      'only one recovery target may be given',
    );
  });
});

describe('restoreRequestSchema', () => {
  it('refuses unknown fields at any depth and a physical restore asked to start', () => {
    expect(restoreRequestSchema.safeParse({ backup: 'latest', target: { kind: 'physical', directory: '/x', start: true } }).success).toBe(
      false,
    );
    expect(restoreRequestSchema.safeParse({ backup: 'latest', target: { kind: 'logical', url: 'postgres://h/d', jobs: 4 } }).success).toBe(
      false,
    );
    expect(
      restoreRequestSchema.safeParse({ backup: 'latest', tier: 'oltp', target: { kind: 'logical', url: 'postgres://h/d' } }).success,
    ).toBe(false);
    expect(restoreRequestSchema.safeParse({ backup: 'latest', target: { kind: 'physical', directory: '/x', start: false } }).success).toBe(
      true,
    );
  });
});
