import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface DirectoryEntry {
  path: string;
  uid: number;
  gid: number;
  /** Permission bits, setuid/setgid/sticky included. */
  mode: number;
  directory: boolean;
}

/** Every directory and file under `dir`, the directory itself first, with its owner and mode. */
export async function directoryEntries(dir: string): Promise<DirectoryEntry[]> {
  const paths = [dir, ...(await readdir(dir, { recursive: true })).map((entry) => join(dir, entry))];
  return Promise.all(
    paths.map(async (path) => {
      const stats = await lstat(path);
      return { path, uid: stats.uid, gid: stats.gid, mode: stats.mode & 0o7777, directory: stats.isDirectory() };
    }),
  );
}

/** The entries anyone at all may read, list or enter (any "other" permission bit). */
export async function worldAccessibleEntries(dir: string): Promise<DirectoryEntry[]> {
  return (await directoryEntries(dir)).filter((entry) => (entry.mode & 0o007) !== 0);
}

/** The entries under `dir` (itself included) whose mode is not `modes.directory` or `modes.file`, by kind. */
export async function entriesWithOtherModes(dir: string, modes: { directory: number; file: number }): Promise<DirectoryEntry[]> {
  return (await directoryEntries(dir)).filter((entry) => entry.mode !== (entry.directory ? modes.directory : modes.file));
}
