import { closeSync, constants, mkdirSync, openSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError } from '@rookery/core';
import { DirectFileWriter, DirectWriteMemory } from './direct-file-writer';
import { DirectTarSplitter } from './direct-tar-splitter';
import { ReleasingWriter } from './releasing-writer';
import { TAR_BLOCK, parseTarHeader, tarMemberPath } from './tar-header';

/** A tar member for tests: a ustar header as PostgreSQL writes it (src/port/tar.c), then its data. */
interface TarFixtureMember {
  name: string;
  type?: '0' | '2' | '5' | 'x';
  data?: Buffer;
  mode?: number;
  mtime?: number;
  linkName?: string;
  /** Write the size base-256 (PostgreSQL does above 8 GiB) instead of octal. */
  base256Size?: boolean;
}

function tarHeader(member: TarFixtureMember): Buffer {
  const header = Buffer.alloc(TAR_BLOCK);
  const size = member.data?.length ?? 0;
  header.write(member.name, 0, 100, 'utf8');
  header.write(octal(member.mode ?? (member.type === '5' ? 0o700 : 0o600), 8), 100, 'latin1');
  header.write(octal(0, 8), 108, 'latin1');
  header.write(octal(0, 8), 116, 'latin1');
  if (member.base256Size) {
    header[124] = 0x80;
    header.writeUIntBE(size, 136 - 6, 6);
  } else {
    header.write(octal(size, 12), 124, 'latin1');
  }
  header.write(octal(member.mtime ?? 1_700_000_000, 12), 136, 'latin1');
  header[156] = (member.type ?? '0').charCodeAt(0);
  if (member.linkName) header.write(member.linkName, 157, 100, 'utf8');
  header.write('ustar\0', 257, 'latin1');
  header.write('00', 263, 'latin1');
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 8), 148, 'latin1');
  return header;
}

/** A whole archive: each member's header, data and padding, then the two zero blocks. */
function tarArchive(members: TarFixtureMember[], options: { endBlocks?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const member of members) {
    parts.push(tarHeader(member));
    const data = member.data ?? Buffer.alloc(0);
    parts.push(data, Buffer.alloc((TAR_BLOCK - (data.length % TAR_BLOCK)) % TAR_BLOCK));
  }
  if (options.endBlocks ?? true) parts.push(Buffer.alloc(2 * TAR_BLOCK));
  return Buffer.concat(parts);
}

