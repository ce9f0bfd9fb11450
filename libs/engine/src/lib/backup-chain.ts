import { BackupManifest, IncrementalChainError, IntegrityError, RookeryError } from '@rookery/core';
import { DamagedManifest, repositoryLayout } from '@rookery/repository';

/** One backup of a chain as `rookery info --backup` shows it. */
export interface ChainMember {
  id: string;
  type: BackupManifest['type'];
  finishedAt: string;
  storedBytes: number;
}

/** Whether the chain of an incremental can be followed to its full through trusted manifests. */
export interface ChainCheck {
  ok: boolean;
  /** The chain as far as it could be followed: its full first, the backup checked last. */
  links: ChainMember[];
  error?: { code: string; message: string };
}

/**
 * Follows `backup`'s parents through the tier's listing (intact, trusted manifests) up to its full.
 * A broken link is named: the parent that is missing, or whose manifest cannot be trusted (damaged,
 * unsigned where signatures are required), with the child that needs it; so is a parent of another
 * method or database system, or one that started after its child.
 * Manifests only: cheap, nothing is read from the artifacts.
 */
export function checkChain(
  backup: BackupManifest,
  listing: { backups: readonly BackupManifest[]; damaged: readonly DamagedManifest[] },
): ChainCheck {
  const links: BackupManifest[] = [backup];
  try {
    for (let child = backup; child.type === 'incremental'; ) {
      const parent = trustedParent(child, listing);
      if (links.some((link) => link.id === parent.id))
        throw new IncrementalChainError(`the chain of backup '${backup.id}' loops at '${parent.id}'`);
      checkLink(child, parent);
      links.unshift(parent);
      child = parent;
    }
    return { ok: true, links: links.map(linkOf) };
  } catch (error) {
    if (!(error instanceof RookeryError)) throw error;
    return { ok: false, links: links.map(linkOf), error: { code: error.code, message: error.message } };
  }
}

function trustedParent(
  child: BackupManifest,
  listing: { backups: readonly BackupManifest[]; damaged: readonly DamagedManifest[] },
): BackupManifest {
  const hint = `the chain of '${child.id}' is broken: restore a backup before the break, and take a new full backup`;
  if (!child.parent) throw new IntegrityError(`incremental backup '${child.id}' names no parent backup`, { hint });
  const parent = listing.backups.find((candidate) => candidate.id === child.parent);
  if (parent) return parent;
  const damaged = listing.damaged.find((entry) => repositoryLayout.backupIdOf(entry.key) === child.parent);
  if (damaged) {
    throw new IncrementalChainError(
      `parent backup '${child.parent}' of incremental backup '${child.id}' cannot be trusted: ${damaged.problem}`,
      { hint: damaged.hint ?? hint },
    );
  }
  throw new IncrementalChainError(`parent backup '${child.parent}' of incremental backup '${child.id}' is not in the repository`, { hint });
}

/** What a child needs of its parent beyond existing: same kind of backup, same system, older. */
function checkLink(child: BackupManifest, parent: BackupManifest): void {
  const broken = (what: string) =>
    new IncrementalChainError(`incremental backup '${child.id}' cannot follow parent backup '${parent.id}': ${what}`);
  if (parent.method !== child.method) throw broken(`a ${parent.method} backup cannot be the parent of a ${child.method} one`);
  if (parent.database !== child.database) throw broken(`it is of database '${parent.database}', not '${child.database}'`);
  if (parent.postgres.systemIdentifier !== child.postgres.systemIdentifier) {
    throw broken(`it is of database system ${parent.postgres.systemIdentifier}, not ${child.postgres.systemIdentifier}`);
  }
  if (parent.startedAt > child.startedAt) throw broken(`it started after its child (${parent.startedAt} > ${child.startedAt})`);
  // A physical incremental's tar the parent lacks is a tablespace created since: its incremental
  // was taken against nothing (every page stored), which the restore combines with an empty tar.
}

function linkOf(manifest: BackupManifest): ChainMember {
  return { id: manifest.id, type: manifest.type, finishedAt: manifest.finishedAt, storedBytes: manifest.storedBytes };
}
