import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { IncrementalChainError, IntegrityError } from '@rookery/core';
import { SeededRandom, collectBytes, differentialSeeds, randomlyChunked } from '@rookery/testing';
import { combineChain } from './chain-combiner';
import { ExactReader } from './exact-reader';
import { applyIncrementalToDirectory } from './incremental-apply';
import { buildPageIndex, writeIncremental } from './incremental-writer';
import { PageIndexLookup, PageIndexWriter } from './page-index';
import { PAGE_SIZE } from './page-layout';
import {
  encodeServerIncremental,
  readServerIncrementalHeader,
  serverIncrementalHeaderLength,
  serverIncrementalTarget,
} from './server-incremental';
import { SpillStore } from './spill-store';
import { encodeTarHeader, readTarMembers, tarEnd, tarPadding } from './tar-members';

/**
 * PostgreSQL 17+'s INCREMENTAL.* members turned into rookery deltas (writeIncremental with
 * serverIncremental), differentially: generated parent files and incremental files (blocks sent,
 * truncation lengths below, at and past the parent's length, gaps) against a plain reference
 * reconstruction written from pg_combinebackup's rules. The combined tar and the plain path must
 * hold the reference's bytes, and the new page index must be exactly the one a full pass over the
 * reconstructed tar builds (the pages not sent keep the parent's digests). A failure names its
 * seed: ROOKERY_DIFF_SEED=<seed> replays it.
 */

type Files = Map<string, Buffer>;

