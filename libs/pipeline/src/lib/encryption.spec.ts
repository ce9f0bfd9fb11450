import { createCipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EncryptionKeyError, IntegrityError } from '@rookery/core';
import {
  createDecryptStream,
  createEncryptStream,
  ENCRYPTION_MAGIC,
  keyFingerprint,
  objectBinding,
  parseEncryptionKey,
} from './encryption';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 9);
const SEGMENT = 1024;
const HEADER = 56;
const RECORD = 4 + SEGMENT + 16;

async function run(input: Buffer, stream: NodeJS.ReadWriteStream, piece = 777): Promise<Buffer> {
  const out: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < input.length; offset += piece) pieces.push(input.subarray(offset, offset + piece));
  await pipeline(
    Readable.from(pieces),
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return Buffer.concat(out);
}

const encrypt = (input: Buffer) => run(input, createEncryptStream(KEY, { segmentSize: SEGMENT }));
const decrypt = (input: Buffer, key = KEY) => run(input, createDecryptStream(key, { label: 'base.tar.zst' }));

describe('createEncryptStream / createDecryptStream', () => {
  it.each([
    ['empty', 0],
    ['1 byte', 1],
    ['exactly one segment', SEGMENT],
    ['one segment and a byte', SEGMENT + 1],
    ['exactly three segments', 3 * SEGMENT],
    ['many segments', 40 * SEGMENT + 333],
  ])('round trips %s', async (_name, length) => {
    const input = randomBytes(length);
    const sealed = await encrypt(input);
    expect(sealed.subarray(0, 8)).toEqual(ENCRYPTION_MAGIC);
    const segments = Math.max(1, Math.ceil(length / SEGMENT));
    expect(sealed.length).toBe(HEADER + length + segments * 20);
    expect((await decrypt(sealed)).equals(input)).toBe(true);
  });

  it('round trips with the default segment size', async () => {
    const input = randomBytes(3 * 1024 * 1024 + 5);
    const sealed = await run(input, createEncryptStream(KEY), 65_536);
    expect(sealed.length).toBe(HEADER + input.length + 4 * 20);
    expect((await run(sealed, createDecryptStream(KEY), 100_003)).equals(input)).toBe(true);
  });

  it('round trips when every write is a single byte', async () => {
    const input = randomBytes(20 * SEGMENT + 3);
    const sealed = await run(input, createEncryptStream(KEY, { segmentSize: SEGMENT }), 1);
    expect((await run(sealed, createDecryptStream(KEY), 1)).equals(input)).toBe(true);
  });

  it('salts every artifact: the same plaintext never encrypts the same way', async () => {
    const input = Buffer.from('same plaintext');
    expect((await encrypt(input)).equals(await encrypt(input))).toBe(false);
  });

  it('reports a wrong key as EncryptionKeyError on the first segment', async () => {
    const sealed = await encrypt(randomBytes(5 * SEGMENT));
    const failure = decrypt(sealed, OTHER_KEY);
    await expect(failure).rejects.toBeInstanceOf(EncryptionKeyError);
    await expect(failure).rejects.toThrow("cannot decrypt artifact 'base.tar.zst': wrong encryption key or the object was altered");
  });

  const tamperings: [string, (sealed: Buffer) => Buffer, typeof IntegrityError | typeof EncryptionKeyError, RegExp][] = [
    ['a flipped magic byte', (s) => flip(s, 0), IntegrityError, /bad magic/],
    ['a flipped salt byte', (s) => flip(s, 20), EncryptionKeyError, /wrong encryption key/],
    ['a flipped key check byte', (s) => flip(s, HEADER - 3), EncryptionKeyError, /wrong encryption key/],
    ['a flipped byte in the first segment', (s) => flip(s, HEADER + 100), IntegrityError, /segment 0 fails authentication/],
    ['a flipped byte in a later segment', (s) => flip(s, HEADER + 2 * RECORD + 100), IntegrityError, /segment 2 fails authentication/],
    ['a flipped tag byte', (s) => flip(s, HEADER + 2 * RECORD - 3), IntegrityError, /segment 1 fails authentication/],
    ['a flipped length byte', (s) => flip(s, HEADER + RECORD + 3), IntegrityError, /./],
    ['truncation inside a record', (s) => s.subarray(0, s.length - 5), IntegrityError, /ends inside a record/],
    ['truncation at a record boundary', (s) => s.subarray(0, HEADER + 2 * RECORD), IntegrityError, /not the final one \(truncated\)/],
    ['truncation to the header', (s) => s.subarray(0, HEADER), IntegrityError, /without its final segment/],
    ['truncation inside the header', (s) => s.subarray(0, 10), IntegrityError, /shorter than the encryption header/],
    ['an appended copy of the last record', (s) => Buffer.concat([s, s.subarray(s.length - 20)]), IntegrityError, /appended/],
    ['appended garbage', (s) => Buffer.concat([s, Buffer.from('garbage!')]), IntegrityError, /./],
    ['two records swapped', (s) => swapRecords(s, 1, 2), IntegrityError, /segment 1 fails authentication/],
    [
      'a record dropped',
      (s) => Buffer.concat([s.subarray(0, HEADER + RECORD), s.subarray(HEADER + 2 * RECORD)]),
      IntegrityError,
      /segment 1 fails/,
    ],
  ];

  it.each(tamperings)('detects %s', async (_name, tamper, errorClass, message) => {
    const sealed = await encrypt(randomBytes(3 * SEGMENT + 10));
    const failure = decrypt(tamper(sealed));
    await expect(failure).rejects.toBeInstanceOf(errorClass);
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toThrow(/artifact 'base.tar.zst'/);
  });

  it('detects appending to an empty artifact as appending, not as a wrong key', async () => {
    const sealed = await encrypt(Buffer.alloc(0));
    const failure = decrypt(Buffer.concat([sealed, sealed.subarray(HEADER)]));
    await expect(failure).rejects.toThrow(/appended/);
  });

  it('never releases plaintext of a segment that fails authentication', async () => {
    const sealed = flip(await encrypt(Buffer.alloc(3 * SEGMENT, 1)), HEADER + RECORD + 10);
    const released: Buffer[] = [];
    const stream = createDecryptStream(KEY);
    stream.on('data', (chunk: Buffer) => released.push(chunk));
    await expect(pipeline(Readable.from([sealed]), stream)).rejects.toBeInstanceOf(IntegrityError);
    expect(Buffer.concat(released).length).toBeLessThanOrEqual(SEGMENT);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => createEncryptStream(Buffer.alloc(16))).toThrow(EncryptionKeyError);
    expect(() => createDecryptStream(Buffer.alloc(31))).toThrow(EncryptionKeyError);
  });
});

