import { Readable } from 'node:stream';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { ExactReader } from './exact-reader';
import { IncrementalEvent, readIncremental } from './incremental-format';
import { PAGE_SIZE, fileDigestOfPages, isPagedPath, pageCountOf, pageDigest, pageLengthOf } from './page-layout';
import { PageIndexLookup } from './page-index';
import { SpillHandle, SpillStore } from './spill-store';
import { MemberType, TarMember, encodeTarHeader, tarEnd, tarPadding, readTarMembers } from './tar-members';

/** The most base pages the combiner reads and hands on as one piece (1 MiB). */
const BASE_RUN_PAGES = 128;

export interface ChainLink {
  backupId: string;
  /** The incremental artifact (decrypted and decompressed). */
  artifact: AsyncIterable<Buffer>;
}

/** What the chain says one path of the newest state is, and where its content comes from. */
export interface PathState {
  type: MemberType;
  mode: number;
  mtime: number;
  linkTarget: string;
  removed: boolean;
  size: number;
  /** 'base': the base tar's content with `pages` written over it; 'chain': only what the chain stored. */
  source: 'base' | 'chain';
  /** The size the base tar's file must have (source 'base'). */
  baseSize: number;
  /** Pages of the base's content still valid in the newest state (source 'base', paged files). */
  basePages: number;
  /** The newest version of each page the chain stored. */
  pages: Map<number, { handle: SpillHandle; digest: Buffer }>;
  /** The content of a whole file the chain stored. */
  whole: SpillHandle[];
  /** The digest the newest backup that stored part of the file recorded for it, and that backup. */
  fileDigest: Buffer | null;
  changedBy: string | null;
  emitted: boolean;
}

export interface CombineChainOptions {
  base: {
    backupId: string;
    tar: AsyncIterable<Buffer>;
    /**
     * The page index the full backup recorded of this tar. Given, the digests of the base's pages
     * in a changed file are taken from it for the file-digest check (the base's bytes are already
     * covered by the tar's own SHA-256); without it, every such page is hashed as it streams (the
     * plain path: config restore.chainDigestsFromIndex false).
     */
    index?: PageIndexLookup;
  };
  incrementals: ChainLink[];
  spill: SpillStore;
}

/**
 * The base tar of the newest backup of a chain (a full backup and its incrementals, oldest first),
 * in one pass over the full backup's tar: the incrementals are read first (small: changed pages
 * and block maps) into `spill`, every check they carry made before a byte is produced; then the
 * base tar streams through with the newest version of each page written over it. Members are in
 * the base tar's order; members the chain created follow, in the newest incremental's order.
 * Files the chain changed are checked against the digests the newest backup recorded.
 * Memory: one entry per path and per stored page, the pages themselves in `spill`.
 */
export function combineChain(options: CombineChainOptions): Readable {
  return Readable.from(produceCombined(options), { objectMode: false });
}

/** What a chain's incrementals say the newest state of a tar is, read and checked (readChain). */
export interface ChainStates {
  /** Every path the chain knows of, removed ones included. */
  states: Map<string, PathState>;
  /** The paths of the newest state, in the newest incremental's order (directories first). */
  newestOrder: string[];
  /** The full backup's id and its first incremental's. */
  baseId: string;
  firstId: string | undefined;
}

/**
 * Reads a chain's incrementals, oldest first, into per-path states (pages into `spill`), making
 * every check they carry: the first part of combining a chain, whichever way its result is written.
 */
export async function readChain(baseId: string, incrementals: ChainLink[], spill: SpillStore): Promise<ChainStates> {
  const states = new Map<string, PathState>();
  let newestOrder: string[] = [];
  let parentId = baseId;
  for (const [position, link] of incrementals.entries()) {
    newestOrder = await applyIncremental(states, link, parentId, position === 0, spill);
    parentId = link.backupId;
  }
  return { states, newestOrder, baseId, firstId: incrementals[0]?.backupId };
}

