import { FileHandle, chmod, chown, stat } from 'node:fs/promises';

/** An OS account by number: who owns what a filesystem store creates. */
export interface FsAccount {
  uid: number;
  gid: number;
}

/** Directories of a filesystem repository: its owner's alone. */
export const REPOSITORY_DIRECTORY_MODE = 0o700;
/** Files of a filesystem repository: its owner's alone. */
export const REPOSITORY_FILE_MODE = 0o600;
/**
 * Directories of a repository shared by a group (repository.group): setgid (new entries get the
 * group), owner and group rwx (a member that archives creates entries), nobody else.
 */
export const SHARED_DIRECTORY_MODE = 0o2770;
/** Files of a repository shared by a group: owner rw, group r (files are written once, never updated in place), nobody else. */
export const SHARED_FILE_MODE = 0o640;
/** Directories rookery creates above a repository's root: traversable, never listable. */
export const PARENT_DIRECTORY_MODE = 0o711;

export interface FsRepositoryAccessOptions {
  /**
   * The account a repository belongs to when rookery runs as root and the repository's root
   * directory does not exist yet or is root's own (the account the clusters run as, or the
   * configured repository.owner). Asked at most once, at the first write.
   */
  defaultOwner?: () => FsAccount | null;
  /**
   * A group shared by the accounts that use the repository (repository.group): what rookery
   * creates gets it, directories with setgid (so do their new entries) and group write.
   */
  group?: number;
}

/**
 * Who owns what a filesystem repository is made of (pgBackRest's model): one account, the owner of
 * the repository's root directory. Run as that account, rookery's entries are its own already;
 * run as root, every directory and file rookery creates is handed to that account, so the
 * archiver (archive_command as `postgres`) can go on writing where root wrote first, and a
 * restored server's restore_command can read what recovery needs. Modes are 0700 and 0600 whoever
 * runs, or 02770 and 0640 with a shared group: nothing in the repository is world-readable.
 */
export class FsRepositoryAccess {
  private owner: Promise<FsAccount | null> | undefined;

  constructor(
    private readonly root: string,
    private readonly options: FsRepositoryAccessOptions = {},
  ) {}

  /** Gives a directory rookery just created inside the repository (the root included) its owner and mode. */
  async adoptDirectory(path: string): Promise<void> {
    const owner = await this.ownerOfNewEntries();
    if (owner) await chown(path, owner.uid, owner.gid);
    await chmod(path, this.directoryMode);
  }

  /** Gives a file being written (still under its temporary name) its owner and mode. */
  async adoptFile(handle: FileHandle): Promise<void> {
    const owner = await this.ownerOfNewEntries();
    if (owner) await handle.chown(owner.uid, owner.gid);
    await handle.chmod(this.fileMode);
  }

  /** The mode of a new directory: the owner's alone, or shared with the group. */
  get directoryMode(): number {
    return this.options.group === undefined ? REPOSITORY_DIRECTORY_MODE : SHARED_DIRECTORY_MODE;
  }

  /** The mode of a new file: the owner's alone, or readable by the group. */
  get fileMode(): number {
    return this.options.group === undefined ? REPOSITORY_FILE_MODE : SHARED_FILE_MODE;
  }

  /**
   * The account and group to hand new entries to, or null when they stay the creator's: rookery
   * does not run as root and no group is shared, or runs as root on a repository that is root's
   * and no other account was named.
   */
  ownerOfNewEntries(): Promise<FsAccount | null> {
    this.owner ??= this.resolveOwner();
    return this.owner;
  }

  private async resolveOwner(): Promise<FsAccount | null> {
    const uid = process.getuid?.();
    const owner = uid === 0 ? await this.repositoryAccount() : null;
    const group = this.options.group;
    if (group === undefined) return owner;
    return { uid: owner?.uid ?? uid ?? 0, gid: group };
  }

  /** The owner of the root directory, or the default owner while the root is missing or root's. */
  private async repositoryAccount(): Promise<FsAccount | null> {
    const existing = await stat(this.root).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (existing && existing.uid !== 0) return { uid: existing.uid, gid: existing.gid };
    return this.options.defaultOwner?.() ?? null;
  }
}