describe('binding an object to its place (associated data)', () => {
  const here = objectBinding({ kind: 'artifact', tier: 'oltp', backupId: '20261207T010000Z-oltp', name: 'base.tar.zst' });
  const places: [string, string][] = [
    ['another backup', objectBinding({ kind: 'artifact', tier: 'oltp', backupId: '20261206T010000Z-oltp', name: 'base.tar.zst' })],
    ['another name', objectBinding({ kind: 'artifact', tier: 'oltp', backupId: '20261207T010000Z-oltp', name: 'pg_manifest.zst' })],
    ['another tier', objectBinding({ kind: 'artifact', tier: 'olap', backupId: '20261207T010000Z-oltp', name: 'base.tar.zst' })],
    ['no place', ''],
  ];
  const sealedHere = (input: Buffer) => run(input, createEncryptStream(KEY, { segmentSize: SEGMENT, binding: here }));
  const decryptAt = (sealed: Buffer, binding: string, acceptUnbound = true) =>
    run(sealed, createDecryptStream(KEY, { subject: "artifact 'base.tar.zst' of backup X", binding, acceptUnbound }));

  it('opens an object where it was written for', async () => {
    const input = randomBytes(3 * SEGMENT + 7);
    expect((await decryptAt(await sealedHere(input), here)).equals(input)).toBe(true);
  });

  it.each(places)('refuses an object read as belonging to %s, as an IntegrityError naming it', async (_name, elsewhere) => {
    const failure = decryptAt(await sealedHere(randomBytes(2 * SEGMENT)), elsewhere);
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(
      "cannot decrypt artifact 'base.tar.zst' of backup X: segment 0 fails authentication: the object was encrypted for another place",
    );
  });

  it('keeps the fields of a place apart (no two places encode alike)', () => {
    expect(objectBinding({ kind: 'artifact', tier: 'a', backupId: 'b"c', name: 'd' })).not.toBe(
      objectBinding({ kind: 'artifact', tier: 'a', backupId: 'b', name: 'c"d' }),
    );
    expect(objectBinding({ kind: 'wal', tier: 'oltp', timeline: 1, name: '000000010000000000000003' })).not.toBe(
      objectBinding({ kind: 'wal', tier: 'oltp', timeline: 2, name: '000000010000000000000003' }),
    );
  });

  it('still opens an object of the unbound format RKYENC01, whatever the place', async () => {
    const input = randomBytes(2 * SEGMENT + 5);
    const legacy = sealUnbound(input);
    expect(legacy.subarray(0, 8).toString('ascii')).toBe('RKYENC01');
    expect((await decryptAt(legacy, here)).equals(input)).toBe(true);
    expect((await decrypt(legacy)).equals(input)).toBe(true);
  });

  it('reports a wrong key on an RKYENC01 object as EncryptionKeyError', async () => {
    await expect(decrypt(sealUnbound(randomBytes(10)), OTHER_KEY)).rejects.toBeInstanceOf(EncryptionKeyError);
  });

  it('refuses an RKYENC01 object where a bound one was recorded', async () => {
    const failure = decryptAt(sealUnbound(randomBytes(10)), here, false);
    await expect(failure).rejects.toBeInstanceOf(IntegrityError);
    await expect(failure).rejects.toThrow(/unbound format RKYENC01/);
  });
});

