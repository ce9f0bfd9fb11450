import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BackupManifest, RestoreTargetError } from '@rookery/core';
import { releasesChunks } from '@rookery/pipeline';
import { ProcessRunner, TarDriver, lookupOsUser } from '@rookery/postgres';
import { SeededRandom, differentialSeeds, randomlyChunked } from '@rookery/testing';
import { PAGE_SIZE, isPagedPath } from './block-incremental/page-layout';
import { encodeTarHeader, tarEnd, tarPadding } from './block-incremental/tar-members';
import { DeltaApplyCounts, WITHDRAWN_SUFFIX, checkDeltaTarget, startDeltaApply } from './delta-restore';
import { startTarExtraction } from './tar-extraction.factory';

/**
 * Differential spec of the delta restore: a generated PostgreSQL-shaped target state is put in a
 * tar; a drifted copy of it is written to disk (pages changed, files cut, extended, deleted,
 * added, replaced by directories, extra directories, a stale WAL segment and postmaster.pid,
 * changed symlinks, modes and mtimes, a directory replaced by a symlink to elsewhere); the delta
 * apply of the tar must leave exactly what GNU tar (the restore's plain path, and its direct-write
 * path) extracts from the same tar into an empty directory: paths, types, sizes, bytes, modes,
 * owners, file mtimes, link targets; and its counts must be what the two trees' differences
 * predict, page by page (only differing pages written). Every case runs both paths on two copies
 * of the drifted directory, the plain one (readAhead off) and the fast one (read-ahead windows of a
 * random size, the tar's bytes compared as they lie in its chunks, the chunks handed back to their
 * producer, which here scribbles over them at once, as the zstd decoder decodes into them again):
 * both must leave the same tree and counts. A failure names its seed: ROOKERY_DIFF_SEED=<seed>
 * replays just that case.
 */

const runner = new ProcessRunner({ baseEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } });
const asRoot = process.getuid?.() === 0;
const postgresAccount = asRoot ? lookupOsUser('postgres') : null;
const owner = postgresAccount ? { uid: postgresAccount.uid, gid: postgresAccount.gid } : null;
const RENAME = { from: 'global/pg_control', to: 'global/pg_control.rookery-pending' };
const SYSTEM_IDENTIFIER = 7_311_234_567_890_123_456n;
const TABLESPACE_VERSION_DIRECTORY = 'PG_15_202209061';

type Node =
  | { type: 'directory'; mode: number }
  | { type: 'symlink'; target: string }
  | { type: 'file'; mode: number; mtime: number; content: Buffer };
type Tree = Map<string, Node>;
type Shape = 'small' | 'many' | 'big' | 'tablespace';

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rookery-delta-diff-'));
  if (owner) await chown(work, owner.uid, owner.gid);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('delta restore: a drifted directory against a fresh extraction of the same tar', () => {
  it.each([
    ['small trees', 14, 'small'],
    ['thousands of small files', 2, 'many'],
    ['big relation files first', 4, 'big'],
    // A tablespace's archive: PG_<version>_<catversion>/<database oid>/<relfilenode>…, no pg_control.
    ['tablespace archives', 8, 'tablespace'],
  ] as const)(
    '%s: identical trees, only differing pages written',
    async (title, count, shape) => {
      let cases = 0;
      const firstSeed = { small: 1, many: 300_000, big: 600_000, tablespace: 800_000 }[shape];
      for (const seed of differentialSeeds(count, firstSeed)) {
        try {
          await runCase(seed, shape);
        } catch (error) {
          throw new Error(
            `differential case failed (replay: ROOKERY_DIFF_SEED=${seed} jest libs/engine/src/lib/delta-restore.spec.ts -t '${title}'): ${(error as Error).message}`,
            { cause: error },
          );
        }
        cases++;
      }
      expect(cases).toBe(process.env['ROOKERY_DIFF_SEED'] ? 1 : count);
    },
    300_000,
  );
});

