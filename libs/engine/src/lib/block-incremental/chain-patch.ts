import { FileHandle, chmod, chown, lchown, lstat, mkdir, open, readlink, rm, symlink, utimes } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join } from 'node:path';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { tarMemberPath } from '@rookery/pipeline';
import { ChainStates, PathState } from './chain-combiner';
import { IndexEntry, PageIndexLookup } from './page-index';
import { PAGE_DIGEST_BYTES, PAGE_SIZE, fileDigestOfPages, isPagedPath, pageCountOf } from './page-layout';
import { SpillHandle, SpillStore } from './spill-store';

export interface PatchChainOptions {
  /** Holds the full backup's tar, extracted as a full restore extracts it, and nothing else. */
  directory: string;
  /** The chain's incrementals, read (readChain). */
  chain: ChainStates;
  /**
   * The page index the full backup recorded of this tar: its entries stand for the tar's members
   * in the checks, its page digests for the base's pages. Null when the chain has no base for this
   * tar (a tablespace created since the full): the directory is empty then.
   */
  baseIndex: PageIndexLookup | null;
  spill: SpillStore;
  /** A member written under another name (a base backup's pg_control goes under its pending name). */
  rename?: { from: string; to: string };
  /** Given when running as root: the owner of what is created here. */
  owner?: { uid: number; gid: number } | null;
  /** Names the tar in errors. */
  label: string;
}

export interface PatchCounts {
  /** Pages written over the full's files or into files the chain created. */
  pages: number;
  /** Files the chain changed (patched in place) or created. */
  files: number;
  /** Members of the full's tar the chain removed. */
  removed: number;
}

/** What the full's index says of a member of its tar. */
type BaseEntry = Pick<IndexEntry, 'kind' | 'size'>;

/** Files patched at once: their writes wait on the disk, not on this thread. */
const FILES_AT_ONCE = 8;
/** Page writes of one file waiting on the disk at once. */
const WRITES_IN_FLIGHT = 16;
/** Pages of a file fetched from the spill store together (2 MiB). */
const PAGES_PER_BATCH = 256;

/**
 * The newest state of a chain written over a directory holding its full backup's tar (extracted
 * by the same path as a full restore, while the incrementals were read beside it): the fast path
 * of a chain restore, proved against the one-pass combiner (combineChain). Every check is made
 * before anything is written: the chain must account for every member the full's index lists, at
 * the size it was taken against, and every file it changed must come out at the digest its newest
 * backup recorded (the base's page digests from the full's index; the base's bytes are covered by
 * its tar's SHA-256). Then: members the chain removed are deleted, directories and links made, the
 * newest version of each changed page written in place, files cut or extended to their size,
 * created files written whole. No path is written through a symbolic link.
 */
export async function patchChainInto(options: PatchChainOptions): Promise<PatchCounts> {
  const { chain, baseIndex } = options;
  const first = chain.firstId ?? chain.baseId;
  const baseEntries = new Map<string, BaseEntry>();
  for (const path of baseIndex?.paths() ?? []) {
    const entry = await baseIndex?.get(path);
    if (entry) baseEntries.set(path, { kind: entry.kind, size: entry.size });
  }
  checkAgainstBase(chain, baseEntries, first);
  const counts: PatchCounts = { pages: 0, files: 0, removed: 0 };
  // The digest of every file the chain changed, before a byte is written.
  for (const [path, state] of chain.states) {
    if (!state.removed && state.type === 'file' && needsPages(path, state)) {
      await checkFileDigest(path, state, state.source === 'base' ? await baseDigestsOf(baseIndex, path) : null);
    }
  }

  const links = new Set<string>();
  for (const [path, state] of chain.states) if (!state.removed && state.type === 'symlink') links.add(path);
  const at = (path: string) => {
    const safe = tarMemberPath(path, options.label);
    const segments = safe.split('/');
    for (let depth = 1; depth < segments.length; depth++) {
      const ancestor = segments.slice(0, depth).join('/');
      if (links.has(ancestor)) {
        throw new IntegrityError(`incremental backup ${first} writes '${path}' through the symbolic link '${ancestor}': refused`);
      }
    }
    return join(options.directory, options.rename && safe === options.rename.from ? options.rename.to : safe);
  };

  for (const path of baseEntries.keys()) {
    const state = chain.states.get(path);
    if (state && !state.removed) continue;
    await rm(at(path), { recursive: true, force: true });
    counts.removed++;
  }
  const files: [string, PathState][] = [];
  for (const path of chain.newestOrder) {
    const state = chain.states.get(path);
    if (!state || state.removed) continue;
    if (state.type === 'directory') await makeDirectory(at(path), state, options.owner);
    else if (state.type === 'symlink') await makeLink(at(path), state, options.owner);
    else files.push([path, state]);
  }
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const [path, state] = files[next++];
      await writeFile(at(path), path, state, options, counts);
    }
  };
  await Promise.all(Array.from({ length: FILES_AT_ONCE }, worker));
  return counts;
}

