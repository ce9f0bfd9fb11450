import { createHash } from 'node:crypto';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ProcessRunner, TarDriver, lookupOsUser } from '@rookery/postgres';
import { SeededRandom, differentialSeeds } from '@rookery/testing';
import { startTarExtraction } from './tar-extraction.factory';

/**
 * Differential spec of the restore's fast path: the same archive extracted by GNU tar alone
 * (restore.directWrites: false) and by the DirectTarSplitter in front of GNU tar (the default),
 * with the production flags (1 MiB records, --read-full-records, the pg_control rename), must give
 * identical trees: names, types, contents, modes, owners, mtimes, symlink targets, hard-link
 * groups. The archives are made by GNU tar from generated trees, members in a generated order
 * (directories then big files first, files at the size threshold ±1 byte, long names with GNU and
 * pax headers, hard links, symlinks, empty and all-zero files, segment files, thousands of small
 * files), and fed in random chunk sizes. A failure names its seed: ROOKERY_DIFF_SEED=<seed>
 * replays just that case.
 */

const runner = new ProcessRunner({ baseEnv: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' } });
const asRoot = process.getuid?.() === 0;
const postgres = asRoot ? lookupOsUser('postgres') : null;
const owner = postgres ? { uid: postgres.uid, gid: postgres.gid } : null;
const RENAME = { from: 'global/pg_control', to: 'global/pg_control.pending' };
/** Members' mtimes lie here; a directory with a later one was made without a header (now). */
const HEADER_MTIME_MIN = 1_000_000_000;
const HEADER_MTIME_MAX = 1_700_000_000;

type Shape = 'small' | 'default' | 'many' | 'tablespace';

interface GeneratedTree {
  /** Member paths in archive order (the order given to tar --files-from). */
  members: string[];
  format: 'gnu' | 'pax' | 'ustar';
  directMinBytes: number;
  bigFiles: number;
}

let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'rookery-tar-diff-'));
  // tar runs as postgres when we are root: it must reach the output directories.
  if (owner) await chown(work, owner.uid, owner.gid);
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('tar extraction: the direct-write fast path against GNU tar alone', () => {
  it.each([
    ['small trees, small threshold', 64, 'small'],
    ['base-backup shapes at the 1 MiB default', 8, 'default'],
    ['thousands of small files', 2, 'many'],
    // A tablespace's archive: PG_<version>_<catversion>/<database oid>/<relfilenode>…, no pg_control.
    ['tablespace archive shapes at the 1 MiB default', 8, 'tablespace'],
  ] as const)(
    '%s: identical trees',
    async (_title, count, shape) => {
      let cases = 0;
      let bigFiles = 0;
      const firstSeed = { small: 1, default: 500_000, many: 900_000, tablespace: 700_000 }[shape];
      for (const seed of differentialSeeds(count, firstSeed)) {
        try {
          bigFiles += await runCase(seed, shape);
        } catch (error) {
          throw new Error(
            `differential case failed (replay: ROOKERY_DIFF_SEED=${seed} jest libs/engine/src/lib/tar-extraction.spec.ts -t '${_title}'): ${(error as Error).message}`,
            {
              cause: error,
            },
          );
        }
        cases++;
      }
      expect(cases).toBe(process.env['ROOKERY_DIFF_SEED'] ? 1 : count);
      // The fast path was really taken, not skipped: the trees hold big files it writes itself.
      expect(bigFiles).toBeGreaterThan(0);
    },
    900_000,
  );
});