async function runCase(seed: number, shape: Shape): Promise<void> {
  const random = new SeededRandom(seed);
  const target = generateTarget(random, shape);
  const tar = tarOf(target, random, shape === 'big');
  const caseDirectory = join(work, String(seed));
  const fresh = join(caseDirectory, 'fresh');
  const plain = join(caseDirectory, 'plain');
  const fast = join(caseDirectory, 'fast');
  const outside = join(caseDirectory, 'outside');
  for (const path of [caseDirectory, fresh, plain, fast, outside]) {
    await mkdir(path, { mode: 0o700 });
    if (owner) await chown(path, owner.uid, owner.gid);
  }
  try {
    // The reference: GNU tar alone or with the direct-write splitter, as a fresh restore extracts.
    const extraction = startTarExtraction(new TarDriver(runner), fresh, RENAME, {
      directWrites: random.chance(0.5),
      directMinBytes: 64 * 1024,
      owner,
      ...(asRoot ? { tarUser: 'postgres' as const } : {}),
    });
    await Promise.all([pipeline(randomlyChunked(tar, random), extraction.sink), extraction.done]);

    const drifted = drift(target, random, outside);
    await writeTree(plain, drifted);
    await writeTree(fast, drifted);
    await writeFile(join(outside, 'decoy'), 'outside the data directory');
    const outsideBefore = await describeDisk(outside);
    const expected = await describeDisk(fresh);

    const counts: DeltaApplyCounts[] = [];
    for (const [directory, readAhead] of [
      [plain, false],
      [fast, true],
    ] as const) {
      const readAheadWindow = random.pick([1, 3, 8, 128]) * PAGE_SIZE;
      // The bound on writes in flight, reached at every page (1), every few, or never here (8 MiB).
      const pendingWriteBytes = random.pick([1, 3, 1024]) * PAGE_SIZE;
      const apply = startDeltaApply(directory, {
        rename: RENAME,
        owner,
        keep: ['backup_manifest'],
        label: `case ${seed}`,
        readAhead,
        readAheadWindow,
        pendingWriteBytes,
      });
      const released = readAhead ? scribbleOnRelease(apply.sink) : null;
      await Promise.all([pipeline(ownedChunks(randomlyChunked(tar, random)), apply.sink), apply.done]);
      // Every chunk goes back once, and only once every byte of it was read.
      if (released) expect(released()).toEqual({ chunks: expect.any(Number), twice: 0, bytes: tar.length });

      const got = await describeDisk(directory);
      // What the restore writes itself stays; a fresh extraction has none of it.
      expect(got.has('backup_manifest')).toBe(drifted.has('backup_manifest'));
      got.delete('backup_manifest');
      expect(firstDifference(got, expected)).toBeNull();
      expect(apply.counts()).toEqual(predictCounts(target, drifted));
      counts.push(apply.counts());
    }
    expect(await describeDisk(outside)).toEqual(outsideBefore);
    // Bytes read and written depend on the window sizes; what was kept, rewritten and removed does not.
    const [plainCounts, fastCounts] = counts.map((counted) => ({ ...counted, bytesCompared: 0, bytesWritten: 0 }));
    expect(fastCounts).toEqual(plainCounts);
  } finally {
    await rm(caseDirectory, { recursive: true, force: true });
  }
}

/**
 * The chunks of `source`, each copied into memory of its own: what a producer that takes its
 * chunks back (the zstd decoder) hands out. randomlyChunked's are views of one buffer.
 */
async function* ownedChunks(source: Readable): AsyncGenerator<Buffer> {
  for await (const chunk of source as AsyncIterable<Buffer>) {
    const owned = Buffer.from(new ArrayBuffer(chunk.length));
    chunk.copy(owned);
    yield owned;
  }
}

/**
 * Listens to a sink's chunk releases as the zstd decoder does, and overwrites each chunk at once
 * (the decoder decodes into it again): a chunk handed back while the apply still needs its bytes
 * leaves a tree that differs from the fresh extraction. Returns what was released.
 */
function scribbleOnRelease(sink: unknown): () => { chunks: number; twice: number; bytes: number } {
  if (!releasesChunks(sink)) throw new Error('the fast path sink does not hand chunks back');
  const seen = new Set<ArrayBufferLike>();
  const tally = { chunks: 0, twice: 0, bytes: 0 };
  sink.onRelease((chunk) => {
    if (seen.has(chunk.buffer)) tally.twice++;
    seen.add(chunk.buffer);
    tally.chunks++;
    tally.bytes += chunk.length;
    chunk.fill(0xa5);
  });
  return () => ({ ...tally });
}