/** Deterministic, incompressible-looking bytes. */
function patternBytes(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  let state = seed >>> 0 || 1;
  for (let index = 0; index < length; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** Whether the file system of `directory` takes O_DIRECT (ext4 does; tmpfs before Linux 6.6 does not). */
function takesDirectWrites(directory: string): boolean {
  const probe = join(directory, '.direct-probe');
  try {
    closeSync(openSync(probe, constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT, 0o600));
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { force: true });
  }
}

/**
 * Splits `archive` (fed in `chunkBytes` pieces) into `directory`; returns what tar would have read.
 * The stand-in for tar's stdin copies what it is given before calling back, as a pipe does, and
 * with `slowTar` calls back late; like tar, it creates the directories the archive names as it
 * reaches them (and nothing else). Every chunk is overwritten as soon as it is reported released,
 * so a chunk released while still needed shows up as damaged output.
 */
async function split(
  directory: string,
  archive: Buffer,
  options: {
    chunkBytes?: number;
    directMinBytes?: number;
    slowTar?: boolean;
    tarMakesDirectories?: boolean;
    rename?: { from: string; to: string };
  } = {},
) {
  const tarInput: Buffer[] = [];
  let received = Buffer.alloc(0);
  let nextHeader = 0;
  const makeDirectories = () => {
    while (received.length >= nextHeader + TAR_BLOCK) {
      const header = parseTarHeader(received.subarray(nextHeader, nextHeader + TAR_BLOCK), 'forwarded', nextHeader);
      nextHeader += TAR_BLOCK + (header ? Math.ceil(header.size / TAR_BLOCK) * TAR_BLOCK : 0);
      if (header?.type === '5' && options.tarMakesDirectories !== false)
        mkdirSync(join(directory, tarMemberPath(header.name, 'forwarded')), { recursive: true });
    }
  };
  const stdin = new Writable({
    write(piece: Buffer, _encoding, callback) {
      tarInput.push(Buffer.from(piece));
      received = Buffer.concat([received, piece]);
      if (!options.slowTar) {
        makeDirectories();
        return callback();
      }
      // A slow tar on purpose (slowTar): no chunk may be released while tar still holds it.
      setTimeout(() => {
        makeDirectories();
        callback();
      }, 5);
    },
  });
  const tar = new ReleasingWriter();
  tar.attach(stdin);
  const splitter = new DirectTarSplitter({
    directory,
    label: 'base.tar',
    tar,
    owner: null,
    directMinBytes: options.directMinBytes ?? 64 * 1024,
    rename: options.rename,
  });
  const chunks: Buffer[] = [];
  const chunkBytes = options.chunkBytes ?? 100_000;
  for (let offset = 0; offset < archive.length; offset += chunkBytes)
    chunks.push(Buffer.from(archive.subarray(offset, offset + chunkBytes)));
  const released: Buffer[] = [];
  splitter.onRelease((chunk) => {
    released.push(chunk);
    chunk.fill(0xee);
  });
  await pipeline(async function* () {
    yield* chunks;
  }, splitter);
  await splitter.done;
  return { forwarded: Buffer.concat(tarInput), chunks, released, stats: splitter.stats };
}

describe('tar headers', () => {
  it('reads ustar fields, octal and base-256 sizes, and joins the prefix', () => {
    const header = tarHeader({ name: 'base/1/1259', data: Buffer.alloc(1000), mode: 0o640, mtime: 1_750_000_000 });
    expect(parseTarHeader(header, 'base.tar', 0)).toEqual({
      name: 'base/1/1259',
      type: '0',
      size: 1000,
      mode: 0o640,
      mtime: 1_750_000_000,
      linkName: '',
    });
    const big = tarHeader({ name: 'big', data: Buffer.alloc(3), base256Size: true });
    expect(parseTarHeader(big, 'base.tar', 0)?.size).toBe(3);
    const prefixed = Buffer.from(header);
    prefixed.write('deep/dir', 345, 'latin1');
    // Checksum recomputed for the changed prefix.
    prefixed.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of prefixed) sum += byte;
    prefixed.write(`${sum.toString(8).padStart(7, '0')}\0`, 148, 'latin1');
    expect(parseTarHeader(prefixed, 'base.tar', 0)?.name).toBe('deep/dir/base/1/1259');
    expect(parseTarHeader(Buffer.alloc(TAR_BLOCK), 'base.tar', 0)).toBeNull();
  });

  it('refuses a damaged header, naming the archive and the offset', () => {
    const header = tarHeader({ name: 'PG_VERSION', data: Buffer.from('15\n') });
    header[10] ^= 0x01;
    expect(() => parseTarHeader(header, "base.tar of backup 'x'", 2048)).toThrow(
      new IntegrityError("tar header at offset 2048 of base.tar of backup 'x' has a bad checksum: the archive is damaged"),
    );
  });

  it('keeps member paths inside the directory', () => {
    expect(tarMemberPath('./base/1/', 'base.tar')).toBe('base/1');
    expect(tarMemberPath('./', 'base.tar')).toBe('');
    expect(() => tarMemberPath('/etc/passwd', 'base.tar')).toThrow(/absolute path/);
    expect(() => tarMemberPath('base/../../x', 'base.tar')).toThrow(/leads out of the directory/);
  });
});