/** The checks the combiner makes as the base tar streams, made against the full's index instead. */
function checkAgainstBase(chain: ChainStates, baseEntries: Map<string, BaseEntry>, first: string): void {
  for (const [path, entry] of baseEntries) {
    const state = chain.states.get(path);
    if (!state) {
      throw new IncrementalChainError(
        `incremental backup ${first} does not account for '${path}' of backup ${chain.baseId}: it was not taken against this base tar`,
      );
    }
    if (state.removed || state.type !== 'file' || state.source !== 'base') continue;
    if ((entry.kind !== 'paged' && entry.kind !== 'whole') || entry.size !== state.baseSize) {
      const what = entry.kind === 'paged' || entry.kind === 'whole' ? 'file' : entry.kind;
      throw new IncrementalChainError(
        `backup ${chain.baseId} has '${path}' as a ${what} of ${entry.size} bytes, but incremental backup ${first} was taken against a file of ${state.baseSize} bytes`,
      );
    }
  }
  for (const path of chain.newestOrder) {
    const state = chain.states.get(path);
    if (state && !state.removed && state.type === 'file' && state.source === 'base' && !baseEntries.has(path)) {
      throw new IncrementalChainError(`backup ${chain.baseId} lacks '${path}', which incremental backup ${first} found in its parent`);
    }
  }
}

/** True for a file whose content the chain changed page by page (as the combiner's mergedPages). */
function needsPages(path: string, state: PathState): boolean {
  if (state.source === 'chain') return state.whole.length === 0 && isPagedPath(path);
  return !(state.pages.size === 0 && state.size === state.baseSize && (state.changedBy === null || !isPagedPath(path)));
}

async function baseDigestsOf(baseIndex: PageIndexLookup | null, path: string): Promise<Buffer> {
  const entry = await baseIndex?.get(path);
  if (!entry || entry.kind !== 'paged') {
    throw new IntegrityError(`the page index of the full backup has no page digests of '${path}', which the chain changed page by page`);
  }
  return entry.pageDigests;
}

/** The file's pages as the chain rebuilds it must give the digest its newest backup recorded. */
async function checkFileDigest(path: string, state: PathState, baseDigests: Buffer | null): Promise<void> {
  const pages = pageCountOf(state.size);
  const usable = baseDigests ? Math.min(baseDigests.length / PAGE_DIGEST_BYTES, state.basePages) : 0;
  const digests = state.changedBy !== null ? Buffer.allocUnsafe(pages * PAGE_DIGEST_BYTES) : null;
  for (let page = 0; page < pages; page++) {
    const stored = state.pages.get(page);
    const offset = page * PAGE_DIGEST_BYTES;
    if (stored) digests?.set(stored.digest, offset);
    else if (page < usable && baseDigests) digests?.set(baseDigests.subarray(offset, offset + PAGE_DIGEST_BYTES), offset);
    else {
      throw new IntegrityError(
        `page ${page} of '${path}' is in no backup of the chain (last changed by ${state.changedBy ?? 'none'}): a block map is damaged`,
      );
    }
  }
  if (digests && state.fileDigest && !fileDigestOfPages(digests).equals(state.fileDigest)) {
    throw new IntegrityError(
      `'${path}' as the chain rebuilds it does not match the digest incremental backup ${state.changedBy} recorded: a block map of the chain is damaged`,
      { hint: 'restore an earlier backup of the chain and take a new full backup' },
    );
  }
}