/** A data directory's shape: databases of relation files (forks, segments), global/, WAL, SLRU, config, tablespace links. */
function generateTarget(random: SeededRandom, shape: Shape): Tree {
  const tree: Tree = new Map();
  const directory = (path: string) => tree.set(path, { type: 'directory', mode: random.chance(0.2) ? 0o750 : 0o700 });
  const file = (path: string, content: Buffer) =>
    tree.set(path, { type: 'file', mode: random.chance(0.2) ? 0o640 : 0o600, mtime: random.int(1_600_000_000, 1_700_000_000), content });
  const relation = (path: string, maxPages: number) => {
    const pages = random.int(0, maxPages);
    // A short last page never comes from PostgreSQL, but must round-trip.
    const size = pages * PAGE_SIZE + (random.chance(0.1) ? random.int(1, PAGE_SIZE - 1) : 0);
    file(path, random.bytes(size));
  };
  if (shape === 'tablespace') {
    directory(TABLESPACE_VERSION_DIRECTORY);
    for (const oid of [5, ...Array.from({ length: random.int(0, 2) }, (_, index) => 16_384 + index)]) {
      directory(`${TABLESPACE_VERSION_DIRECTORY}/${oid}`);
      for (let index = 0; index < random.int(1, 10); index++) {
        relation(`${TABLESPACE_VERSION_DIRECTORY}/${oid}/${16_400 + index}`, 6);
        if (random.chance(0.3)) relation(`${TABLESPACE_VERSION_DIRECTORY}/${oid}/${16_400 + index}_fsm`, 3);
      }
    }
    return tree;
  }
  for (const path of ['base', 'global', 'pg_wal', 'pg_wal/archive_status', 'pg_xact', 'pg_tblspc', 'pg_notify', 'pg_stat']) directory(path);
  file('PG_VERSION', Buffer.from('15\n'));
  const control = random.bytes(PAGE_SIZE);
  control.writeBigUInt64LE(SYSTEM_IDENTIFIER, 0);
  file('global/pg_control', control);
  file('global/pg_filenode.map', random.bytes(512));
  for (let index = 0; index < random.int(1, 4); index++) relation(`global/${1260 + index}`, 3);
  file('postgresql.auto.conf', Buffer.from(`# generated\nwork_mem = '${random.int(1, 64)}MB'\n`));
  file('pg_xact/0000', random.bytes(PAGE_SIZE * random.int(1, 2)));
  for (let segment = 1; segment <= random.int(1, 3); segment++) {
    file(`pg_wal/0000000100000000000000${segment.toString(16).padStart(2, '0').toUpperCase()}`, random.bytes(64 * 1024));
  }
  for (const oid of [1, 5, ...Array.from({ length: random.int(0, 2) }, (_, index) => 16_384 + index)]) {
    directory(`base/${oid}`);
    const relations = shape === 'many' ? random.int(400, 700) : random.int(2, 12);
    for (let index = 0; index < relations; index++) {
      const relfilenode = 2_600 + index;
      relation(`base/${oid}/${relfilenode}`, shape === 'many' ? 1 : 6);
      if (random.chance(0.3)) relation(`base/${oid}/${relfilenode}_fsm`, 3);
      if (random.chance(0.2)) relation(`base/${oid}/${relfilenode}_vm`, 1);
      if (shape !== 'many' && random.chance(0.1)) {
        // A relation past its first segment (segments are 1 GiB on a server; any size here).
        file(`base/${oid}/${relfilenode}`, random.bytes(random.int(2, 6) * PAGE_SIZE));
        relation(`base/${oid}/${relfilenode}.1`, 4);
      }
    }
  }
  if (shape === 'big') {
    for (let index = 0; index < random.int(1, 3); index++) file(`base/5/${30_000 + index}`, random.bytes(random.int(256, 512) * PAGE_SIZE));
  }
  for (let index = 0; index < random.int(0, 2); index++)
    tree.set(`pg_tblspc/${16_500 + index}`, { type: 'symlink', target: `/srv/tablespaces/t${index}` });
  return tree;
}