describe('DirectTarSplitter', () => {
  let work: string;

  beforeEach(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-split-'));
  });

  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('writes the big files itself, byte for byte, and passes tar everything else unchanged', async () => {
    const big = patternBytes(3 * 1024 * 1024 + 4096 + 100, 1); // full MiBs, an aligned block, an unaligned tail
    const exact = patternBytes(2 * 1024 * 1024, 2);
    const members: TarFixtureMember[] = [
      { name: './', type: '5' },
      { name: './PG_VERSION', data: Buffer.from('15\n') },
      { name: './base', type: '5' },
      { name: './base/16384', type: '5' },
      { name: './base/16384/16397', data: big, mode: 0o640, mtime: 1_760_000_000 },
      { name: './base/16384/16398', data: exact },
      { name: './global', type: '5' },
      { name: './global/pg_control', data: patternBytes(8192, 3) },
    ];
    const small = members.filter((member) => !member.data || member.data.length < 64 * 1024);
    for (const chunkBytes of [511, 100_000, 1024 * 1024]) {
      const directory = join(work, `out-${chunkBytes}`);
      await mkdir(directory);
      const { forwarded, stats } = await split(directory, tarArchive(members), { chunkBytes });
      expect(forwarded.equals(tarArchive(small))).toBe(true);
      expect(stats.files).toBe(2);
      expect(stats.bytes).toBe(big.length + exact.length);
      // Where the file system takes O_DIRECT (ext4 here), all but the unaligned tail went that way.
      expect(stats.directBytes).toBe(takesDirectWrites(work) ? big.length + exact.length - 100 : 0);
      expect((await readFile(join(directory, 'base/16384/16397'))).equals(big)).toBe(true);
      expect((await readFile(join(directory, 'base/16384/16398'))).equals(exact)).toBe(true);
      const info = await stat(join(directory, 'base/16384/16397'));
      expect(info.mode & 0o777).toBe(0o640);
      expect(Math.round(info.mtimeMs / 1000)).toBe(1_760_000_000);
      // The small members are tar's (its stand-in here writes none).
      expect(await readdir(join(directory, 'global'))).toEqual([]);
      expect((await readdir(directory)).sort()).toEqual(['base', 'global']);
    }
  });

  it('hands every chunk back once, when nothing reads it any more (tar gets copies, big files staging copies)', async () => {
    const members: TarFixtureMember[] = [
      { name: 'a', data: patternBytes(300_000, 4) },
      { name: 'b', data: patternBytes(5000, 5) },
      { name: 'c', data: patternBytes(70_000, 6) },
    ];
    const directory = join(work, 'out');
    await mkdir(directory);
    const archive = tarArchive(members);
    const { chunks, released, forwarded } = await split(directory, archive, { chunkBytes: 40_000, slowTar: true });
    expect(released).toHaveLength(chunks.length);
    expect(new Set(released)).toEqual(new Set(chunks));
    // Every chunk was overwritten when released: nothing read it after that.
    expect(forwarded.equals(tarArchive([members[1]]))).toBe(true);
    expect((await readFile(join(directory, 'a'))).equals(members[0].data as Buffer)).toBe(true);
    expect((await readFile(join(directory, 'c'))).equals(members[2].data as Buffer)).toBe(true);
  });

  it('leaves to tar a big file under a link the archive made, or after an extended header', async () => {
    const members: TarFixtureMember[] = [
      { name: 'pg_wal', type: '2', linkName: '/elsewhere' },
      { name: 'pg_wal/000000010000000000000001', data: patternBytes(100_000, 7) },
      { name: 'base', type: '5' },
      { name: 'base/1', type: '5' },
      { name: 'PaxHeaders/x', type: 'x', data: Buffer.from('30 path=base/1/renamed-by-pax\n') },
      { name: 'base/1/16384', data: patternBytes(100_000, 8) },
      { name: 'base/1/16385', data: patternBytes(100_000, 9) },
    ];
    const directory = join(work, 'out');
    await mkdir(directory);
    const { forwarded, stats } = await split(directory, tarArchive(members));
    expect(forwarded.equals(tarArchive(members.slice(0, 6)))).toBe(true);
    expect(stats.files).toBe(1);
    expect(await readdir(join(directory, 'base/1'))).toEqual(['16385']);
  });

  it('writes a big member that is to be renamed under its new name', async () => {
    const data = patternBytes(100_000, 12);
    const directory = join(work, 'out');
    await mkdir(directory);
    await split(
      directory,
      tarArchive([
        { name: './global', type: '5' },
        { name: './global/pg_control', data },
      ]),
      {
        rename: { from: 'global/pg_control', to: 'global/pg_control.pending' },
      },
    );
    expect(await readdir(join(directory, 'global'))).toEqual(['pg_control.pending']);
    expect((await readFile(join(directory, 'global/pg_control.pending'))).equals(data)).toBe(true);
  });

  it("makes a big file's directory itself when tar has not (tar waits for whole records), and leaves to tar one whose directory the archive never named", async () => {
    const members: TarFixtureMember[] = [
      { name: 'pg_wal', type: '5', mode: 0o750 },
      { name: 'pg_wal/archive_status', type: '5' },
      { name: 'pg_wal/archive_status/000000010000000000000001.done', data: Buffer.alloc(0) },
      { name: 'pg_wal/000000010000000000000002', data: patternBytes(200_000, 13) },
      { name: 'unnamed/16400', data: patternBytes(200_000, 14) },
    ];
    for (const tarMakesDirectories of [false, true]) {
      const directory = join(work, `out-${tarMakesDirectories}`);
      await mkdir(directory);
      // Without directory making, the stand-in is a tar still waiting for its record: it made nothing.
      const { forwarded, stats } = await split(directory, tarArchive(members), { slowTar: true, tarMakesDirectories });
      expect(stats.files).toBe(1);
      expect((await readFile(join(directory, 'pg_wal/000000010000000000000002'))).equals(members[3].data as Buffer)).toBe(true);
      expect(forwarded.equals(tarArchive([members[0], members[1], members[2], members[4]]))).toBe(true);
      // Made with the archive's mode (its owner's rwx added), for tar to find and finish.
      if (!tarMakesDirectories) expect((await stat(join(directory, 'pg_wal'))).mode & 0o777).toBe(0o750);
    }
  });

  it('fails a truncated archive and a file that is already there, and writes nothing behind the failure', async () => {
    const directory = join(work, 'out');
    await mkdir(directory);
    const archive = tarArchive([{ name: 'big', data: patternBytes(200_000, 10) }]);
    await expect(split(directory, archive.subarray(0, 150_000))).rejects.toThrow(
      new IntegrityError('base.tar ends in the middle of a member (offset 150000): the archive is truncated'),
    );

    const again = join(work, 'again');
    await mkdir(again);
    await writeFile(join(again, 'big'), 'keep me');
    await expect(split(again, archive)).rejects.toThrow(/EEXIST/);
    expect(await readFile(join(again, 'big'), 'utf8')).toBe('keep me');
  });
});

describe('DirectFileWriter', () => {
  it('writes the same bytes with and without O_DIRECT (tmpfs may refuse it)', async () => {
    const memory = new DirectWriteMemory(2);
    const bytes = patternBytes(5 * 1024 * 1024 + 777, 11);
    for (const base of [tmpdir(), '/dev/shm']) {
      const directory = await mkdtemp(join(base, 'rookery-direct-'));
      try {
        const writer = DirectFileWriter.create(join(directory, 'f'), { mode: 0o600, mtime: 1_700_000_000, owner: null, memory });
        for (let offset = 0; offset < bytes.length; offset += 300_001)
          await writer.append(bytes, offset, Math.min(300_001, bytes.length - offset));
        await writer.finish();
        expect((await readFile(join(directory, 'f'))).equals(bytes)).toBe(true);
        expect(writer.directBytes).toBe(takesDirectWrites(directory) ? 5 * 1024 * 1024 : 0);
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    }
  });
});
