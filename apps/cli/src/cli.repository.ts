import { stat } from 'node:fs/promises';
import { RepositoryNotFoundError, Store, TIER_NAMES } from '@rookery/core';
import { FsStoreDriver } from '@rookery/storage';

/**
 * Called when a listing found no backups: that is "no backups" only in a repository that exists.
 * A directory or bucket that is not there, or that holds other things and none of rookery's
 * (no `<tier>/` key), is a mistyped --repo and fails, as pgBackRest fails on a missing stanza.
 * An existing, empty directory or bucket prefix is an empty repository.
 */
export async function assertRepositoryExists(store: Store): Promise<void> {
  for (const tier of TIER_NAMES) if (await anyObject(store, `${tier}/`)) return;
  if (await anyObject(store, '', (key) => !key.startsWith(STORE_PROBE_PREFIX)))
    throw new RepositoryNotFoundError(store.description, "it holds other files and none of rookery's (no tier directories)");
  if (store instanceof FsStoreDriver && !(await isDirectory(store.root)))
    throw new RepositoryNotFoundError(store.description, 'the directory does not exist');
}

/**
 * Where the stores' write probes (Store.check) live: rookery's own. A probe left by a process killed
 * between its write and its removal (seen when a backup was SIGKILLed during its first check) does
 * not make a repository "other files".
 */
const STORE_PROBE_PREFIX = '.rookery-probe';

/** Whether anything (that `counts`) is stored under `prefix` (reads no further than the first such object). */
async function anyObject(store: Store, prefix: string, counts: (key: string) => boolean = () => true): Promise<boolean> {
  for await (const object of store.list(prefix)) if (counts(object.key)) return true;
  return false;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}