/** The tar of a tree: directories first (as PostgreSQL's tar), then the files shuffled or the biggest first. */
function tarOf(tree: Tree, random: SeededRandom, bigFirst: boolean): Buffer {
  const paths = [...tree.keys()];
  const directories = paths.filter((path) => tree.get(path)?.type === 'directory').sort();
  const others = paths.filter((path) => tree.get(path)?.type !== 'directory');
  for (let index = others.length - 1; index > 0; index--) {
    const other = random.int(0, index);
    [others[index], others[other]] = [others[other], others[index]];
  }
  if (bigFirst) others.sort((a, b) => sizeOf(tree.get(b)) - sizeOf(tree.get(a)));
  const parts: Buffer[] = [];
  for (const path of [...directories, ...others]) {
    const node = tree.get(path) as Node;
    const content = node.type === 'file' ? node.content : Buffer.alloc(0);
    parts.push(
      encodeTarHeader({
        path,
        type: node.type,
        size: content.length,
        mode: node.type === 'symlink' ? 0o777 : node.mode,
        mtime: node.type === 'file' ? node.mtime : 1_650_000_000,
        linkTarget: node.type === 'symlink' ? node.target : '',
      }),
      content,
      tarPadding(content.length),
    );
  }
  // Followed by zeros up to a record, as a writer's last record may be.
  parts.push(tarEnd(), Buffer.alloc(random.int(0, 4) * 512));
  return Buffer.concat(parts);
}

const sizeOf = (node: Node | undefined) => (node?.type === 'file' ? node.content.length : 0);

/**
 * The directory as a copy that drifted from the target: what a broken replica or an older copy
 * of the same system holds. `outside` receives the target of a directory replaced by a symlink.
 */