async function runCase(seed: number, shape: Shape): Promise<number> {
  const random = new SeededRandom(seed);
  const root = join(work, String(seed));
  const source = join(root, 'source');
  await mkdir(source, { recursive: true });
  const tree = await generateTree(random, source, shape);
  const archive = await createArchive(root, source, tree);

  const plain = join(root, 'plain');
  const fast = join(root, 'fast');
  const plainResult = await extract(archive, plain, {
    directWrites: false,
    random: new SeededRandom(seed + 1),
    directMinBytes: tree.directMinBytes,
  });
  const fastResult = await extract(archive, fast, {
    directWrites: true,
    random: new SeededRandom(seed + 2),
    directMinBytes: tree.directMinBytes,
  });
  expect(plainResult.files).toBe(0);
  const [expected, actual] = await Promise.all([describeTree(plain), describeTree(fast)]);
  for (const [path, description] of expected) {
    if (description.includes('mtime=extraction time'))
      actual.set(path, actual.get(path)?.replace(/mtime=\d+$/, 'mtime=extraction time') ?? 'missing');
  }
  expect(actual).toEqual(expected);
  // Every member of the archive came out (the rename applied), so the trees compared are whole.
  for (const member of tree.members) {
    const path = member === RENAME.from ? RENAME.to : member;
    expect(expected.has(path)).toBe(true);
  }
  await rm(root, { recursive: true, force: true });
  return fastResult.files;
}

/**
 * Writes a random tree under `source` and returns its members in archive order: depth first, each
 * directory's members together (as tar and PostgreSQL write them: GNU tar sets a directory's
 * times once the archive has left it), in a random order within the directory.
 */