function tarOf(files: Files): Buffer {
  const parts: Buffer[] = [encodeTarHeader({ path: 'base', type: 'directory', size: 0, mode: 0o700, mtime: 1, linkTarget: '' })];
  parts.push(encodeTarHeader({ path: 'base/5', type: 'directory', size: 0, mode: 0o700, mtime: 1, linkTarget: '' }));
  for (const [path, content] of files) {
    parts.push(
      encodeTarHeader({ path, type: 'file', size: content.length, mode: 0o600, mtime: 1, linkTarget: '' }),
      content,
      tarPadding(content.length),
    );
  }
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

async function filesOfTar(tar: Buffer): Promise<Files> {
  const reader = new ExactReader(Readable.from([tar]), 'a tar');
  const files: Files = new Map();
  for await (const member of readTarMembers(reader))
    if (member.type === 'file') files.set(member.path, await reader.read(member.size, member.path));
  return files;
}

/** pg_combinebackup's reconstruction of one file from its parent and an incremental file, written plainly. */
function reconstruct(parent: Buffer, truncationBlockLength: number, blocks: number[], pages: Buffer): Buffer {
  const length = Math.max(truncationBlockLength, blocks.length > 0 ? (blocks[blocks.length - 1] as number) + 1 : 0);
  const parentBlocks = Math.floor(parent.length / PAGE_SIZE);
  const out = Buffer.alloc(length * PAGE_SIZE);
  for (let block = 0; block < length; block++) {
    const sent = blocks.indexOf(block);
    if (sent >= 0) pages.copy(out, block * PAGE_SIZE, sent * PAGE_SIZE, (sent + 1) * PAGE_SIZE);
    else if (block < truncationBlockLength && block < parentBlocks)
      parent.copy(out, block * PAGE_SIZE, block * PAGE_SIZE, (block + 1) * PAGE_SIZE);
  }
  return out;
}

/** A generated incremental file against `parentBlocks`: any mix of a cut, a growth, gaps, nothing sent. */
function generateIncremental(random: SeededRandom, parentBlocks: number) {
  const truncationBlockLength = random.pick([
    0,
    parentBlocks,
    random.int(0, parentBlocks + 5),
    Math.max(0, parentBlocks - random.int(1, 4)),
  ]);
  const span = Math.max(truncationBlockLength, parentBlocks) + (random.chance(0.4) ? random.int(1, 12) : 0);
  const density = random.pick([0, 0.03, 0.2, 0.7]);
  const blocks: number[] = [];
  for (let block = 0; block < span; block++) if (random.chance(density)) blocks.push(block);
  return { truncationBlockLength, blocks, pages: random.bytes(blocks.length * PAGE_SIZE) };
}

let spillRoot: string;
beforeAll(async () => {
  spillRoot = await mkdtemp(join(tmpdir(), 'rookery-server-incr-'));
});
afterAll(async () => {
  await rm(spillRoot, { recursive: true, force: true });
});

async function serialized(index: PageIndexWriter): Promise<Buffer> {
  return collectBytes(index.serialize());
}

async function indexOf(tar: Buffer, random: SeededRandom, spill: SpillStore): Promise<Buffer> {
  return serialized(await buildPageIndex(randomlyChunked(tar, random), 'a base tar', new PageIndexWriter(spill)));
}

async function takeServerIncremental(parentTar: Buffer, serverTar: Buffer, random: SeededRandom) {
  const spill = new SpillStore({ memoryBytes: random.pick([0, 1 << 20]), directory: spillRoot });
  try {
    const parentIndex = await indexOf(parentTar, random, spill);
    const parent = await PageIndexLookup.load(randomlyChunked(parentIndex, random), 'page index of backup full', spill);
    const writing = writeIncremental({
      tar: randomlyChunked(serverTar, random),
      label: 'base tar of incr-1',
      header: { backupId: 'incr-1', parentId: 'full' },
      parent,
      index: new PageIndexWriter(spill),
      serverIncremental: true,
    });
    const artifact = await collectBytes(writing.artifact);
    const { index, counts } = await writing.result;
    return { artifact, index: await serialized(index), counts };
  } finally {
    await spill.close();
  }
}

describe('PostgreSQL 17 incremental files (INCREMENTAL.*) as rookery deltas', () => {
  it('names the relation file behind an incremental file, and sizes headers as the server does', () => {
    expect(serverIncrementalTarget('base/5/INCREMENTAL.16384')).toBe('base/5/16384');
    expect(serverIncrementalTarget('base/5/INCREMENTAL.16384_vm.2')).toBe('base/5/16384_vm.2');
    expect(serverIncrementalTarget('global/INCREMENTAL.1262')).toBe('global/1262');
    expect(serverIncrementalTarget('base/5/16384')).toBeNull();
    expect(serverIncrementalTarget('INCREMENTAL.')).toBeNull();
    // 12 bytes alone without blocks; padded to a whole block as soon as one block follows.
    expect([0, 1, 2045, 2046].map(serverIncrementalHeaderLength)).toEqual([12, 8192, 8192, 16_384]);
  });

  it('reconstructs generated files exactly as pg_combinebackup would, and keeps the new page index complete', async () => {
    for (const seed of differentialSeeds(12, 20_261_217)) {
      const random = new SeededRandom(seed);
      try {
        const parentFiles: Files = new Map();
        const serverFiles: Files = new Map();
        const expected: Files = new Map();
        parentFiles.set('PG_VERSION', Buffer.from('17\n'));
        serverFiles.set('PG_VERSION', Buffer.from('17\n'));
        expected.set('PG_VERSION', Buffer.from('17\n'));
        for (let relation = 0; relation < random.int(1, 6); relation++) {
          const path = `base/5/${16_384 + relation}${random.pick(['', '', '_vm', '.1'])}`;
          if (parentFiles.has(path)) continue;
          // A short last page never comes from PostgreSQL; reconstruction takes whole blocks only.
          const parent = Buffer.concat([
            random.bytes(random.int(0, 24) * PAGE_SIZE),
            random.chance(0.05) ? random.bytes(100) : Buffer.alloc(0),
          ]);
          parentFiles.set(path, parent);
          const { truncationBlockLength, blocks, pages } = generateIncremental(random, Math.floor(parent.length / PAGE_SIZE));
          serverFiles.set(path.replace(/\/(?=[^/]+$)/, '/INCREMENTAL.'), encodeServerIncremental(truncationBlockLength, blocks, pages));
          expected.set(path, reconstruct(parent, truncationBlockLength, blocks, pages));
        }
        // A relation file sent whole (no summary for it, or most of it changed), and one gone.
        const whole = random.bytes(random.int(1, 5) * PAGE_SIZE);
        parentFiles.set('base/5/20000', random.chance(0.5) ? whole : random.bytes(3 * PAGE_SIZE));
        serverFiles.set('base/5/20000', whole);
        expected.set('base/5/20000', whole);
        parentFiles.set('base/5/20001', random.bytes(2 * PAGE_SIZE));

        const parentTar = tarOf(parentFiles);
        const { artifact, index, counts } = await takeServerIncremental(parentTar, tarOf(serverFiles), random);
        expect(counts.removed).toBe(1);

        const spill = new SpillStore({ memoryBytes: 1 << 20, directory: spillRoot });
        let combined: Buffer;
        try {
          combined = await collectBytes(
            combineChain({
              base: { backupId: 'full', tar: randomlyChunked(parentTar, random) },
              incrementals: [{ backupId: 'incr-1', artifact: randomlyChunked(artifact, random) }],
              spill,
            }),
          );
          expect(await filesOfTar(combined)).toEqual(expected);
          // The new index, built without reading the pages not sent, is the one a full pass builds.
          expect(index.equals(await indexOf(combined, random, spill))).toBe(true);
        } finally {
          await spill.close();
        }

        const directory = await mkdtemp(join(spillRoot, 'plain-'));
        try {
          await writeFile(join(directory, 'PG_VERSION'), '17\n');
          await mkdir(join(directory, 'base/5'), { recursive: true });
          for (const [path, content] of parentFiles) await writeFile(join(directory, path), content);
          await applyIncrementalToDirectory(directory, { backupId: 'incr-1', artifact: randomlyChunked(artifact, random) }, 'full');
          for (const [path, content] of expected) expect((await readFile(join(directory, path))).equals(content)).toBe(true);
        } finally {
          await rm(directory, { recursive: true, force: true });
        }
      } catch (error) {
        if (error instanceof Error) error.message = `seed ${seed} (replay with ROOKERY_DIFF_SEED=${seed}): ${error.message}`;
        throw error;
      }
    }
  });

  it('stores only the blocks sent (and zeros past the parent), counting the pages it never read', async () => {
    const random = new SeededRandom(7);
    const parent = random.bytes(100 * PAGE_SIZE);
    const pages = random.bytes(2 * PAGE_SIZE);
    const parentTar = tarOf(new Map([['base/5/16384', parent]]));
    // Blocks 3 and 101 sent; 100 is a gap past the parent's end: zeros.
    const serverTar = tarOf(new Map([['base/5/INCREMENTAL.16384', encodeServerIncremental(100, [3, 101], pages)]]));
    const { counts } = await takeServerIncremental(parentTar, serverTar, random);
    expect(counts).toMatchObject({ serverIncrementalFiles: 1, deltaFiles: 1, pagesRead: 2, pagesStored: 3, pagesSkipped: 99 });
  });

  it.each([
    ['a bad magic number', () => Buffer.from([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]), /magic number 0x4030201/],
    [
      'a member shorter than its blocks',
      () => encodeServerIncremental(4, [1, 2], Buffer.alloc(PAGE_SIZE)),
      /bytes where 2 blocks make 24576/,
    ],
    ['unsorted block numbers', () => encodeServerIncremental(4, [2, 1], Buffer.alloc(2 * PAGE_SIZE)), /block 1 after block 2/],
    ['a truncation length past a segment', () => encodeServerIncremental(131_073, [], Buffer.alloc(0)), /truncation block length 131073/],
  ])('refuses an incremental file with %s, naming it', async (_name, bytes, message) => {
    const content = bytes();
    const reader = new ExactReader(Readable.from([content]), 'a tar');
    const error = await readServerIncrementalHeader(reader, content.length, "incremental file 'base/5/INCREMENTAL.16384'").catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(IntegrityError);
    expect((error as Error).message).toMatch(/^incremental file 'base\/5\/INCREMENTAL.16384' is not a valid PostgreSQL incremental file: /);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses an incremental file for a file the parent does not have (another parent’s manifest was uploaded)', async () => {
    const random = new SeededRandom(11);
    const parentTar = tarOf(new Map([['base/5/16384', random.bytes(PAGE_SIZE)]]));
    const serverTar = tarOf(new Map([['base/5/INCREMENTAL.16999', encodeServerIncremental(1, [], Buffer.alloc(0))]]));
    const error = await takeServerIncremental(parentTar, serverTar, random).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncrementalChainError);
    expect((error as Error).message).toMatch(
      /incremental file 'base\/5\/INCREMENTAL.16999' of base tar of incr-1 needs 'base\/5\/16999' of the parent backup/,
    );
  });
});