function drift(target: Tree, random: SeededRandom, outside: string): Tree {
  const drifted: Tree = new Map();
  // Sometimes nothing at all: the apply is then a plain extraction.
  if (random.chance(0.04)) return drifted;
  const replaced: string[] = [];
  for (const [path, node] of target) {
    if (replaced.some((parent) => path.startsWith(`${parent}/`))) continue;
    if (node.type === 'directory') {
      const roll = random.next();
      const databaseDirectory = /^(base|PG_[^/]+)\/\d+$/.test(path);
      if (roll < 0.03 && databaseDirectory) {
        // Whatever the tar writes under it must not land outside the directory.
        drifted.set(path, { type: 'symlink', target: outside });
        replaced.push(path);
      } else if (roll < 0.05 && databaseDirectory) {
        drifted.set(path, { type: 'file', mode: 0o600, mtime: 1_500_000_000, content: random.bytes(100) });
        replaced.push(path);
      } else if (roll < 0.08 && !path.startsWith('base') && !path.startsWith('global') && !path.startsWith('PG_')) {
        replaced.push(path);
      } else {
        drifted.set(path, random.chance(0.1) ? { ...node, mode: 0o755 } : node);
      }
      continue;
    }
    if (node.type === 'symlink') {
      const roll = random.next();
      if (roll < 0.3) drifted.set(path, { type: 'symlink', target: `/srv/elsewhere/${random.int(1, 9)}` });
      else if (roll < 0.4) continue;
      else if (roll < 0.45) drifted.set(path, { type: 'directory', mode: 0o700 });
      else drifted.set(path, node);
      continue;
    }
    const roll = random.next();
    const content = Buffer.from(node.content);
    const mode = random.chance(0.08) ? 0o644 : node.mode;
    const mtime = random.chance(0.1) ? node.mtime - random.int(1, 100_000) : node.mtime;
    if (roll < 0.05) continue;
    if (roll < 0.07) {
      drifted.set(path, { type: 'directory', mode: 0o700 });
      drifted.set(`${path}/inside`, { type: 'file', mode: 0o600, mtime, content: random.bytes(10) });
      continue;
    }
    if (isPagedPath(path)) {
      if (roll < 0.3 && content.length > 0) {
        // Rows changed: a few pages differ somewhere (a byte or a whole page).
        for (let change = 0; change < random.int(1, 3); change++) {
          const offset = random.int(0, content.length - 1);
          content[offset] ^= random.int(1, 255);
        }
        drifted.set(path, { type: 'file', mode, mtime, content });
      } else if (roll < 0.4) {
        drifted.set(path, { type: 'file', mode, mtime, content: content.subarray(0, random.int(0, content.length)) });
      } else if (roll < 0.5) {
        drifted.set(path, { type: 'file', mode, mtime, content: Buffer.concat([content, random.bytes(random.int(1, 3) * PAGE_SIZE)]) });
      } else {
        drifted.set(path, { type: 'file', mode, mtime, content });
      }
    } else if (roll < 0.25 && content.length > 0) {
      content[random.int(0, content.length - 1)] ^= 0x5a;
      drifted.set(path, { type: 'file', mode, mtime, content });
    } else if (roll < 0.35) {
      drifted.set(path, { type: 'file', mode, mtime, content: random.bytes(random.int(0, content.length + 100)) });
    } else {
      drifted.set(path, { type: 'file', mode, mtime, content });
    }
  }
  const add = (path: string, node: Node) => {
    if (!target.has(path) && drifted.get(dirname(path))?.type === 'directory') drifted.set(path, node);
  };
  const strayFile = (bytes: number): Node => ({ type: 'file', mode: 0o600, mtime: 1_500_000_000, content: random.bytes(bytes) });
  // Files of a dropped relation, a stale WAL segment (recovery would replay it), a stale postmaster.pid.
  drifted.set('postmaster.pid', { type: 'file', mode: 0o600, mtime: 1_500_000_000, content: Buffer.from('2147483600\n/x\n') });
  if (random.chance(0.5)) drifted.set('postmaster.opts', strayFile(40));
  drifted.set('backup_manifest', strayFile(300));
  add('pg_wal/0000000100000000000000FF', strayFile(64 * 1024));
  add('pg_wal/archive_status/0000000100000000000000FF.done', strayFile(0));
  for (const [path, node] of [...drifted]) {
    if (node.type === 'directory' && /^(base|PG_[^/]+)\//.test(path) && random.chance(0.3))
      add(`${path}/99${random.int(100, 999)}`, strayFile(PAGE_SIZE * random.int(0, 2)));
  }
  if (random.chance(0.5)) {
    // A dropped database's directory (in a tablespace's archive: under its version directory).
    const dropped = target.has('base') ? 'base/77777' : `${TABLESPACE_VERSION_DIRECTORY}/77777`;
    add(dropped, { type: 'directory', mode: 0o700 });
    add(`${dropped}/1`, strayFile(PAGE_SIZE));
    add(`${dropped}/nested`, { type: 'directory', mode: 0o700 });
    add(`${dropped}/nested/2`, strayFile(10));
  }
  if (drifted.get('pg_tblspc')?.type === 'directory' && random.chance(0.3))
    add('pg_tblspc/17000', { type: 'symlink', target: '/srv/dropped' });
  return drifted;
}

/** Writes a tree into an empty directory (parents before children: the map is in that order). */
async function writeTree(root: string, tree: Tree): Promise<void> {
  for (const path of [...tree.keys()].sort()) {
    const node = tree.get(path) as Node;
    const at = join(root, path);
    if (node.type === 'directory') {
      await mkdir(at);
      await chmod(at, node.mode);
    } else if (node.type === 'symlink') {
      await symlink(node.target, at);
    } else {
      await writeFile(at, node.content);
      await chmod(at, node.mode);
      await utimes(at, node.mtime, node.mtime);
    }
  }
}

/** What a restored tree looks like: per path its type, mode, owner, and size, bytes and mtime or link target. */
async function describeDisk(root: string): Promise<Map<string, string>> {
  const described = new Map<string, string>();
  const walk = async (relative: string) => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const found = await lstat(join(root, path));
      const who = `${found.uid}:${found.gid}`;
      if (found.isSymbolicLink()) described.set(path, `symlink ${await readlink(join(root, path))} ${who}`);
      else if (found.isDirectory()) {
        described.set(path, `directory ${(found.mode & 0o7777).toString(8)} ${who}`);
        await walk(path);
      } else {
        const content = await readFile(join(root, path));
        described.set(
          path,
          `file ${(found.mode & 0o7777).toString(8)} ${who} ${found.size} ${createHash('sha256').update(content).digest('hex')} ${found.mtimeMs}`,
        );
      }
    }
  };
  await walk('');
  return described;
}