async function generateTree(random: SeededRandom, source: string, shape: Shape): Promise<GeneratedTree> {
  const directMinBytes = shape === 'default' || shape === 'tablespace' ? 1024 * 1024 : random.pick([4096, 8192, 16 * 1024, 64 * 1024]);
  const members: string[] = [];
  const files: string[] = [];
  const directories: { path: string; mode: number; mtime: number }[] = [];
  let longNames = false;
  let bigFiles = 0;

  const fileSize = (): number => {
    const roll = random.next();
    if (roll < 0.25) return random.int(0, 600);
    if (roll < 0.4) return random.int(601, Math.max(601, directMinBytes - 2));
    if (roll < 0.6) return directMinBytes + random.int(-1, 1);
    if (roll < 0.7) return directMinBytes + random.int(0, 4) * 4096;
    if (roll < 0.8) return 0;
    return directMinBytes + random.int(0, directMinBytes === 1024 * 1024 ? 2 * 1024 * 1024 : 6 * directMinBytes);
  };
  const fileBytes = (size: number): Buffer => {
    const kind = random.int(0, 3);
    if (kind === 0) return Buffer.alloc(size); // all-zero pages: sparse-looking relation files
    if (kind === 1) {
      // Zero pages with a few written ones, as a fresh relation extended by bulk inserts.
      const bytes = Buffer.alloc(size);
      for (let page = 0; page * 8192 < size; page++)
        if (random.chance(0.3))
          block.copy(bytes, page * 8192, random.int(0, 7) * 8192, random.int(0, 7) * 8192 + Math.min(8192, size - page * 8192));
      return bytes;
    }
    return patterned(size);
  };
  // Big files are tiled from one random block with each 8 KiB page numbered: distinct pages
  // without generating megabytes of random numbers per case.
  const block = random.bytes(64 * 1024);
  const patterned = (size: number): Buffer => {
    if (size <= block.length) return random.bytes(size);
    const bytes = Buffer.allocUnsafe(size);
    const salt = random.int(0, 0xffffff);
    for (let offset = 0; offset < size; offset += block.length) block.copy(bytes, offset, 0, Math.min(block.length, size - offset));
    for (let page = 0; page * 8192 + 4 <= size; page++) bytes.writeUInt32LE((page * 2_654_435_761 + salt) >>> 0, page * 8192);
    return bytes;
  };
  const name = (): string => {
    if (random.chance(0.08)) {
      longNames = true;
      return `${'long_relation_name_'.repeat(random.int(6, 12))}${random.int(0, 99_999)}`;
    }
    return String(random.int(1, 99_999));
  };

  const addFile = async (directory: string, forced?: { name: string; size: number }) => {
    const path = join(directory, forced?.name ?? name());
    if (members.includes(path)) return;
    const size = forced?.size ?? fileSize();
    if (size >= directMinBytes) bigFiles++;
    await writeFile(join(source, path), fileBytes(size));
    await chmod(join(source, path), random.pick([0o600, 0o600, 0o640, 0o644, 0o400, 0o755]));
    const mtime = random.int(HEADER_MTIME_MIN, HEADER_MTIME_MAX);
    await utimes(join(source, path), mtime, mtime);
    members.push(path);
    files.push(path);
  };

  const addDirectory = async (path: string, depth: number): Promise<void> => {
    await mkdir(join(source, path), { recursive: true });
    // Some directories are left out of the archive: tar makes them as it needs them.
    if (path !== '' && !random.chance(0.05)) members.push(path);
    directories.push({ path, mode: random.pick([0o700, 0o700, 0o750, 0o755]), mtime: random.int(HEADER_MTIME_MIN, HEADER_MTIME_MAX) });
    // The shape that deadlocked: a directory, then (less than a record of small members, then) a big file.
    if (random.chance(0.5)) {
      for (let index = random.int(0, 3); index > 0; index--) await addFile(path, { name: `s${index}`, size: random.int(0, 4000) });
      await addFile(path, { name: String(random.int(16_384, 99_999)), size: directMinBytes + random.int(0, directMinBytes) });
    }
    if (random.chance(0.2)) {
      // A relation over its segment size: 16400, 16400.1, 16400.2 …
      const relation = String(random.int(16_384, 99_999));
      const segments = random.int(2, 3);
      for (let segment = 0; segment < segments; segment++) {
        await addFile(path, {
          name: segment === 0 ? relation : `${relation}.${segment}`,
          size: segment < segments - 1 ? directMinBytes + 8192 : random.int(0, directMinBytes * 2),
        });
      }
    }
    const children = shape === 'many' && depth === 1 ? random.int(1000, 2000) : random.int(0, 8);
    // Thousands of small files with a big one somewhere among them: the fast path is taken in every case.
    const bigAt = shape === 'many' && depth === 1 ? random.int(0, children - 1) : -1;
    for (let index = 0; index < children; index++) {
      if (index === bigAt) await addFile(path, { name: `b${index}`, size: directMinBytes + random.int(0, directMinBytes) });
      const roll = random.next();
      if (roll < 0.12 && depth < 4 && shape !== 'many') await addDirectory(join(path, `d${index}_${name()}`), depth + 1);
      else if (shape === 'many') await addFile(path, { name: `${index}`, size: random.int(0, 2000) });
      else if (roll < 0.2 && files.length > 0) {
        // A hard link to a file already in the archive (tar stores it as a link member).
        const target = random.pick(files);
        const path2 = join(path, `hl${index}`);
        if (!members.includes(path2)) {
          await link(join(source, target), join(source, path2));
          members.push(path2);
        }
      } else if (roll < 0.28) {
        const path2 = join(path, `ln${index}`);
        const target = random.pick([files.length ? random.pick(files) : 'nowhere', '/nonexistent/target', '../elsewhere']);
        await symlink(target, join(source, path2));
        members.push(path2);
      } else await addFile(path);
    }
  };

  if (shape === 'tablespace') {
    // One version directory holding a directory per database, as PostgreSQL sends a tablespace.
    await mkdir(join(source, 'PG_15_202209061'), { recursive: true });
    members.push('PG_15_202209061');
    directories.push({ path: 'PG_15_202209061', mode: 0o700, mtime: random.int(HEADER_MTIME_MIN, HEADER_MTIME_MAX) });
    for (let database = random.int(1, 3); database > 0; database--)
      await addDirectory(join('PG_15_202209061', String(random.int(16_384, 99_999))), 2);
  } else {
    const top = ['base', 'global', 'pg_wal', 'pg_xact'];
    for (const directory of top.slice(0, random.int(1, shape === 'many' ? 2 : top.length))) await addDirectory(directory, 1);
    if (random.chance(0.4)) {
      await mkdir(join(source, 'global'), { recursive: true });
      if (!members.includes('global')) members.push('global');
      await addFile('global', { name: 'pg_control', size: random.chance(0.5) ? 8192 : directMinBytes + 100 });
    }
    await addFile('', { name: 'PG_VERSION', size: 3 });
  }

  // Directory modes and times last, deepest first (writing into them changed their mtime).
  for (const directory of directories.slice().reverse()) {
    await chmod(join(source, directory.path), directory.mode);
    await utimes(join(source, directory.path), directory.mtime, directory.mtime);
  }
  const format = longNames ? random.pick(['gnu', 'pax'] as const) : random.pick(['gnu', 'pax', 'ustar'] as const);
  return { members, format, directMinBytes, bigFiles };
}

