import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { SeededRandom, collectBytes, differentialSeeds, randomlyChunked } from '@rookery/testing';
import { ChainLink, combineChain, readChain } from './chain-combiner';
import { patchChainInto } from './chain-patch';
import { ExactReader } from './exact-reader';
import { applyIncrementalToDirectory } from './incremental-apply';
import { readIncremental } from './incremental-format';
import { buildPageIndex, writeIncremental } from './incremental-writer';
import { PageIndexLookup, PageIndexWriter, readPageIndex } from './page-index';
import { PAGE_SIZE, isPagedPath } from './page-layout';
import { SpillStore } from './spill-store';
import { encodeTarHeader, readTarMembers, tarEnd, tarPadding } from './tar-members';

/**
 * Block-level incrementals: the formats, their edge cases, and a differential spec. Generated
 * PostgreSQL-shaped data directories go through a chain of page-level changes; each state's tar
 * is turned into an incremental against the previous state's page index; the one-pass combiner
 * (full tar + incrementals) must give exactly the last state, and so must the plain path (the full
 * tar extracted, each incremental applied on disk in order). A failure names its seed:
 * ROOKERY_DIFF_SEED=<seed> replays just that case.
 */

type Node =
  | { type: 'directory'; mode: number; mtime: number }
  | { type: 'symlink'; target: string; mode: number; mtime: number }
  | { type: 'file'; mode: number; mtime: number; content: Buffer };
type Tree = Map<string, Node>;

