import { ArtifactRecord, BackupManifest, UnsignedManifest } from '@rookery/core';
import { makeManifest } from '@rookery/testing';
import { checkChain } from './backup-chain';

const FULL = '20261126T020000Z-oltp';
const INC1 = '20261126T030000Z-oltp';
const INC2 = '20261126T040000Z-oltp';

function artifact(name: string, kind: ArtifactRecord['kind'], tablespace?: number): ArtifactRecord {
  return {
    name,
    kind,
    ...(tablespace ? { tablespace: { oid: tablespace, name: `ts${tablespace}`, location: `/srv/ts${tablespace}` } } : {}),
    bytes: 100,
    storedBytes: 40,
    sha256: 'a'.repeat(64),
    logicalSha256: 'b'.repeat(64),
    compression: { codec: 'zstd', level: 1 },
    encryption: { algorithm: 'none' },
  };
}

function full(overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  return makeManifest({
    id: FULL,
    storedBytes: 1000,
    artifacts: [artifact('base.tar.zst', 'base-tar'), artifact('base.pageidx.zst', 'page-index')],
    ...overrides,
  });
}

function incremental(id: string, parent: string, hour: number, overrides: Partial<UnsignedManifest> = {}): BackupManifest {
  const at = `2026-11-26T${String(hour).padStart(2, '0')}:00:00.000Z`;
  return makeManifest({
    id,
    type: 'incremental',
    parent,
    startedAt: at,
    finishedAt: at,
    storedBytes: 50,
    artifacts: [artifact('base.blkinc.zst', 'base-incremental'), artifact('base.pageidx.zst', 'page-index')],
    ...overrides,
  });
}

describe('checkChain', () => {
  it('follows an incremental through its parents to the full, with the stored bytes of each link', () => {
    const backups = [full(), incremental(INC1, FULL, 3), incremental(INC2, INC1, 4)];
    expect(checkChain(backups[2], { backups, damaged: [] })).toEqual({
      ok: true,
      links: [
        { id: FULL, type: 'full', finishedAt: '2026-11-26T02:03:00.000Z', storedBytes: 1000 },
        { id: INC1, type: 'incremental', finishedAt: '2026-11-26T03:00:00.000Z', storedBytes: 50 },
        { id: INC2, type: 'incremental', finishedAt: '2026-11-26T04:00:00.000Z', storedBytes: 50 },
      ],
    });
    expect(checkChain(backups[0], { backups, damaged: [] })).toMatchObject({ ok: true, links: [{ id: FULL }] });
  });

  it('names a missing parent and the child that needs it', () => {
    const backups = [full(), incremental(INC2, INC1, 4)];
    const check = checkChain(backups[1], { backups, damaged: [] });
    expect(check).toMatchObject({ ok: false, links: [{ id: INC2 }], error: { code: 'INCREMENTAL_CHAIN' } });
    expect(check.error?.message).toBe(`parent backup '${INC1}' of incremental backup '${INC2}' is not in the repository`);
  });

  it('names a parent whose manifest cannot be trusted (damaged or unsigned), with what is wrong with it', () => {
    const backups = [incremental(INC1, FULL, 3), incremental(INC2, INC1, 4)];
    const damaged = [
      {
        key: `oltp/backups/2026-11-26/${FULL}/manifest.json`,
        problem: `manifest of backup '${FULL}' is not signed`,
        hint: 'rookery repository sign',
      },
    ];
    const check = checkChain(backups[1], { backups, damaged });
    expect(check.ok).toBe(false);
    expect(check.links.map((link) => link.id)).toEqual([INC1, INC2]);
    expect(check.error?.message).toBe(
      `parent backup '${FULL}' of incremental backup '${INC1}' cannot be trusted: manifest of backup '${FULL}' is not signed`,
    );
  });

  it.each<[string, Partial<UnsignedManifest>, string]>([
    ['another method', { method: 'logical', artifacts: [] }, 'a logical backup cannot be the parent of a physical one'],
    [
      'another database system',
      { postgres: { version: '15.8', versionNum: 150008, systemIdentifier: '1' } },
      'it is of database system 1, not 7312345678901234567',
    ],
    ['a later start', { startedAt: '2026-11-26T05:00:00.000Z' }, 'it started after its child'],
  ])('refuses a parent of %s', (_case, parentOverrides, problem) => {
    const parent = full(parentOverrides);
    const child = incremental(INC1, FULL, 3, {
      artifacts: [artifact('base.blkinc.zst', 'base-incremental'), artifact('ts.blkinc.zst', 'tablespace-incremental', 16400)],
    });
    const check = checkChain(child, { backups: [parent, child], damaged: [] });
    expect(check.ok).toBe(false);
    expect(check.error?.message).toContain(`incremental backup '${INC1}' cannot follow parent backup '${FULL}': ${problem}`);
  });

  it('follows a tablespace incremental whose parent lacks the tablespace: created since, taken against nothing', () => {
    const parent = full({});
    const child = incremental(INC1, FULL, 3, {
      artifacts: [artifact('base.blkinc.zst', 'base-incremental'), artifact('ts.blkinc.zst', 'tablespace-incremental', 16400)],
    });
    expect(checkChain(child, { backups: [parent, child], damaged: [] })).toMatchObject({ ok: true, links: [{ id: FULL }, { id: INC1 }] });
  });

  it('accepts a tablespace incremental against the same tablespace of the parent (its full tar or its incremental)', () => {
    const parent = full({ artifacts: [artifact('base.tar.zst', 'base-tar'), artifact('ts.tar.zst', 'tablespace-tar', 16400)] });
    const middle = incremental(INC1, FULL, 3, {
      artifacts: [artifact('base.blkinc.zst', 'base-incremental'), artifact('ts.blkinc.zst', 'tablespace-incremental', 16400)],
    });
    const child = incremental(INC2, INC1, 4, { artifacts: middle.artifacts });
    expect(checkChain(child, { backups: [parent, middle, child], damaged: [] }).ok).toBe(true);
  });

  it('refuses a chain that loops instead of following it forever', () => {
    const first = incremental(INC1, INC2, 3);
    const second = incremental(INC2, INC1, 3);
    expect(checkChain(second, { backups: [first, second], damaged: [] }).error?.message).toMatch(/loops/);
  });
});