async function* produceCombined(options: CombineChainOptions): AsyncGenerator<Buffer> {
  const { base, incrementals, spill } = options;
  const { states, newestOrder, firstId: first } = await readChain(base.backupId, incrementals, spill);
  const reader = new ExactReader(base.tar, `the base tar of backup ${base.backupId}`);
  for await (const member of readTarMembers(reader)) {
    if (!first) {
      yield* passThrough(reader, member);
      continue;
    }
    const state = states.get(member.path);
    if (!state) {
      throw new IncrementalChainError(
        `incremental backup ${first} does not account for '${member.path}' of backup ${base.backupId}: it was not taken against this base tar`,
      );
    }
    if (state.removed || (state.type === 'file' && state.source === 'chain')) continue;
    state.emitted = true;
    if (state.type !== 'file') {
      yield encodeTarHeader(memberOf(member.path, state));
      continue;
    }
    if (member.type !== 'file' || member.size !== state.baseSize) {
      throw new IncrementalChainError(
        `backup ${base.backupId} has '${member.path}' as a ${member.type} of ${member.size} bytes, but incremental backup ${first} was taken against a file of ${state.baseSize} bytes`,
      );
    }
    yield encodeTarHeader(memberOf(member.path, state));
    if (state.pages.size === 0 && state.size === member.size && (state.changedBy === null || !isPagedPath(member.path))) {
      yield* copyContent(reader, member);
    } else {
      const baseDigests = state.changedBy !== null && base.index ? await indexedDigests(base, member) : null;
      yield* mergedPages(reader, member, state, spill, member.path, baseDigests);
    }
    yield tarPadding(state.size);
  }
  for (const path of newestOrder) {
    const state = states.get(path);
    if (!state || state.removed || state.emitted) continue;
    if (state.type === 'file' && state.source === 'base') {
      throw new IncrementalChainError(`backup ${base.backupId} lacks '${path}', which incremental backup ${first} found in its parent`);
    }
    state.emitted = true;
    yield encodeTarHeader(memberOf(path, state));
    if (state.type !== 'file') continue;
    if (isPagedPath(path) && state.whole.length === 0) yield* mergedPages(null, null, state, spill, path);
    else for (const handle of state.whole) yield await spill.read(handle);
    yield tarPadding(state.size);
  }
  yield tarEnd();
}

function memberOf(path: string, state: PathState): TarMember {
  return {
    path,
    type: state.type,
    size: state.type === 'file' ? state.size : 0,
    mode: state.mode,
    mtime: state.mtime,
    linkTarget: state.linkTarget,
  };
}

async function* passThrough(reader: ExactReader, member: TarMember): AsyncGenerator<Buffer> {
  yield encodeTarHeader(member);
  yield* copyContent(reader, member);
  yield tarPadding(member.size);
}

function copyContent(reader: ExactReader, member: TarMember): AsyncGenerator<Buffer> {
  return reader.pieces(member.size, `the content of '${member.path}'`);
}

/** The page digests the full backup's index recorded for a member of its tar, which must match it. */
async function indexedDigests(base: CombineChainOptions['base'], member: TarMember): Promise<Buffer> {
  const entry = await base.index?.get(member.path);
  if (!entry || entry.kind !== 'paged' || entry.size !== member.size) {
    const recorded = entry ? `records '${member.path}' as a ${entry.kind} file of ${entry.size} bytes` : `lacks '${member.path}'`;
    throw new IntegrityError(
      `the page index of backup ${base.backupId} ${recorded}, but its tar holds ${member.size} bytes there: the index or the tar is damaged`,
    );
  }
  return entry.pageDigests;
}

/**
 * A paged file of the newest state: page by page, the chain's newest version or else the base's.
 * The base's pages are read in order whether used or not (the tar is read once, forwards).
 * A file the chain changed is checked against the newest recorded digest: the digests of the
 * base's pages come from `baseDigests` (the full's page index) when given, else from the pages.
 */
