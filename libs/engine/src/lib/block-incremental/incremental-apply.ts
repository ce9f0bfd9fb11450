import { chmod, lstat, mkdir, open, rm, symlink, utimes } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { IncrementalChainError } from '@rookery/core';
import { ChainLink } from './chain-combiner';
import { readIncremental } from './incremental-format';
import { PAGE_SIZE } from './page-layout';
import { tarMemberPath } from '@rookery/pipeline';

/**
 * Applies one incremental to a directory that holds its parent's state (a restored base tar, or
 * that with the earlier incrementals applied): changed pages are written in place, files cut or
 * extended to their new size, whole files rewritten, removed members deleted. The plain path the
 * one-pass combiner is proved against, and the core of a delta restore. The incremental's own
 * checks (digests, block maps, checksum) hold as in the combiner; a directory that is not the
 * parent's state is refused where it shows (a file missing or of another size).
 */
export async function applyIncrementalToDirectory(directory: string, link: ChainLink, parentId: string): Promise<void> {
  const label = `incremental backup ${link.backupId}`;
  const at = (path: string) => join(directory, tarMemberPath(path, label));
  let file: { handle: Awaited<ReturnType<typeof open>>; path: string; size: number; mode: number; mtime: number } | null = null;
  const requireFile = async (path: string, size: number) => {
    const found = await lstat(at(path)).catch(() => null);
    if (!found?.isFile() || found.size !== size) {
      throw new IncrementalChainError(
        `${label} expects '${path}' of ${size} bytes in ${directory}, which has ${found ? `${found.isFile() ? 'a file' : 'no file'} of ${found.size} bytes` : 'nothing'} there: it is not the state of backup ${parentId}`,
      );
    }
    return found;
  };
  const replace = async (path: string) => {
    await rm(at(path), { recursive: true, force: true });
    await mkdir(dirname(at(path)), { recursive: true });
  };
  try {
    for await (const event of readIncremental(link.artifact, { backupId: link.backupId, parentId })) {
      switch (event.type) {
        case 'directory': {
          const found = await lstat(at(event.path)).catch(() => null);
          if (found && !found.isDirectory()) await rm(at(event.path), { force: true });
          await mkdir(at(event.path), { recursive: true });
          await chmod(at(event.path), event.mode);
          break;
        }
        case 'symlink':
          await replace(event.path);
          await symlink(event.linkTarget, at(event.path));
          break;
        case 'unchanged':
          if (((await requireFile(event.path, event.size)).mode & 0o7777) !== event.mode) await chmod(at(event.path), event.mode);
          break;
        case 'delta':
          if (event.parentPresent) await requireFile(event.path, event.parentSize);
          else await replace(event.path);
          file = { handle: await open(at(event.path), event.parentPresent ? 'r+' : 'w', 0o600), ...event };
          break;
        case 'whole':
          await replace(event.path);
          file = { handle: await open(at(event.path), 'w', 0o600), ...event };
          break;
        case 'page':
          await file?.handle.write(event.data, 0, event.data.length, event.page * PAGE_SIZE);
          break;
        case 'data':
          await file?.handle.write(event.data);
          break;
        case 'delta-end':
        case 'whole-end':
          if (file) {
            await file.handle.truncate(file.size);
            await file.handle.close();
            await chmod(at(file.path), file.mode);
            await utimes(at(file.path), file.mtime, file.mtime);
            file = null;
          }
          break;
        case 'removed':
          await rm(at(event.path), { recursive: true, force: true });
          break;
      }
    }
  } finally {
    await file?.handle.close().catch(() => undefined);
  }
}