/** An object as version 1 wrote it: "RKYENC01" | salt, AAD = that header, no binding. */
function sealUnbound(input: Buffer, segmentSize = SEGMENT): Buffer {
  const salt = randomBytes(32);
  const header = Buffer.concat([Buffer.from('RKYENC01', 'ascii'), salt]);
  const subkey = Buffer.from(hkdfSync('sha256', KEY, salt, Buffer.from('rookery artifact v1'), 32));
  const records: Buffer[] = [];
  const count = Math.max(1, Math.ceil(input.length / segmentSize));
  for (let i = 0; i < count; i++) {
    const nonce = Buffer.alloc(12);
    nonce.writeUIntBE(i, 5, 6);
    nonce[11] = i === count - 1 ? 1 : 0;
    const cipher = createCipheriv('aes-256-gcm', subkey, nonce);
    cipher.setAAD(header);
    const sealed = Buffer.concat([cipher.update(input.subarray(i * segmentSize, (i + 1) * segmentSize)), cipher.final()]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(sealed.length);
    records.push(length, sealed, cipher.getAuthTag());
  }
  return Buffer.concat([header, ...records]);
}

describe('parseEncryptionKey', () => {
  const raw = Buffer.from([...Array(32).keys()]);

  it.each([
    ['32 raw bytes', raw],
    ['64 hex characters', raw.toString('hex')],
    ['64 upper-case hex characters with a newline', `${raw.toString('hex').toUpperCase()}\n`],
    ['base64', raw.toString('base64')],
    ['base64url without padding', raw.toString('base64url')],
    ['a key file holding hex', Buffer.from(`  ${raw.toString('hex')}\n`)],
    ['a key file holding base64', Buffer.from(`${raw.toString('base64')}\n`)],
  ])('accepts %s', (_name, material) => {
    expect(parseEncryptionKey(material)).toEqual(raw);
  });

  it.each([
    ['a short passphrase', 'hunter2'],
    ['31 raw bytes', Buffer.alloc(31)],
    ['62 hex characters', 'ab'.repeat(31)],
    ['base64 of 24 bytes', Buffer.alloc(24).toString('base64')],
    ['an empty file', Buffer.alloc(0)],
  ])('rejects %s with what is expected', (_name, material) => {
    expect(() => parseEncryptionKey(material)).toThrow(EncryptionKeyError);
    expect(() => parseEncryptionKey(material)).toThrow('encryption key must be 32 raw bytes, 64 hex characters or base64 of 32 bytes');
  });

  it('does not echo the material in the error', () => {
    expect(() => parseEncryptionKey('secret-passphrase')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('secret') }),
    );
  });
});

describe('keyFingerprint', () => {
  it('is the first 16 hex characters of HMAC-SHA256(key, "rookery key id")', () => {
    const expected = createHmac('sha256', KEY).update('rookery key id').digest('hex').slice(0, 16);
    expect(keyFingerprint(KEY)).toBe(expected);
    expect(keyFingerprint(KEY)).toMatch(/^[0-9a-f]{16}$/);
    expect(keyFingerprint(OTHER_KEY)).not.toBe(expected);
  });
});

function flip(buffer: Buffer, index: number): Buffer {
  const copy = Buffer.from(buffer);
  copy[index] ^= 0x01;
  return copy;
}

function swapRecords(sealed: Buffer, a: number, b: number): Buffer {
  const record = (i: number) => sealed.subarray(HEADER + i * RECORD, HEADER + (i + 1) * RECORD);
  const records = [0, 1, 2].map(record);
  [records[a], records[b]] = [records[b], records[a]];
  return Buffer.concat([sealed.subarray(0, HEADER), ...records, sealed.subarray(HEADER + 3 * RECORD)]);
}
