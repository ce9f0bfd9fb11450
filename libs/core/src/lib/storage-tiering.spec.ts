import { archiveAccess, isArchiveStorageClass, transitionTarget, typicalRestoreTime } from './storage-tiering';

describe('transitionTarget', () => {
  const policy = [
    { afterDays: 30, storageClass: 'GLACIER' as const },
    { afterDays: 7, storageClass: 'STANDARD_IA' as const },
    { afterDays: 180, storageClass: 'DEEP_ARCHIVE' as const },
  ];

  it.each([
    ['STANDARD', 3, null],
    ['STANDARD', 7, 'STANDARD_IA'],
    ['STANDARD', 45, 'GLACIER'],
    ['STANDARD_IA', 45, 'GLACIER'],
    ['GLACIER', 45, null],
    ['GLACIER', 200, 'DEEP_ARCHIVE'],
    // Never warms an object up: a DEEP_ARCHIVE object of 45 days stays where it is.
    ['DEEP_ARCHIVE', 45, null],
    [undefined, 10, 'STANDARD_IA'],
  ])('%s at %i days → %s', (current, age, expected) => {
    expect(transitionTarget(current, age, policy)).toBe(expected);
  });

  it('does nothing without transitions', () => {
    expect(transitionTarget('STANDARD', 1000, [])).toBeNull();
  });
});

describe('archiveAccess', () => {
  it.each([
    [{ storageClass: 'STANDARD_IA' }, false, 'readable'],
    [{ storageClass: 'GLACIER_IR' }, false, 'readable'],
    [{ storageClass: 'GLACIER' }, false, 'needs-restore'],
    [{ storageClass: 'DEEP_ARCHIVE' }, false, 'needs-restore'],
    [{ storageClass: 'GLACIER', restore: { ongoing: true } }, false, 'restoring'],
    [{ storageClass: 'GLACIER', restore: { ongoing: false, expiresAt: new Date() } }, false, 'readable'],
    // A server that serves archived objects at once (S3Proxy): the probe read decides.
    [{ storageClass: 'DEEP_ARCHIVE' }, true, 'readable'],
  ] as const)('%j probe %s → %s', (info, probe, expected) => {
    expect(archiveAccess(info, probe)).toBe(expected);
  });
});

describe('archive classes and restore times', () => {
  it('knows which classes must be restored before a read', () => {
    expect(['STANDARD', 'STANDARD_IA', 'GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE'].filter(isArchiveStorageClass)).toEqual([
      'GLACIER',
      'DEEP_ARCHIVE',
    ]);
  });

  it('tells how long a restore typically takes', () => {
    expect(typicalRestoreTime('GLACIER', 'Standard')).toBe('3–5 hours');
    expect(typicalRestoreTime('GLACIER', 'Expedited')).toBe('1–5 minutes');
    expect(typicalRestoreTime('DEEP_ARCHIVE', 'Standard')).toBe('within 12 hours');
    expect(typicalRestoreTime('DEEP_ARCHIVE', 'Bulk')).toBe('within 48 hours');
  });
});