function firstDifference(got: Map<string, string>, expected: Map<string, string>): string | null {
  for (const [path, value] of expected) if (got.get(path) !== value) return `${path}: expected ${value}, got ${got.get(path) ?? 'nothing'}`;
  for (const [path, value] of got) if (!expected.has(path)) return `${path}: not expected, got ${value}`;
  return null;
}

/**
 * What the apply must report, from the two trees alone: a relation file's differing pages (a page
 * the drifted file lacks or has shorter counts), whole files kept only when equal, and the
 * entries the tar lacks whose parent stays a directory (removed at the end, the top one each).
 */
function predictCounts(target: Tree, drifted: Tree): DeltaApplyCounts {
  const counts = { filesKept: 0, filesRewritten: 0, filesCreated: 0, pagesRewritten: 0, linksWritten: 0, entriesRemoved: 0 };
  const onDisk = (path: string) => (path === RENAME.from ? RENAME.to : path);
  for (const [path, node] of target) {
    const found = drifted.get(onDisk(path));
    if (node.type === 'symlink') {
      if (found?.type !== 'symlink' || found.target !== node.target) counts.linksWritten++;
      continue;
    }
    if (node.type !== 'file') continue;
    const pages = Math.ceil(node.content.length / PAGE_SIZE);
    if (found?.type !== 'file') {
      counts.filesCreated++;
      if (isPagedPath(path)) counts.pagesRewritten += pages;
      continue;
    }
    if (isPagedPath(path)) {
      let differing = 0;
      for (let page = 0; page < pages; page++) {
        const start = page * PAGE_SIZE;
        const end = Math.min(start + PAGE_SIZE, node.content.length);
        if (!node.content.subarray(start, end).equals(found.content.subarray(start, end))) differing++;
      }
      counts.pagesRewritten += differing;
      if (differing > 0 || found.content.length !== node.content.length) counts.filesRewritten++;
      else counts.filesKept++;
    } else if (found.content.equals(node.content)) counts.filesKept++;
    else counts.filesRewritten++;
  }
  const listed = new Set([...target.keys()].map(onDisk));
  for (const path of drifted.keys()) {
    const name = path === RENAME.from ? `${RENAME.from}${WITHDRAWN_SUFFIX}` : path;
    const parent = dirname(path);
    const parentStays = parent === '.' || (target.get(parent)?.type === 'directory' && drifted.get(parent)?.type === 'directory');
    if (!listed.has(name) && name !== 'backup_manifest' && parentStays) counts.entriesRemoved++;
  }
  return expect.objectContaining(counts) as DeltaApplyCounts;
}