async function* mergedPages(
  reader: ExactReader | null,
  member: TarMember | null,
  state: PathState,
  spill: SpillStore,
  path = member?.path ?? '',
  baseDigests: Buffer | null = null,
): AsyncGenerator<Buffer> {
  const pages = pageCountOf(state.size);
  const basePagesInTar = member ? pageCountOf(member.size) : 0;
  const digests = state.changedBy !== null ? Buffer.allocUnsafe(pages * 16) : null;
  const usable = Math.min(basePagesInTar, state.basePages);
  for (let page = 0; page < pages; ) {
    const stored = state.pages.get(page);
    if (stored) {
      // The base's own version of this page is read past (the tar is read forwards).
      if (reader && member && page < basePagesInTar) await reader.read(pageLengthOf(member.size, page), `page ${page} of '${path}'`);
      digests?.set(stored.digest, page * 16);
      yield await spill.read(stored.handle);
      page++;
      continue;
    }
    if (!reader || !member || page >= usable) {
      throw new IntegrityError(
        `page ${page} of '${path}' is in no backup of the chain (last changed by ${state.changedBy ?? 'none'}): a block map is damaged`,
      );
    }
    // A run of the base's pages the chain did not replace, read and handed on as one piece (up to
    // BASE_RUN_PAGES): one buffer and one digest call per page instead of one piece per page.
    let end = page + 1;
    while (end < usable && end - page < BASE_RUN_PAGES && !state.pages.has(end)) end++;
    const runBytes = (end - 1 - page) * PAGE_SIZE + pageLengthOf(member.size, end - 1);
    const run = await reader.read(runBytes, `pages ${page}–${end - 1} of '${path}'`);
    if (digests && baseDigests) {
      baseDigests.copy(digests, page * 16, page * 16, end * 16);
    } else if (digests) {
      for (let at = page; at < end; at++) {
        const offset = (at - page) * PAGE_SIZE;
        digests.set(pageDigest(run.subarray(offset, offset + pageLengthOf(member.size, at))), at * 16);
      }
    }
    yield run;
    page = end;
  }
  if (digests && state.fileDigest && !fileDigestOfPages(digests).equals(state.fileDigest)) {
    throw new IntegrityError(
      `'${path}' as the chain rebuilds it does not match the digest incremental backup ${state.changedBy} recorded: a block map of the chain is damaged`,
      { hint: 'restore an earlier backup of the chain and take a new full backup' },
    );
  }
}

/**
 * Applies one incremental to the states of the chain so far. Returns the paths of its newest
 * state in its order. Every path the parent had must be accounted for (kept, changed or removed).
 */
async function applyIncremental(
  states: Map<string, PathState>,
  link: ChainLink,
  parentId: string,
  first: boolean,
  spill: SpillStore,
): Promise<string[]> {
  const label = `incremental backup ${link.backupId}`;
  const order: string[] = [];
  const mentioned = new Set<string>();
  let current: PathState | null = null;
  const refuse = (path: string, what: string) =>
    new IncrementalChainError(`${label} ${what} '${path}', which does not match its parent ${parentId}: the chain is broken there`);
  /** The parent's file at `path`, for an entry that says the parent had it. */
  const parentFile = (path: string, size: number): PathState => {
    const state = states.get(path);
    if (first && !state) {
      // The base tar is checked when it streams: it must hold this file at this size.
      const created = freshState('file', 'base');
      created.size = created.baseSize = size;
      created.basePages = pageCountOf(size);
      states.set(path, created);
      return created;
    }
    if (!state || state.removed || state.type !== 'file' || state.size !== size) throw refuse(path, `expects a file of ${size} bytes at`);
    return state;
  };
  const applyToStates = async (event: IncrementalEvent, current: PathState | null): Promise<PathState | null> => {
    if ('mode' in event || event.type === 'removed') {
      if (mentioned.has(event.path)) throw new IntegrityError(`${label} lists '${event.path}' twice: the artifact is damaged`);
      mentioned.add(event.path);
      if (event.type !== 'removed') order.push(event.path);
    }
    const next = applyEvent(event, states, current, parentFile, refuse, first);
    if (event.type === 'page' && next) {
      next.pages.set(event.page, { handle: await spill.append(event.data), digest: event.digest });
    } else if (event.type === 'data' && next) {
      next.whole.push(await spill.append(event.data));
    } else if ((event.type === 'delta-end' || event.type === 'whole-end') && next) {
      next.fileDigest = event.fileDigest;
      next.changedBy = link.backupId;
    }
    return next;
  };
  // A mismatch with the parent is reported once the whole artifact was read: if its checksum
  // fails, the damage is what explains the mismatch, and is what the error says.
  // Likewise a damaged page or map found on the way: the rest of the artifact is read, and the
  // store's own verdict on it (its checksum, naming the artifact) is what is reported if it fails.
  let mismatch: unknown = null;
  const source = link.artifact[Symbol.asyncIterator]();
  try {
    for await (const event of readIncremental({ [Symbol.asyncIterator]: () => source }, { backupId: link.backupId, parentId })) {
      if (mismatch) continue;
      try {
        current = await applyToStates(event, current);
      } catch (error) {
        if (!(error instanceof IncrementalChainError)) throw error;
        mismatch = error;
      }
    }
  } catch (error) {
    if (error instanceof IntegrityError) await drainFor(source, error);
    throw error;
  }
  if (mismatch) throw mismatch;
  for (const [path, state] of states) {
    if (!state.removed && !mentioned.has(path)) throw refuse(path, 'does not account for');
  }
  return order;
}