async function createArchive(root: string, source: string, tree: GeneratedTree): Promise<Buffer> {
  const list = join(root, 'members');
  await writeFile(list, tree.members.map((member) => `${member}\0`).join(''));
  const file = join(root, 'archive.tar');
  await runner.run('tar', [
    '--create',
    `--file=${file}`,
    `--format=${tree.format}`,
    '--no-recursion',
    '--null',
    `--directory=${source}`,
    `--files-from=${list}`,
  ]);
  return readFile(file);
}

async function extract(
  archive: Buffer,
  directory: string,
  options: { directWrites: boolean; random: SeededRandom; directMinBytes: number },
): Promise<{ files: number }> {
  await mkdir(directory, { mode: 0o700 });
  if (owner) await chown(directory, owner.uid, owner.gid);
  const extraction = startTarExtraction(new TarDriver(runner), directory, RENAME, {
    directWrites: options.directWrites,
    directMinBytes: options.directMinBytes,
    owner,
    label: 'archive.tar',
    ...(asRoot ? { tarUser: 'postgres' as const } : {}),
  });
  const random = options.random;
  async function* chunks() {
    for (let offset = 0; offset < archive.length; ) {
      const length = random.pick([1, 511, 512, 513, 4096, 65_536, 100_003, 1024 * 1024, 2 * 1024 * 1024 + 7]);
      yield Buffer.from(archive.subarray(offset, offset + length));
      offset += length;
      // Now and then the producer is slow, as a download is.
      if (random.chance(0.05)) await new Promise((resolve) => setImmediate(resolve));
    }
  }
  await pipeline(Readable.from(chunks()), extraction.sink);
  await extraction.done;
  return { files: extraction.stats().files };
}

/** Every entry under `root`: type, mode, owner, mtime, and content digest or link target; hard-link groups by first path. */
async function describeTree(root: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const inodes = new Map<number, string>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative ? `${relative}/${name}` : name;
      const full = join(root, path);
      const info = await lstat(full);
      const mtime = Math.floor(info.mtimeMs / 1000);
      // A directory the archive did not name gets tar's (or the splitter's) time of extraction,
      // and so does one the archive comes back to after tar left it and set its times (as
      // PostgreSQL's does to global/ with pg_control last): GNU tar alone keeps no archive time
      // there, so directory times are compared where tar alone keeps them.
      const when = info.isDirectory() && mtime > HEADER_MTIME_MAX ? 'extraction time' : String(mtime);
      const common = `mode=${(info.mode & 0o7777).toString(8)} uid=${info.uid} gid=${info.gid} mtime=${when}`;
      if (info.isSymbolicLink()) entries.set(path, `symlink -> ${await readlink(full)} uid=${info.uid}`);
      else if (info.isDirectory()) {
        entries.set(path, `directory ${common}`);
        await walk(path);
      } else if (info.isFile()) {
        const first = inodes.get(info.ino);
        if (first === undefined) inodes.set(info.ino, path);
        const digest = createHash('sha256')
          .update(await readFile(full))
          .digest('hex');
        entries.set(path, `file ${common} size=${info.size} nlink=${info.nlink} sha256=${digest}${first ? ` linked-to=${first}` : ''}`);
      } else entries.set(path, `other ${common}`);
    }
  };
  await walk('');
  return entries;
}