describe('delta restore: the target checks', () => {
  const manifest = (overrides: Partial<BackupManifest['postgres']> = {}): Pick<BackupManifest, 'id' | 'postgres'> => ({
    id: '20261207T120000-oltp',
    postgres: { version: '15.8', versionNum: 150008, systemIdentifier: SYSTEM_IDENTIFIER.toString(), ...overrides },
  });
  let directory: string;

  beforeEach(async () => {
    directory = await mkdtemp(join(work, 'target-'));
    await mkdir(join(directory, 'global'));
    await writeFile(join(directory, 'PG_VERSION'), '15\n');
    const control = Buffer.alloc(PAGE_SIZE);
    control.writeBigUInt64LE(SYSTEM_IDENTIFIER, 0);
    await writeFile(join(directory, 'global/pg_control'), control);
  });

  it('accepts a stopped data directory of the same system, and one a failed delta restore left', async () => {
    await writeFile(join(directory, 'postmaster.pid'), `${process.pid}\n${directory}\n`);
    // A stale postmaster.pid whose PID a process other than postgres reuses is no running server.
    await expect(checkDeltaTarget(directory, manifest())).resolves.toBeUndefined();
    await rename(join(directory, 'global/pg_control'), join(directory, `global/pg_control${WITHDRAWN_SUFFIX}`));
    await expect(checkDeltaTarget(directory, manifest())).resolves.toBeUndefined();
  });

  it.each([
    [
      'an absent directory',
      async () => rm(directory, { recursive: true }),
      /does not exist: --delta restores into an existing data directory/,
    ],
    [
      'a directory without PG_VERSION',
      async () => rm(join(directory, 'PG_VERSION')),
      /is not a PostgreSQL data directory: it has no PG_VERSION/,
    ],
    ['a directory without pg_control', async () => rm(join(directory, 'global/pg_control')), /it has no global\/pg_control/],
    [
      'another major version',
      async () => writeFile(join(directory, 'PG_VERSION'), '14\n'),
      /holds a PostgreSQL 14 data directory; backup '.*' is of PostgreSQL 15/,
    ],
  ])('refuses %s', async (_title, damage, message) => {
    await damage();
    await expect(checkDeltaTarget(directory, manifest())).rejects.toThrow(message);
    await expect(checkDeltaTarget(directory, manifest())).rejects.toBeInstanceOf(RestoreTargetError);
  });

  it('refuses a directory of another database system, naming both identifiers', async () => {
    const error = await checkDeltaTarget(directory, manifest({ systemIdentifier: '7000000000000000001' })).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(RestoreTargetError);
    expect((error as Error).message).toBe(
      `restore directory '${directory}' belongs to database system ${SYSTEM_IDENTIFIER}; backup '20261207T120000-oltp' is of database system 7000000000000000001`,
    );
  });

  it('refuses a directory a live postmaster runs on, and accepts it once that process is gone', async () => {
    const postmaster = spawn('sleep', ['60'], { argv0: 'postgres' });
    await new Promise((resolve) => postmaster.once('spawn', resolve));
    try {
      await writeFile(join(directory, 'postmaster.pid'), `${postmaster.pid}\n${directory}\n`);
      const error = await checkDeltaTarget(directory, manifest()).catch((caught: unknown) => caught);
      expect((error as Error).message).toBe(
        `a server is running on '${directory}' (postmaster.pid names process ${postmaster.pid}): refusing to restore into it`,
      );
      expect((error as RestoreTargetError).hint).toBe(`stop it first, e.g. pg_ctl stop -D ${directory}`);
    } finally {
      postmaster.kill();
      await new Promise((resolve) => postmaster.once('exit', resolve));
    }
    await expect(checkDeltaTarget(directory, manifest())).resolves.toBeUndefined();
  });

  it("accepts tablespace directories that are absent, empty or this version's, and refuses one holding anything else", async () => {
    const tablespace = (name: string) => ({ name, restoredTo: join(directory, '..', `${name}-${Date.now()}`) });
    const absentOne = tablespace('absent');
    const own = tablespace('own');
    await mkdir(join(own.restoredTo, 'PG_15_202209061'), { recursive: true });
    await expect(checkDeltaTarget(directory, manifest(), [absentOne, own])).resolves.toBeUndefined();
    const foreign = tablespace('foreign');
    await mkdir(join(foreign.restoredTo, 'PG_16_202307071'), { recursive: true });
    await expect(checkDeltaTarget(directory, manifest(), [own, foreign])).rejects.toThrow(
      `the directory of tablespace 'foreign' '${foreign.restoredTo}' holds 'PG_16_202307071', which is not this tablespace's PostgreSQL 15 directory: a delta restore would remove it`,
    );
  });
});

describe('delta restore: pg_control', () => {
  it('is withdrawn before anything else is written, and stays away when the apply is aborted', async () => {
    const directory = await mkdtemp(join(work, 'withdraw-'));
    await mkdir(join(directory, 'global'));
    await writeFile(join(directory, 'global/pg_control'), 'old control file');
    await writeFile(join(directory, 'PG_VERSION'), '15\n');
    const apply = startDeltaApply(directory, { rename: RENAME });
    // Half a header: nothing can have been applied yet.
    apply.sink.write(Buffer.alloc(100));
    for (let attempt = 0; attempt < 200 && (await lstat(join(directory, 'global/pg_control')).catch(() => null)); attempt++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await readdir(join(directory, 'global'))).toEqual([`pg_control${WITHDRAWN_SUFFIX}`]);
    expect(await readFile(join(directory, 'PG_VERSION'), 'utf8')).toBe('15\n');
    apply.abort();
    await expect(apply.done).rejects.toThrow('delta apply aborted');
    expect(await readdir(join(directory, 'global'))).toEqual([`pg_control${WITHDRAWN_SUFFIX}`]);
  });
});