/** Reads `source` to its end; a failure of its own there (the store's checksum) is thrown instead of `found`. */
async function drainFor(source: AsyncIterator<Buffer>, found: IntegrityError): Promise<void> {
  try {
    while (!(await source.next()).done);
  } catch (error) {
    if (error instanceof IntegrityError) throw error;
    throw found;
  }
}

function applyEvent(
  event: IncrementalEvent,
  states: Map<string, PathState>,
  current: PathState | null,
  parentFile: (path: string, size: number) => PathState,
  refuse: (path: string, what: string) => Error,
  first: boolean,
): PathState | null {
  switch (event.type) {
    case 'directory':
    case 'symlink': {
      const state = freshState(event.type, 'chain');
      Object.assign(state, { mode: event.mode, mtime: event.mtime, linkTarget: event.type === 'symlink' ? event.linkTarget : '' });
      states.set(event.path, state);
      return null;
    }
    case 'unchanged': {
      const state = parentFile(event.path, event.size);
      if (state.fileDigest && !state.fileDigest.equals(event.fileDigest)) throw refuse(event.path, 'records another digest for');
      Object.assign(state, { mode: event.mode, mtime: event.mtime });
      return null;
    }
    case 'delta': {
      let state: PathState;
      if (event.parentPresent) {
        state = parentFile(event.path, event.parentSize);
      } else {
        const previous = states.get(event.path);
        if (previous && !previous.removed && previous.type === 'file' && !first) throw refuse(event.path, 'says its parent lacks');
        state = freshState('file', 'chain');
        states.set(event.path, state);
      }
      const pages = pageCountOf(event.size);
      for (const page of state.pages.keys()) if (page >= pages) state.pages.delete(page);
      Object.assign(state, { mode: event.mode, mtime: event.mtime, size: event.size, basePages: Math.min(state.basePages, pages) });
      return state;
    }
    case 'whole': {
      const previous = states.get(event.path);
      const state = freshState('file', 'chain');
      // A whole file replaces the parent's content; its base member, if any, is skipped.
      if (previous && !previous.removed && previous.type !== 'file' && !first) throw refuse(event.path, 'replaces a non-file at');
      Object.assign(state, { mode: event.mode, mtime: event.mtime, size: event.size });
      states.set(event.path, state);
      return state;
    }
    case 'removed': {
      const state = states.get(event.path);
      if (state && state.removed) throw refuse(event.path, 'removes the already removed');
      if (!state && !first) throw refuse(event.path, 'removes the unknown');
      const removed = freshState(state?.type ?? 'file', 'chain');
      removed.removed = true;
      states.set(event.path, removed);
      return null;
    }
    default:
      return current;
  }
}

function freshState(type: MemberType, source: 'base' | 'chain'): PathState {
  return {
    type,
    mode: 0,
    mtime: 0,
    linkTarget: '',
    removed: false,
    size: 0,
    source,
    baseSize: 0,
    basePages: 0,
    pages: new Map(),
    whole: [],
    fileDigest: null,
    changedBy: null,
    emitted: false,
  };
}
