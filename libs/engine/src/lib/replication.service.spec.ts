import { BackupManifest, IncrementalChainError } from '@rookery/core';
import { BackupCopyResult } from '@rookery/repository';
import { makeManifest } from '@rookery/testing';
import { brokenCopyLinks, copyParentsFirst } from './replication.service';

function backup(id: string, hour: number, parent: string | null = null): BackupManifest {
  const at = `2026-11-26T${String(hour).padStart(2, '0')}:00:00.000Z`;
  return makeManifest({ id, startedAt: at, finishedAt: at, type: parent ? 'incremental' : 'full', parent });
}

function result(manifest: BackupManifest, outcome: BackupCopyResult['outcome'], error?: Error): BackupCopyResult {
  return {
    backupId: manifest.id,
    tier: manifest.tier,
    region: 'secondary',
    outcome,
    written: [],
    repaired: [],
    bytes: 0,
    durationMs: 0,
    ...(error ? { error: error as BackupCopyResult['error'] } : {}),
  };
}

describe('copyParentsFirst', () => {
  const full = backup('f1', 2);
  const first = backup('i1', 3, 'f1');
  const second = backup('i2', 4, 'i1');
  const other = backup('f2', 5);

  it('copies oldest first, so each parent before its children, whatever the listing order', async () => {
    const copied: string[] = [];
    const results = await copyParentsFirst(
      [second, other, full, first],
      async (manifest) => (copied.push(manifest.id), result(manifest, 'copied')),
      () => Promise.reject(new Error('nothing is held back')),
    );
    expect(copied).toEqual(['f1', 'i1', 'i2', 'f2']);
    expect(results.map((entry) => entry.outcome)).toEqual(['copied', 'copied', 'copied', 'copied']);
  });

  it('holds back every descendant of a parent whose copy failed, naming the parent; other chains go on', async () => {
    const copied: string[] = [];
    const heldBack: [string, string][] = [];
    const results = await copyParentsFirst(
      [full, first, second, other],
      async (manifest) => (copied.push(manifest.id), result(manifest, manifest.id === 'i1' ? 'failed' : 'copied')),
      async (manifest, parent) => {
        heldBack.push([manifest.id, parent]);
        return result(manifest, 'failed', new IncrementalChainError(`its parent backup '${parent}' failed to copy there`));
      },
    );
    expect(copied).toEqual(['f1', 'i1', 'f2']);
    expect(heldBack).toEqual([['i2', 'i1']]);
    expect(results.map((entry) => [entry.backupId, entry.outcome])).toEqual([
      ['f1', 'copied'],
      ['i1', 'failed'],
      ['i2', 'failed'],
      ['f2', 'copied'],
    ]);
  });
});

describe('brokenCopyLinks', () => {
  const backups = [backup('f1', 2), backup('i1', 3, 'f1'), backup('i2', 4, 'i1'), backup('i9', 5, 'gone')];

  it('names the parent an incremental copied to the region lacks there, and the links after it', () => {
    const statuses = new Map([
      ['f1', 'failed' as const],
      ['i1', 'copied' as const],
      ['i2', 'copied' as const],
      ['i9', 'copied' as const],
    ]);
    expect(Object.fromEntries(brokenCopyLinks(backups, 'secondary', statuses))).toEqual({
      i1: "its parent backup 'f1' is failed in region 'secondary': the region cannot restore this incremental",
      i2: "a link before it is broken in region 'secondary': its parent backup 'f1' is failed in region 'secondary': the region cannot restore this incremental",
      i9: "its parent backup 'gone' is not in the primary repository: the chain is broken in every region",
    });
  });

  it('reports nothing for a chain copied whole, nor for a child not copied (its own status says so)', () => {
    const statuses = new Map([
      ['f1', 'copied' as const],
      ['i1', 'copied' as const],
      ['i2', 'missing' as const],
    ]);
    expect(brokenCopyLinks(backups.slice(0, 3), 'secondary', statuses).size).toBe(0);
  });
});