/** What a tree looks like to a restore: types, modes, contents (as SHA-256), link targets. */
function describe_(tree: Tree): Record<string, string> {
  const described: Record<string, string> = {};
  for (const [path, node] of tree) {
    described[path] =
      node.type === 'file'
        ? `file ${node.mode.toString(8)} ${node.content.length} ${sha(node.content)}`
        : node.type === 'symlink'
          ? `symlink ${node.target}`
          : `directory ${node.mode.toString(8)}`;
  }
  return described;
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** The tar of a tree, as PostgreSQL orders it: each directory before what it holds, files in a shuffled order. */
function tarOf(tree: Tree, random: SeededRandom): Buffer {
  const paths = [...tree.keys()];
  const directories = paths.filter((path) => tree.get(path)?.type === 'directory').sort();
  const others = paths.filter((path) => tree.get(path)?.type !== 'directory');
  for (let index = others.length - 1; index > 0; index--) {
    const other = random.int(0, index);
    [others[index], others[other]] = [others[other], others[index]];
  }
  const parts: Buffer[] = [];
  for (const path of [...directories, ...others]) {
    const node = tree.get(path) as Node;
    const content = node.type === 'file' ? node.content : Buffer.alloc(0);
    parts.push(
      encodeTarHeader({
        path,
        type: node.type,
        size: content.length,
        mode: node.mode,
        mtime: node.mtime,
        linkTarget: node.type === 'symlink' ? node.target : '',
      }),
      content,
      tarPadding(content.length),
    );
  }
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

/** The tree a tar holds. */
async function treeOfTar(tar: Buffer): Promise<Tree> {
  const reader = new ExactReader(Readable.from([tar]), 'a combined tar');
  const tree: Tree = new Map();
  for await (const member of readTarMembers(reader)) {
    if (tree.has(member.path)) throw new Error(`the tar holds '${member.path}' twice`);
    tree.set(
      member.path,
      member.type === 'file'
        ? { type: 'file', mode: member.mode, mtime: member.mtime, content: await reader.read(member.size, member.path) }
        : member.type === 'symlink'
          ? { type: 'symlink', target: member.linkTarget, mode: member.mode, mtime: member.mtime }
          : { type: 'directory', mode: member.mode, mtime: member.mtime },
    );
  }
  return tree;
}

/** Extracts a tar into a directory (the plain path's full restore). */
async function extract(tar: Buffer, directory: string): Promise<void> {
  for (const [path, node] of await treeOfTar(tar)) {
    const target = join(directory, path);
    await mkdir(dirname(target), { recursive: true });
    if (node.type === 'directory') await mkdir(target, { recursive: true }).then(() => chmod(target, node.mode));
    else if (node.type === 'symlink') await symlink(node.target, target);
    else await writeFile(target, node.content, { mode: node.mode });
  }
}

/** The tree a directory holds. */
async function treeOfDirectory(directory: string, prefix = ''): Promise<Tree> {
  const tree: Tree = new Map();
  for (const name of await readdir(join(directory, prefix))) {
    const path = prefix ? `${prefix}/${name}` : name;
    const stats = await lstat(join(directory, path));
    if (stats.isSymbolicLink()) tree.set(path, { type: 'symlink', target: await readlink(join(directory, path)), mode: 0o777, mtime: 0 });
    else if (stats.isDirectory()) {
      tree.set(path, { type: 'directory', mode: stats.mode & 0o7777, mtime: 0 });
      for (const [inner, node] of await treeOfDirectory(directory, path)) tree.set(inner, node);
    } else tree.set(path, { type: 'file', mode: stats.mode & 0o7777, mtime: 0, content: await readFile(join(directory, path)) });
  }
  return tree;
}

/** Compared: types, modes (but a symbolic link's), sizes and contents, link targets; not mtimes. */
const comparable = (tree: Tree) => describe_(tree);

// ---------------------------------------------------------------------------------------------
// Generated PostgreSQL-shaped data directories and page-level changes.

type Shape = 'small' | 'big' | 'many';

function pages(random: SeededRandom, count: number): Buffer {
  return random.bytes(count * PAGE_SIZE);
}

function addDirectory(tree: Tree, path: string): void {
  if (path === '.') return;
  const parts = path.split('/');
  for (let end = 1; end <= parts.length; end++) {
    const prefix = parts.slice(0, end).join('/');
    if (!tree.has(prefix)) tree.set(prefix, { type: 'directory', mode: 0o700, mtime: 1_700_000_000 });
  }
}

function addFile(tree: Tree, path: string, content: Buffer, mode = 0o600): void {
  addDirectory(tree, dirname(path));
  tree.set(path, { type: 'file', mode, mtime: 1_700_000_000, content });
}

function addRelation(tree: Tree, random: SeededRandom, directory: string, relfilenode: number, shape: Shape): void {
  const size = shape === 'big' && random.chance(0.2) ? random.int(64, 320) : shape === 'many' ? random.int(0, 1) : random.int(0, 12);
  addFile(tree, `${directory}/${relfilenode}`, pages(random, size));
  if (random.chance(0.5)) addFile(tree, `${directory}/${relfilenode}_fsm`, pages(random, random.int(1, 3)));
  if (random.chance(0.4)) addFile(tree, `${directory}/${relfilenode}_vm`, pages(random, 1));
  if (random.chance(0.1)) addFile(tree, `${directory}/${relfilenode}.1`, pages(random, random.int(1, 4)));
}

function generateTree(random: SeededRandom, shape: Shape): Tree {
  const tree: Tree = new Map();
  addFile(tree, 'PG_VERSION', Buffer.from('15\n'));
  addFile(tree, 'postgresql.auto.conf', Buffer.from('# Do not edit this file manually!\n'));
  addFile(tree, 'backup_label', Buffer.from(`START WAL LOCATION: 0/${random.int(1, 99)}000028\n`));
  addFile(tree, 'global/pg_control', random.bytes(PAGE_SIZE));
  addFile(tree, 'global/pg_filenode.map', random.bytes(512));
  for (let relation = 0; relation < 4; relation++) addRelation(tree, random, 'global', 1_200 + relation, 'small');
  addFile(tree, 'pg_xact/0000', random.bytes(PAGE_SIZE));
  addFile(tree, 'pg_wal/000000010000000000000002', random.bytes(64 * 1024));
  addDirectory(tree, 'pg_wal/archive_status');
  addDirectory(tree, 'pg_tblspc');
  if (random.chance(0.5)) tree.set('pg_tblspc/16400', { type: 'symlink', target: '/srv/tablespace', mode: 0o777, mtime: 1_700_000_000 });
  const databases = [1, 4, 5, ...Array.from({ length: random.int(0, 3) }, (_, index) => 16_384 + index)];
  for (const database of databases) {
    addFile(tree, `base/${database}/PG_VERSION`, Buffer.from('15\n'));
    addFile(tree, `base/${database}/pg_filenode.map`, random.bytes(512));
    const relations = shape === 'many' ? random.int(120, 300) : random.int(2, 25);
    for (let relation = 0; relation < relations; relation++) addRelation(tree, random, `base/${database}`, 16_384 + relation * 3, shape);
  }
  return tree;
}

const pagedFiles = (tree: Tree) => [...tree.keys()].filter((path) => tree.get(path)?.type === 'file' && isPagedPath(path));

/** One backup's worth of changes: pages rewritten (about 3 %), files extended, cut, added, removed, databases created and dropped. */
function mutate(tree: Tree, random: SeededRandom, step: number): Tree {
  const next: Tree = new Map(
    [...tree].map(([path, node]) => [path, node.type === 'file' ? { ...node, content: Buffer.from(node.content) } : { ...node }]),
  );
  const files = pagedFiles(next);
  const file = (path: string) => next.get(path) as Extract<Node, { type: 'file' }>;
  for (const path of files) {
    const node = file(path);
    const count = Math.floor(node.content.length / PAGE_SIZE);
    for (let page = 0; page < count; page++) {
      if (!random.chance(0.03)) continue;
      // A few bytes of a page change, as a row update does (or the whole page, as a rewrite).
      if (random.chance(0.5)) random.bytes(PAGE_SIZE).copy(node.content, page * PAGE_SIZE);
      else node.content[page * PAGE_SIZE + random.int(0, PAGE_SIZE - 1)] ^= 1 + random.int(0, 254);
    }
  }
  const some = (probability: number) => files.filter(() => random.chance(probability));
  for (const path of some(0.05)) file(path).content = Buffer.concat([file(path).content, pages(random, random.int(1, 3))]);
  for (const path of some(0.03)) {
    const node = file(path);
    node.content = node.content.subarray(0, PAGE_SIZE * random.int(0, Math.floor(node.content.length / PAGE_SIZE)));
  }
  // A short last page: never written by PostgreSQL, but a file must still round-trip.
  for (const path of some(0.01)) file(path).content = Buffer.concat([file(path).content, random.bytes(random.int(1, PAGE_SIZE - 1))]);
  for (const path of some(0.02)) next.delete(path);
  for (const path of some(0.03))
    if (!path.includes('.') && !next.has(`${path}.1`)) addFile(next, `${path}.1`, pages(random, random.int(1, 3)));
  const databases = [...next.keys()].filter((path) => /^base\/\d+$/.test(path));
  for (let created = random.int(0, 4); created > 0; created--) {
    addRelation(next, random, random.pick(databases), 40_000 + step * 100 + created, random.chance(0.5) ? 'big' : 'small');
  }
  if (random.chance(0.25)) addFile(next, `base/${random.pick(databases)}/${50_000 + step}`, Buffer.alloc(0));
  if (random.chance(0.2)) {
    const database = `base/${20_000 + step}`;
    addFile(next, `${database}/PG_VERSION`, Buffer.from('15\n'));
    for (let relation = 0; relation < random.int(1, 6); relation++) addRelation(next, random, database, 16_384 + relation, 'small');
  }
  if (random.chance(0.2) && databases.length > 3) {
    const dropped = random.pick(databases.filter((path) => !['base/1', 'base/4', 'base/5'].includes(path)).concat(['base/none']));
    for (const path of [...next.keys()]) if (path === dropped || path.startsWith(`${dropped}/`)) next.delete(path);
  }
  // Non-paged files: pg_control always changes, a WAL segment comes and the old one goes, settings sometimes.
  file('global/pg_control').content = random.bytes(PAGE_SIZE);
  for (const path of [...next.keys()]) if (path.startsWith('pg_wal/0') && random.chance(0.7)) next.delete(path);
  addFile(next, `pg_wal/00000001000000000000000${(step % 7) + 3}`, random.bytes(64 * 1024));
  if (random.chance(0.3)) file('postgresql.auto.conf').content = Buffer.from(`# step ${step}\nwork_mem = '${random.int(1, 64)}MB'\n`);
  if (random.chance(0.1)) file('PG_VERSION').mode = 0o640;
  if (random.chance(0.2))
    next.set('pg_tblspc/16400', { type: 'symlink', target: `/srv/tablespace-${step}`, mode: 0o777, mtime: 1_700_000_000 });
  return next;
}

// ---------------------------------------------------------------------------------------------
// Taking a chain.

interface Chain {
  states: Tree[];
  fullTar: Buffer;
  fullIndex: Buffer;
  incrementals: {
    backupId: string;
    parentId: string;
    artifact: Buffer;
    index: Buffer;
    /** The same index as a delta against the parent's (what a backup stores by default). */
    delta: Buffer;
    tar: Buffer;
  }[];
}

/** A backup's stored page index: full (deltaOf null) or a delta against its parent's. */
interface IndexLink {
  backupId: string;
  index: Buffer;
  deltaOf: string | null;
}

/** A chain's indexes read oldest first into one lookup (what the next incremental compares against). */
async function lookupOfChain(links: IndexLink[], spill: SpillStore, random: SeededRandom): Promise<PageIndexLookup> {
  const lookup = PageIndexLookup.empty(spill);
  for (const link of links) {
    await lookup.advance(randomlyChunked(link.index, random), `page index of backup ${link.backupId}`, link.backupId, {
      deltaOf: link.deltaOf,
    });
  }
  return lookup;
}

let spillRoot: string;
beforeAll(async () => {
  spillRoot = await mkdtemp(join(tmpdir(), 'rookery-blocks-'));
});
afterAll(async () => {
  await rm(spillRoot, { recursive: true, force: true });
});

/** Spill thresholds from none to more than a run needs: every path of the spill store is taken. */
let spillMemoryBytes = 0;
const newSpill = () => new SpillStore({ memoryBytes: spillMemoryBytes, directory: spillRoot });

async function indexOf(tar: Buffer, random: SeededRandom): Promise<Buffer> {
  const spill = newSpill();
  try {
    const index = await buildPageIndex(randomlyChunked(tar, random), 'a base tar', new PageIndexWriter(spill));
    return await collectBytes(index.serialize());
  } finally {
    await spill.close();
  }
}

/**
 * The incremental of `tar` against the parent's index: a full index (the plain path), or the
 * chain's indexes (the full's, then each delta) read into one lookup. Also gives the parent's
 * index as the lookup serializes it (`parentIndex`), and the new index both full and as a delta.
 */
async function takeIncremental(
  tar: Buffer,
  parentIndexes: Buffer | IndexLink[],
  header: { backupId: string; parentId: string },
  random: SeededRandom,
) {
  const spill = newSpill();
  try {
    const parent = Buffer.isBuffer(parentIndexes)
      ? await PageIndexLookup.load(randomlyChunked(parentIndexes, random), `page index of backup ${header.parentId}`, spill)
      : await lookupOfChain(parentIndexes, spill, random);
    const parentIndex = await collectBytes(parent.serialize());
    const writing = writeIncremental({
      tar: randomlyChunked(tar, random),
      label: `base tar of ${header.backupId}`,
      header,
      parent,
      index: new PageIndexWriter(spill),
    });
    const artifact = await collectBytes(writing.artifact);
    const { index, counts } = await writing.result;
    return {
      artifact,
      index: await collectBytes(index.serialize()),
      delta: await collectBytes(index.serializeDelta(parent, header)),
      parentIndex,
      counts,
    };
  } finally {
    await spill.close();
  }
}

/**
 * A full and `length` incrementals of generated changes. Each incremental compares against its
 * parent's full index (the plain path) or, with `throughDeltas`, against the chain's indexes read
 * through the deltas (the default path); the parent's index as that lookup holds it must be the
 * parent's full index, byte for byte.
 */
async function takeChain(random: SeededRandom, shape: Shape, length: number, throughDeltas = false): Promise<Chain> {
  const states = [generateTree(random, shape)];
  const fullTar = tarOf(states[0], random);
  const fullIndex = await indexOf(fullTar, random);
  const incrementals: Chain['incrementals'] = [];
  const links: IndexLink[] = [{ backupId: 'full', index: fullIndex, deltaOf: null }];
  let parentId = 'full';
  let parentIndex = fullIndex;
  for (let step = 1; step <= length; step++) {
    states.push(mutate(states[step - 1], random, step));
    const tar = tarOf(states[step], random);
    const backupId = `incr-${step}`;
    const taken = await takeIncremental(tar, throughDeltas ? links : parentIndex, { backupId, parentId }, random);
    expect(taken.parentIndex.equals(parentIndex)).toBe(true);
    const { artifact, index, delta } = taken;
    incrementals.push({ backupId, parentId, artifact, index, delta, tar });
    links.push({ backupId, index: delta, deltaOf: parentId });
    parentId = backupId;
    parentIndex = index;
  }
  return { states, fullTar, fullIndex, incrementals };
}

/**
 * The chain combined in one pass (the plain path of a chain restore); with `withIndex`, the base
 * pages' digests taken from the full's page index instead of hashed (restore.chainDigestsFromIndex).
 */
async function combine(chain: Chain, random: SeededRandom, incrementals = chain.incrementals, withIndex = false): Promise<Buffer> {
  const spill = newSpill();
  try {
    const links: ChainLink[] = incrementals.map((entry) => ({
      backupId: entry.backupId,
      artifact: randomlyChunked(entry.artifact, random),
    }));
    const index = withIndex
      ? await PageIndexLookup.load(randomlyChunked(chain.fullIndex, random), 'page index of backup full', spill)
      : undefined;
    return await collectBytes(
      combineChain({
        base: { backupId: 'full', tar: randomlyChunked(chain.fullTar, random), ...(index ? { index } : {}) },
        incrementals: links,
        spill,
      }),
    );
  } finally {
    await spill.close();
  }
}

/** The fast path of a chain restore: the full's tar extracted, then the chain's newest state written over it. */
async function patchInPlace(chain: Chain, random: SeededRandom, incrementals = chain.incrementals): Promise<Tree> {
  const directory = await mkdtemp(join(spillRoot, 'in-place-'));
  const spill = newSpill();
  try {
    await extract(chain.fullTar, directory);
    const links: ChainLink[] = incrementals.map((entry) => ({
      backupId: entry.backupId,
      artifact: randomlyChunked(entry.artifact, random),
    }));
    const baseIndex = await PageIndexLookup.load(randomlyChunked(chain.fullIndex, random), 'page index of backup full', spill);
    await patchChainInto({ directory, chain: await readChain('full', links, spill), baseIndex, spill, label: 'the chain' });
    return await treeOfDirectory(directory);
  } finally {
    await spill.close();
    await rm(directory, { recursive: true, force: true });
  }
}

async function applyOnDisk(chain: Chain, random: SeededRandom, incrementals = chain.incrementals): Promise<Tree> {
  const directory = await mkdtemp(join(spillRoot, 'plain-'));
  try {
    await extract(chain.fullTar, directory);
    for (const entry of incrementals) {
      await applyIncrementalToDirectory(
        directory,
        { backupId: entry.backupId, artifact: randomlyChunked(entry.artifact, random) },
        entry.parentId,
      );
    }
    return await treeOfDirectory(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

function withSeed<T>(seed: number, run: () => Promise<T>): Promise<T> {
  return run().catch((error: unknown) => {
    if (error instanceof Error) error.message = `seed ${seed} (replay with ROOKERY_DIFF_SEED=${seed}): ${error.message}`;
    throw error;
  });
}

// ---------------------------------------------------------------------------------------------

describe('block incrementals: a chain of generated changes, combined in one pass and applied on disk', () => {
  it.each([
    ['small data directories, chains of 1 to 6', 6, 'small'],
    ['big relation files', 2, 'big'],
    ['thousands of small files (chains of 1 to 3)', 2, 'many'],
  ] as const)('%s', async (_name, count, shape) => {
    for (const seed of differentialSeeds(count, shape === 'small' ? 20_261_207 : shape === 'big' ? 20_261_208 : 20_261_209)) {
      await withSeed(seed, async () => {
        const random = new SeededRandom(seed);
        spillMemoryBytes = random.pick([0, 256 * 1024, 256 * 1024 * 1024]);
        const chain = await takeChain(random, shape, random.int(1, shape === 'many' ? 3 : 6), random.chance(0.5));
        const newest = chain.states[chain.states.length - 1];
        // The index an incremental writes is the index a full backup of that state would have.
        const last = chain.incrementals[chain.incrementals.length - 1];
        expect((await indexOf(last.tar, random)).equals(last.index)).toBe(true);
        // The full's index and every delta, read oldest first, give that index byte for byte.
        const spill = newSpill();
        try {
          const links: IndexLink[] = [{ backupId: 'full', index: chain.fullIndex, deltaOf: null }];
          // Now and then a link stored its full index (deltaIndex off): it replaces what came before.
          for (const entry of chain.incrementals) {
            const full = random.chance(0.2);
            links.push({ backupId: entry.backupId, index: full ? entry.index : entry.delta, deltaOf: full ? null : entry.parentId });
          }
          expect((await collectBytes((await lookupOfChain(links, spill, random)).serialize())).equals(last.index)).toBe(true);
        } finally {
          await spill.close();
        }
        const combined = await treeOfTar(await combine(chain, random));
        expect(comparable(combined)).toEqual(comparable(newest));
        expect(comparable(await treeOfTar(await combine(chain, random, chain.incrementals, true)))).toEqual(comparable(newest));
        expect(comparable(await patchInPlace(chain, random))).toEqual(comparable(newest));
        expect(comparable(await applyOnDisk(chain, random))).toEqual(comparable(newest));
      });
    }
  });

  it('refuses a flipped byte in a page, or a bad block map, of an incremental in the middle of the chain, naming the backup and the file', async () => {
    let damagedChains = 0;
    for (const seed of differentialSeeds(4, 20_261_210)) {
      await withSeed(seed, async () => {
        const random = new SeededRandom(seed);
        spillMemoryBytes = random.pick([0, 256 * 1024 * 1024]);
        const chain = await takeChain(random, 'small', 3);
        const middle = chain.incrementals[1];
        const stored = await firstStoredPage(middle.artifact, middle);
        // A middle incremental that stored no page (possible, not likely) has nothing to damage.
        if (!stored) return;
        damagedChains++;
        const at = middle.artifact.indexOf(stored.data);
        for (const [damage, message] of [
          [
            (bytes: Buffer) => (bytes[at + random.int(0, stored.data.length - 1)] ^= 0x10),
            `page ${stored.page} of '${stored.path}' in incremental backup incr-2 is damaged`,
          ],
          [
            (bytes: Buffer) => bytes.writeUInt32BE(stored.page + 1, at - 16 - 4),
            `the block map of '${stored.path}' in incremental backup incr-2 is damaged`,
          ],
        ] as const) {
          const damaged = Buffer.from(middle.artifact);
          damage(damaged);
          const incrementals = chain.incrementals.map((entry) => (entry === middle ? { ...entry, artifact: damaged } : entry));
          const combining = combine(chain, random, incrementals);
          await expect(combining).rejects.toThrow(IntegrityError);
          await expect(combining).rejects.toThrow(message);
          await expect(applyOnDisk(chain, random, incrementals)).rejects.toThrow(message);
          await expect(patchInPlace(chain, random, incrementals)).rejects.toThrow(message);
        }
      });
    }
    expect(damagedChains).toBeGreaterThan(0);
  });
});

/** The first page stored in an incremental. */
async function firstStoredPage(artifact: Buffer, header: { backupId: string; parentId: string }) {
  for await (const event of readIncremental(Readable.from([artifact]), header)) if (event.type === 'page') return event;
  return null;
}

// ---------------------------------------------------------------------------------------------

describe('block incrementals: formats and edge cases', () => {
  const random = new SeededRandom(17);
  beforeAll(() => {
    spillMemoryBytes = 64 * 1024 * 1024;
  });

  const base = (): Tree => {
    const tree: Tree = new Map();
    addFile(tree, 'PG_VERSION', Buffer.from('15\n'));
    addFile(tree, 'global/pg_control', random.bytes(PAGE_SIZE));
    addFile(tree, 'base/5/16384', pages(random, 4));
    addFile(tree, 'base/5/16384_fsm', pages(random, 3));
    addFile(tree, 'base/5/16390', Buffer.alloc(0));
    return tree;
  };
  const changed = (tree: Tree, change: (next: Tree, file: (path: string) => Extract<Node, { type: 'file' }>) => void): Tree => {
    const next: Tree = new Map(
      [...tree].map(([path, node]) => [path, node.type === 'file' ? { ...node, content: Buffer.from(node.content) } : { ...node }]),
    );
    change(next, (path) => next.get(path) as Extract<Node, { type: 'file' }>);
    return next;
  };

  /** The incremental from `parent` to `next`: its entries (pages listed), and the combined tar checked against `next`. */
  async function incrementalBetween(parent: Tree, next: Tree): Promise<{ entries: Record<string, string>; artifact: Buffer }> {
    const parentTar = tarOf(parent, random);
    const tar = tarOf(next, random);
    const { artifact } = await takeIncremental(tar, await indexOf(parentTar, random), { backupId: 'b1', parentId: 'b0' }, random);
    const entries: Record<string, string> = {};
    for await (const event of readIncremental(Readable.from([artifact]), { backupId: 'b1', parentId: 'b0' })) {
      if (event.type === 'page') entries[event.path] += ` ${event.page}`;
      else if (event.type === 'delta')
        entries[event.path] = `delta ${event.size}${event.parentPresent ? ` from ${event.parentSize}` : ' new'}:`;
      else if (event.type === 'whole' || event.type === 'unchanged' || event.type === 'removed') entries[event.path] = event.type;
    }
    const chain: Chain = {
      states: [parent, next],
      fullTar: parentTar,
      fullIndex: Buffer.alloc(0),
      incrementals: [{ backupId: 'b1', parentId: 'b0', artifact, index: Buffer.alloc(0), delta: Buffer.alloc(0), tar }],
    };
    const spill = newSpill();
    const combined = await collectBytes(
      combineChain({
        base: { backupId: 'b0', tar: randomlyChunked(parentTar, random) },
        incrementals: [{ backupId: 'b1', artifact: Readable.from([artifact]) }],
        spill,
      }),
    );
    await spill.close();
    expect(comparable(await treeOfTar(combined))).toEqual(comparable(next));
    expect(comparable(await applyOnDisk({ ...chain, fullTar: parentTar }, random))).toEqual(comparable(next));
    return { entries, artifact };
  }

  it.each([
    [
      'nothing changed: every file unchanged, no page stored',
      (tree: Tree) => changed(tree, () => undefined),
      {
        'base/5/16384': 'unchanged',
        'base/5/16384_fsm': 'unchanged',
        'base/5/16390': 'unchanged',
        'global/pg_control': 'unchanged',
        PG_VERSION: 'unchanged',
      },
    ],
    [
      'a page changed: only it is stored',
      (tree: Tree) => changed(tree, (_, file) => (file('base/5/16384').content[2 * PAGE_SIZE + 7] ^= 1)),
      { 'base/5/16384': 'delta 32768 from 32768: 2' },
    ],
    [
      'a file added',
      (tree: Tree) => changed(tree, (next) => addFile(next, 'base/5/16400', pages(random, 2))),
      { 'base/5/16400': 'delta 16384 new: 0 1' },
    ],
    ['a file removed', (tree: Tree) => changed(tree, (next) => next.delete('base/5/16384_fsm')), { 'base/5/16384_fsm': 'removed' }],
    [
      'a file truncated: no page stored',
      (tree: Tree) => changed(tree, (_, file) => (file('base/5/16384').content = file('base/5/16384').content.subarray(0, PAGE_SIZE))),
      { 'base/5/16384': 'delta 8192 from 32768:' },
    ],
    [
      'a file extended: the new pages stored',
      (tree: Tree) =>
        changed(tree, (_, file) => (file('base/5/16384').content = Buffer.concat([file('base/5/16384').content, pages(random, 2)]))),
      { 'base/5/16384': 'delta 49152 from 32768: 4 5' },
    ],
    [
      'a segment .1 appears',
      (tree: Tree) => changed(tree, (next) => addFile(next, 'base/5/16384.1', pages(random, 1))),
      { 'base/5/16384.1': 'delta 8192 new: 0' },
    ],
    [
      'a zero-length file filled, another added',
      (tree: Tree) =>
        changed(tree, (next, file) => {
          file('base/5/16390').content = pages(random, 1);
          addFile(next, 'base/5/16391_vm', Buffer.alloc(0));
        }),
      { 'base/5/16390': 'delta 8192 from 0: 0', 'base/5/16391_vm': 'delta 0 new:' },
    ],
    [
      'a relation emptied',
      (tree: Tree) => changed(tree, (_, file) => (file('base/5/16384_fsm').content = Buffer.alloc(0))),
      { 'base/5/16384_fsm': 'delta 0 from 24576:' },
    ],
    [
      'a non-paged file changed: stored whole',
      (tree: Tree) => changed(tree, (_, file) => (file('global/pg_control').content = random.bytes(PAGE_SIZE))),
      { 'global/pg_control': 'whole' },
    ],
    [
      'a short last page grown by a byte',
      (tree: Tree) =>
        changed(tree, (next, file) => {
          addFile(next, 'base/5/16384', Buffer.concat([file('base/5/16384').content, Buffer.from('x')]));
        }),
      { 'base/5/16384': 'delta 32769 from 32768: 4' },
    ],
  ])('%s', async (_name, change, expected) => {
    const parent = base();
    const { entries } = await incrementalBetween(parent, change(parent));
    const unchanged = Object.fromEntries(
      Object.keys(describe_(parent))
        .filter((path) => parent.get(path)?.type === 'file')
        .map((path) => [path, 'unchanged']),
    );
    expect(entries).toEqual({ ...unchanged, ...expected });
  });

  it('stores a changed page and its map, not the unchanged files: about 8 KiB plus per-file metadata', async () => {
    const parent = base();
    const { artifact: nothing } = await incrementalBetween(
      parent,
      changed(parent, () => undefined),
    );
    const { artifact: onePage } = await incrementalBetween(
      parent,
      changed(parent, (_, file) => (file('base/5/16384').content[PAGE_SIZE] ^= 1)),
    );
    // Five files and their directories: names, modes, sizes and digests, no content.
    expect(nothing.length).toBeLessThan(1024);
    expect(onePage.length - nothing.length).toBeLessThan(PAGE_SIZE + 128);
    expect(onePage.length - nothing.length).toBeGreaterThan(PAGE_SIZE);
  });

  it.each([
    ['base/5/16384', true],
    ['base/5/16384_fsm', true],
    ['base/5/16384_vm.3', true],
    ['base/5/16384_init', true],
    ['global/1262', true],
    ['pg_tblspc/16400/PG_15_202209061/5/16384.1', true],
    ['PG_15_202209061/5/16384', true],
    ['global/pg_control', false],
    ['base/5/pg_filenode.map', false],
    ['base/5/PG_VERSION', false],
    ['base/5/t3_16384', false],
    ['pg_xact/0000', false],
    ['pg_wal/000000010000000000000002', false],
    ['base/5/16384_xyz', false],
  ])('%s is paged: %s', (path, paged) => {
    expect(isPagedPath(path)).toBe(paged);
  });

  it('refuses a damaged or unsorted page index, naming it', async () => {
    const index = await indexOf(tarOf(base(), random), random);
    const read = (bytes: Buffer) =>
      collectBytes(Readable.from(readPageIndex(Readable.from([bytes]), 'page index of backup b0')).map(() => Buffer.alloc(0)));
    await expect(read(index)).resolves.toBeDefined();
    const flipped = Buffer.from(index);
    flipped[flipped.length - 40] ^= 1;
    await expect(read(flipped)).rejects.toThrow('page index of backup b0 is damaged');
    await expect(read(Buffer.concat([Buffer.from('XXXXXXXX'), index.subarray(8)]))).rejects.toThrow('is not a rookery page index');
    await expect(read(index.subarray(0, index.length - 5))).rejects.toThrow('page index of backup b0 ends early');
  });

  it('refuses a chain out of order, an artifact of another backup, a wrong base, and a damaged artifact', async () => {
    const states = [base()];
    states.push(changed(states[0], (_, file) => (file('base/5/16384').content[5] ^= 1)));
    states.push(changed(states[1], (next) => next.delete('base/5/16390')));
    const tars = states.map((state) => tarOf(state, random));
    const first = await takeIncremental(tars[1], await indexOf(tars[0], random), { backupId: 'b1', parentId: 'b0' }, random);
    const second = await takeIncremental(tars[2], first.index, { backupId: 'b2', parentId: 'b1' }, random);
    const combined = (baseTar: Buffer, links: ChainLink[]) => {
      const spill = newSpill();
      return collectBytes(combineChain({ base: { backupId: 'b0', tar: Readable.from([baseTar]) }, incrementals: links, spill })).finally(
        () => spill.close(),
      );
    };
    const link = (backupId: string, artifact: Buffer): ChainLink => ({ backupId, artifact: Readable.from([artifact]) });
    expect(comparable(await treeOfTar(await combined(tars[0], [link('b1', first.artifact), link('b2', second.artifact)])))).toEqual(
      comparable(states[2]),
    );
    // No incremental: the full's tar as it is.
    expect(comparable(await treeOfTar(await combined(tars[0], [])))).toEqual(comparable(states[0]));
    await expect(combined(tars[0], [link('b2', second.artifact)])).rejects.toThrow(IncrementalChainError);
    await expect(combined(tars[0], [link('b2', second.artifact)])).rejects.toThrow('was taken against backup b1, not b0');
    await expect(combined(tars[0], [link('b1', second.artifact)])).rejects.toThrow(
      'holds the incremental of backup b2: the artifact was moved',
    );
    // A base tar without a file the incremental kept from its parent.
    await expect(combined(tars[2], [link('b1', first.artifact)])).rejects.toThrow("backup b0 lacks 'base/5/16390'");
    const damaged = Buffer.from(second.artifact);
    // The removed entry's path: only the artifact's checksum covers it.
    damaged[damaged.indexOf('base/5/16390') + 3] ^= 1;
    await expect(combined(tars[0], [link('b1', first.artifact), link('b2', damaged)])).rejects.toThrow(
      'incremental backup b2 is damaged: its checksum',
    );
  });

  it('in place: refuses a full whose index does not match the chain, a file written through a symbolic link, and a rebuilt file of another digest', async () => {
    const states = [base()];
    states.push(changed(states[0], (_, file) => (file('base/5/16384').content[5] ^= 1)));
    states.push(changed(states[1], (next) => next.delete('base/5/16390')));
    const tars = states.map((state) => tarOf(state, random));
    const indexes = await Promise.all(tars.map((tar) => indexOf(tar, random)));
    const first = await takeIncremental(tars[1], indexes[0], { backupId: 'b1', parentId: 'b0' }, random);
    const link = (backupId: string, artifact: Buffer): ChainLink => ({ backupId, artifact: Readable.from([artifact]) });
    const inPlace = async (baseTar: Buffer, baseIndex: Buffer, links: ChainLink[]) => {
      const directory = await mkdtemp(join(spillRoot, 'in-place-'));
      const spill = newSpill();
      try {
        await extract(baseTar, directory);
        const index = await PageIndexLookup.load(Readable.from([baseIndex]), 'page index of backup b0', spill);
        await patchChainInto({ directory, chain: await readChain('b0', links, spill), baseIndex: index, spill, label: 'the chain' });
        return await treeOfDirectory(directory);
      } finally {
        await spill.close();
        await rm(directory, { recursive: true, force: true });
      }
    };
    expect(comparable(await inPlace(tars[0], indexes[0], [link('b1', first.artifact)]))).toEqual(comparable(states[1]));
    // The full's index stands for its tar: one of another state is refused before anything is written.
    await expect(inPlace(tars[2], indexes[2], [link('b1', first.artifact)])).rejects.toThrow("backup b0 lacks 'base/5/16390'");
    const extra = changed(states[0], (next) =>
      next.set('base/5/99999', { type: 'file', mode: 0o600, mtime: 1, content: Buffer.alloc(8192, 7) }),
    );
    await expect(inPlace(tarOf(extra, random), await indexOf(tarOf(extra, random), random), [link('b1', first.artifact)])).rejects.toThrow(
      "incremental backup b1 does not account for 'base/5/99999' of backup b0",
    );
    // A base page whose digest in the full's index is not the one the chain was taken against.
    const otherBase = changed(states[0], (_, file) => (file('base/5/16384').content[9000] ^= 1));
    await expect(inPlace(tars[0], await indexOf(tarOf(otherBase, random), random), [link('b1', first.artifact)])).rejects.toThrow(
      "'base/5/16384' as the chain rebuilds it does not match the digest incremental backup b1 recorded",
    );
    // A chain that writes under a symbolic link of its own state is refused, not followed.
    const linked = changed(states[0], (next) => next.set('pg_tblspc/16400', { type: 'symlink', target: '/tmp', mode: 0o777, mtime: 1 }));
    const linkedTar = tarOf(linked, random);
    const under = changed(linked, (next) =>
      next.set('pg_tblspc/16400/escape', { type: 'file', mode: 0o600, mtime: 1, content: Buffer.from('x') }),
    );
    const escaping = await takeIncremental(
      tarOf(under, random),
      await indexOf(linkedTar, random),
      { backupId: 'b1', parentId: 'b0' },
      random,
    );
    await expect(inPlace(linkedTar, await indexOf(linkedTar, random), [link('b1', escaping.artifact)])).rejects.toThrow(
      "writes 'pg_tblspc/16400/escape' through the symbolic link 'pg_tblspc/16400'",
    );
  });
});

// ---------------------------------------------------------------------------------------------

/** `bytes` with its trailer's SHA-256 made again: damage only the semantic checks can find. */
function resealed(bytes: Buffer): Buffer {
  const body = bytes.subarray(0, bytes.length - 32);
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

describe('page index deltas', () => {
  const links = (chain: Chain): IndexLink[] => [
    { backupId: 'full', index: chain.fullIndex, deltaOf: null },
    ...chain.incrementals.map((entry) => ({ backupId: entry.backupId, index: entry.delta, deltaOf: entry.parentId })),
  ];
  const readChain = async (chain: IndexLink[], random: SeededRandom) => {
    const spill = newSpill();
    try {
      return await collectBytes((await lookupOfChain(chain, spill, random)).serialize());
    } finally {
      await spill.close();
    }
  };

  it('refuses any flipped byte of a delta in the middle of a chain, naming the backup', async () => {
    for (const seed of differentialSeeds(3, 20_261_211)) {
      await withSeed(seed, async () => {
        const random = new SeededRandom(seed);
        spillMemoryBytes = random.pick([0, 256 * 1024 * 1024]);
        const chain = await takeChain(random, 'small', 3);
        for (let flips = 0; flips < 20; flips++) {
          const damaged = links(chain);
          const delta = Buffer.from(damaged[2].index);
          delta[random.int(0, delta.length - 1)] ^= 1 << random.int(0, 7);
          damaged[2] = { ...damaged[2], index: delta };
          await expect(readChain(damaged, random)).rejects.toThrow(/backup incr-2/);
        }
      });
    }
  });

  it('refuses a delta against another parent, or of another backup, naming both', async () => {
    const random = new SeededRandom(20_261_212);
    spillMemoryBytes = 64 * 1024 * 1024;
    const chain = await takeChain(random, 'small', 3);
    const all = links(chain);
    // incr-2's delta read on top of the full's index: incr-1 left out.
    await expect(readChain([all[0], all[2]], random)).rejects.toThrow(IncrementalChainError);
    await expect(readChain([all[0], all[2]], random)).rejects.toThrow(
      'page index of backup incr-2 is a delta against backup incr-1, not against backup full',
    );
    // A delta first: nothing to apply it to.
    await expect(readChain([all[1]], random)).rejects.toThrow(
      'page index of backup incr-1 is a delta against backup full, and no page index of that backup',
    );
    // incr-2's artifact read as incr-3's.
    await expect(readChain([...all.slice(0, 2), { ...all[2], backupId: 'incr-3' }], random)).rejects.toThrow(
      'page index of backup incr-3 holds the page index of backup incr-2: the artifact was moved',
    );
    // The manifest and the header disagree on the form.
    await expect(readChain([{ ...all[0], deltaOf: 'before' }], random)).rejects.toThrow(
      'page index of backup full is a full index, but its backup',
    );
    // A delta is not a full index.
    await expect(collectBytes(Readable.from(readPageIndex(Readable.from([all[1].index]), 'page index of backup incr-1')))).rejects.toThrow(
      'page index of backup incr-1 is a delta against the page index of backup full',
    );
  });

  it('checks each delta entry against the parent: a page digest that does not give the file digest, sealed again, is refused', async () => {
    const random = new SeededRandom(20_261_213);
    spillMemoryBytes = 64 * 1024 * 1024;
    const tree: Tree = new Map();
    addFile(tree, 'PG_VERSION', Buffer.from('15\n'));
    addFile(tree, 'base/5/16384', pages(random, 4));
    const next: Tree = new Map([
      ...tree,
      [
        'base/5/16384',
        { type: 'file', mode: 0o600, mtime: 0, content: Buffer.from((tree.get('base/5/16384') as { content: Buffer }).content) },
      ],
    ]);
    (next.get('base/5/16384') as { content: Buffer }).content[2 * PAGE_SIZE] ^= 1;
    const fullIndex = await indexOf(tarOf(tree, random), random);
    const { delta } = await takeIncremental(tarOf(next, random), fullIndex, { backupId: 'b1', parentId: 'b0' }, random);
    const chain = (index: Buffer): IndexLink[] => [
      { backupId: 'b0', index: fullIndex, deltaOf: null },
      { backupId: 'b1', index, deltaOf: 'b0' },
    ];
    await expect(readChain(chain(delta), random)).resolves.toBeDefined();
    // One entry: the paged delta of base/5/16384 (path, u64 size, file digest, u32 count, u32 page, page digest).
    const record = delta.indexOf('base/5/16384') + 'base/5/16384'.length + 8 + 32 + 4;
    expect(delta.readUInt32BE(record)).toBe(2);
    const digest = Buffer.from(delta);
    digest[record + 4] ^= 1;
    await expect(readChain(chain(resealed(digest)), random)).rejects.toThrow(
      "page index of backup b1 does not apply to its parent's index: the page digests of 'base/5/16384' it gives do not hash to its file digest",
    );
    const page = Buffer.from(delta);
    page.writeUInt32BE(7, record);
    await expect(readChain(chain(resealed(page)), random)).rejects.toThrow('its page 7 of');
    // Extended by two pages: both listed; one swapped for a page the parent has leaves a new page out.
    const extended: Tree = new Map([
      ...tree,
      [
        'base/5/16384',
        {
          type: 'file',
          mode: 0o600,
          mtime: 0,
          content: Buffer.concat([(tree.get('base/5/16384') as { content: Buffer }).content, pages(random, 2)]),
        },
      ],
    ]);
    const { delta: grown } = await takeIncremental(tarOf(extended, random), fullIndex, { backupId: 'b1', parentId: 'b0' }, random);
    expect([grown.readUInt32BE(record - 4), grown.readUInt32BE(record), grown.readUInt32BE(record + 20)]).toEqual([2, 4, 5]);
    await expect(readChain(chain(grown), random)).resolves.toBeDefined();
    const skipped = Buffer.from(grown);
    skipped.writeUInt32BE(1, record);
    await expect(readChain(chain(resealed(skipped)), random)).rejects.toThrow(
      "page index of backup b1 does not apply to its parent's index: it leaves out page 4 of 'base/5/16384', which the parent lacks",
    );
    // Unchanged: a delta of nothing is its header and trailer.
    const { delta: nothing } = await takeIncremental(tarOf(tree, random), fullIndex, { backupId: 'b1', parentId: 'b0' }, random);
    expect(nothing.length).toBeLessThan(80);
    expect(await readChain(chain(nothing), random)).toEqual(fullIndex);
  });

  it('reads a version 1 index (no form byte) as the same full index', async () => {
    const random = new SeededRandom(20_261_214);
    spillMemoryBytes = 64 * 1024 * 1024;
    const index = await indexOf(tarOf(generateTree(random, 'small'), random), random);
    // Version 2 full: magic (8), u16 version, u32 page size, u8 digest bytes, u8 form 0.
    expect(index.readUInt16BE(8)).toBe(2);
    expect(index[15]).toBe(0);
    const v1 = Buffer.from(Buffer.concat([index.subarray(0, 15), index.subarray(16)]));
    v1.writeUInt16BE(1, 8);
    const version1 = resealed(v1);
    const entries = async (bytes: Buffer) => {
      const read: string[] = [];
      for await (const entry of readPageIndex(Readable.from([bytes]), 'page index of backup b0'))
        read.push(`${entry.kind} ${entry.path} ${entry.size} ${entry.fileDigest.toString('hex')} ${entry.pageDigests.toString('hex')}`);
      return read;
    };
    expect(await entries(version1)).toEqual(await entries(index));
    expect(await readChain([{ backupId: 'b0', index: version1, deltaOf: null }], random)).toEqual(index);
    const spill = newSpill();
    try {
      expect(
        await collectBytes((await PageIndexLookup.load(Readable.from([version1]), 'page index of backup b0', spill)).serialize()),
      ).toEqual(index);
    } finally {
      await spill.close();
    }
  });

  it('stores much less than the full index for a chain of ~3 % page changes', async () => {
    const random = new SeededRandom(20_261_215);
    spillMemoryBytes = 64 * 1024 * 1024;
    const chain = await takeChain(random, 'big', 3, true);
    for (const entry of chain.incrementals) expect(entry.delta.length).toBeLessThan(entry.index.length / 4);
  });
});