async function makeDirectory(target: string, state: PathState, owner: PatchChainOptions['owner']): Promise<void> {
  const found = await lstat(target).catch(() => null);
  if (found && !found.isDirectory()) await rm(target, { force: true });
  if (!found?.isDirectory()) {
    await mkdir(target, { mode: state.mode });
    if (owner) await chown(target, owner.uid, owner.gid);
  }
  await chmod(target, state.mode);
}

async function makeLink(target: string, state: PathState, owner: PatchChainOptions['owner']): Promise<void> {
  const found = await lstat(target).catch(() => null);
  if (found?.isSymbolicLink() && (await readlink(target)) === state.linkTarget) return;
  if (found) await rm(target, { recursive: true, force: true });
  await symlink(state.linkTarget, target);
  if (owner) await lchown(target, owner.uid, owner.gid);
}

async function writeFile(target: string, path: string, state: PathState, options: PatchChainOptions, counts: PatchCounts): Promise<void> {
  const created = state.source === 'chain';
  if (!created && !needsPages(path, state)) {
    // The full's bytes as they are; the newest mode and time (as the combiner's header says).
    await chmod(target, state.mode);
    await utimes(target, state.mtime, state.mtime);
    return;
  }
  if (created) await rm(target, { recursive: true, force: true });
  const flags = created ? constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL : constants.O_RDWR;
  const handle = await open(target, flags | constants.O_NOFOLLOW, 0o600);
  try {
    if (created && options.owner) await handle.chown(options.owner.uid, options.owner.gid);
    if (created && state.whole.length > 0) {
      let position = 0;
      for (const piece of state.whole) {
        const data = await options.spill.read(piece);
        await writeAll(handle, [data], position);
        position += data.length;
      }
    } else {
      counts.pages += await writePages(handle, state, options.spill);
    }
    if (!created || state.whole.length === 0) await handle.truncate(state.size);
  } finally {
    await handle.close();
  }
  await chmod(target, state.mode);
  await utimes(target, state.mtime, state.mtime);
  counts.files++;
}

/**
 * The chain's pages of a file at their offsets, PAGES_PER_BATCH at a time in page order: the
 * batch's pages fetched from the spill store in as few reads as their places there allow (each
 * incremental's pages of a file lie together), then written in runs of consecutive pages, up to
 * WRITES_IN_FLIGHT calls at once (they touch different offsets: waiting on each in turn leaves the
 * disk and this thread idle in between).
 */
async function writePages(handle: FileHandle, state: PathState, spill: SpillStore): Promise<number> {
  const numbers = [...state.pages.keys()].sort((left, right) => left - right);
  const inFlight = new Set<Promise<void>>();
  const failures: unknown[] = [];
  for (let batch = 0; batch < numbers.length && failures.length === 0; batch += PAGES_PER_BATCH) {
    const pages = numbers.slice(batch, batch + PAGES_PER_BATCH);
    const data = await spill.readMany(pages.map((page) => (state.pages.get(page) as { handle: SpillHandle }).handle));
    for (let start = 0; start < pages.length && failures.length === 0; ) {
      let end = start + 1;
      while (end < pages.length && pages[end] === pages[end - 1] + 1) end++;
      const write: Promise<void> = writeAll(handle, data.slice(start, end), pages[start] * PAGE_SIZE)
        .catch((error: unknown) => void failures.push(error))
        .finally(() => inFlight.delete(write));
      inFlight.add(write);
      if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
      start = end;
    }
  }
  await Promise.all(inFlight);
  if (failures.length > 0) throw failures[0];
  return numbers.length;
}

async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) skip -= buffer.length;
      else {
        rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
        skip = 0;
      }
    }
    pending = rest;
  }
}
