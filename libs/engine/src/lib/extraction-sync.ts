import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** How long the loop waits for tar to name another member before it flushes the current one again. */
const DEFAULT_IDLE_MS = 50;

/**
 * Flushes restored files to disk while tar is still extracting, so the disk writes while the CPU
 * decodes: the kernel would otherwise keep a whole base backup dirty in the page cache (the
 * background writeback threshold is a share of RAM) and the final sync would write all of it
 * after the last byte was extracted, adding to the restore's time.
 *
 * tar names each member as it starts it, so a member is complete when the next one is named. One
 * file is synced at a time: complete members first, in order; when none is waiting, the member
 * tar is writing now (fdatasync flushes what it holds so far), then a short wait for news.
 *
 * Best effort only: failures are ignored (a member that is a symlink, or gone because the restore
 * failed). Durability still comes from the caller's sync of the whole file system after
 * extraction, which now finds little left to write.
 */
export class ExtractionSync {
  private current: string | null = null;
  private readonly complete: string[] = [];
  private loop: Promise<void> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private synced = 0;

  constructor(
    private readonly syncMember: (member: string) => Promise<void>,
    private readonly idleMs = DEFAULT_IDLE_MS,
  ) {}

  /** Syncs members of a tar extracted into `directory` (fdatasync; symlinks are not followed). */
  static inDirectory(directory: string, idleMs?: number): ExtractionSync {
    return new ExtractionSync((member) => fdatasyncPath(join(directory, member)), idleMs);
  }

  /** Syncs that completed (complete and in-progress members). */
  get syncs(): number {
    return this.synced;
  }

  /** tar started extracting `member` (relative to the directory): the member before it is complete. */
  memberStarted(member: string): void {
    if (this.stopped) return;
    if (this.current !== null) this.complete.push(this.current);
    this.current = member;
    this.loop ??= this.run();
    this.wakeUp();
  }

  /** Stops syncing and resolves once no sync is in flight; what was not synced yet is left to the caller. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.complete.length = 0;
    this.wakeUp();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const member = this.complete.shift();
      if (member !== undefined) {
        await this.sync(member);
        continue;
      }
      const inProgress = this.current;
      if (inProgress !== null) await this.sync(inProgress);
      if (this.complete.length === 0 && !this.stopped) await this.idle();
    }
  }

  private async sync(member: string): Promise<void> {
    try {
      await this.syncMember(member);
      this.synced++;
    } catch {
      // Best effort: see the class comment.
    }
  }

  private idle(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.idleMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.wake = null;
    });
  }

  private wakeUp(): void {
    this.wake?.();
  }
}

/**
 * open, fdatasync, close. Read-only, never through a symlink, and non-blocking: opening a FIFO
 * for reading would otherwise wait for a writer forever (its fdatasync then fails, ignored).
 */
async function fdatasyncPath(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}
