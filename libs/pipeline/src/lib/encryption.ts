import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { EncryptionKeyError, IntegrityError, InvariantError } from '@rookery/core';
import { ByteQueue } from './byte-queue';

/*
 * Client-side encryption format of an artifact or WAL file. Version 2 ("RKYENC02") is written;
 * version 1 ("RKYENC01", before objects were bound to their place) is still read.
 *
 *   object   = header record* final-record
 *   header   = v2: "RKYENC02" (8 ASCII bytes) | salt (32 random bytes) | key check (16 bytes)   56 bytes
 *              v1: "RKYENC01" (8 ASCII bytes) | salt (32 random bytes)                         40 bytes
 *   record   = length (u32 big-endian, bytes of ciphertext) | ciphertext | tag (16 bytes)
 *
 * - subkey = HKDF-SHA256(ikm = the 32-byte key, salt, info = "rookery artifact v1", 32 bytes): a
 *   fresh key per object, so counter nonces never repeat under one key.
 * - key check (v2) = the first 16 bytes of HMAC-SHA256(subkey, "rookery key check"): tells a wrong
 *   key from an object that is not where it was written for, which the tags alone cannot.
 * - The plaintext is cut into segments of `segmentSize` bytes (default 1 MiB); the last segment
 *   holds the remainder and may be empty (empty plaintext = one empty final segment).
 * - Segment i is sealed with AES-256-GCM under the subkey, nonce = i as 11-byte big-endian
 *   integer | final flag (1 byte: 0x01 on the last segment, else 0x00), AAD = the header, and in
 *   v2 after it the object's binding: where the object belongs (an artifact's tier, backup id and
 *   name; a WAL file's tier, timeline and name, see objectBinding), which the reader supplies
 *   from where it found the object and which is never stored. An object moved to another backup,
 *   name or tier fails its first tag. This is the STREAM construction (Hoang, Reyhanitabar,
 *   Rogaway, Vizár 2015): reordering (counter), truncation at a record boundary (no final flag),
 *   appending after the final segment and any bit flip all make a tag check fail.
 * - A reader releases a segment's plaintext only after its tag verifies, treats a record as final
 *   only when the stream ends right after it, and rejects records longer than 64 MiB. A v1 object
 *   is read only when the reader allows unbound objects (acceptUnbound).
 * - A failed key check (v2), or a failed tag on the first segment of a v1 object, is reported as a
 *   wrong key (EncryptionKeyError); any other failure is an IntegrityError.
 */

/** The magic of the format written (v2, bound to the object's place). */
export const ENCRYPTION_MAGIC = Buffer.from('RKYENC02', 'ascii');
/** The magic of v1 objects (unbound), still read. */
export const UNBOUND_ENCRYPTION_MAGIC = Buffer.from('RKYENC01', 'ascii');
export const DEFAULT_ENCRYPTION_SEGMENT_SIZE = 1024 * 1024;
const MAGIC_BYTES = ENCRYPTION_MAGIC.length;
const SALT_BYTES = 32;
const KEY_CHECK_BYTES = 16;
const UNBOUND_HEADER_BYTES = MAGIC_BYTES + SALT_BYTES;
const HEADER_BYTES = MAGIC_BYTES + SALT_BYTES + KEY_CHECK_BYTES;
const KEY_BYTES = 32;
const TAG_BYTES = 16;
const LENGTH_BYTES = 4;
const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const HKDF_INFO = Buffer.from('rookery artifact v1', 'ascii');

export interface EncryptStreamOptions {
  /** Plaintext bytes per sealed segment (default 1 MiB, at most 64 MiB). */
  segmentSize?: number;
  /** Where the object belongs (objectBinding); authenticated, not stored. Default: nowhere in particular. */
  binding?: string;
}

export interface DecryptStreamOptions {
  /** Artifact name used in error messages ("artifact '<label>'"), unless `subject` is given. */
  label?: string;
  /** What the object is, for error messages: "artifact 'base.tar.zst' of backup …", "WAL file '…'". */
  subject?: string;
  /** Where the reader found the object (objectBinding); must be what it was encrypted with. */
  binding?: string;
  /** Whether a v1 object (encrypted before objects were bound) is read; default true. */
  acceptUnbound?: boolean;
}

/** Where an encrypted object belongs, as its AES-GCM associated data (see the format above). */
export type ObjectPlace =
  | { kind: 'artifact'; tier: string; backupId: string; name: string }
  | { kind: 'wal'; tier: string; timeline: number; name: string };

/** The binding of an object to its place: an unambiguous encoding of its fields. */
export function objectBinding(place: ObjectPlace): string {
  return place.kind === 'artifact'
    ? JSON.stringify(['rookery artifact', place.tier, place.backupId, place.name])
    : JSON.stringify(['rookery wal', place.tier, place.timeline, place.name]);
}

/** The key's public identifier for manifests: HMAC-SHA256(key, "rookery key id"), 16 hex chars. */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('rookery key id').digest('hex').slice(0, 16);
}

/**
 * The 32-byte key from key material: 32 raw bytes, or text (surrounding whitespace ignored) of 64
 * hex characters or the base64 of 32 bytes. Anything else is an EncryptionKeyError that says what
 * is expected and never echoes the material.
 */
export function parseEncryptionKey(material: Buffer | string): Buffer {
  if (Buffer.isBuffer(material) && material.length === KEY_BYTES) return Buffer.from(material);
  const text = (Buffer.isBuffer(material) ? material.toString('utf8') : material).trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const decoded = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (decoded.length === KEY_BYTES) return decoded;
  }
  throw new EncryptionKeyError(
    `encryption key must be 32 raw bytes, 64 hex characters or base64 of 32 bytes (got ${text.length} characters)`,
    { hint: 'generate one with: openssl rand -hex 32' },
  );
}

function assertKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new EncryptionKeyError(`encryption key must be ${KEY_BYTES} bytes; parse key material with parseEncryptionKey()`);
  }
}

function deriveSubkey(key: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, salt, HKDF_INFO, KEY_BYTES));
}

function keyCheck(subkey: Buffer): Buffer {
  return createHmac('sha256', subkey).update('rookery key check').digest().subarray(0, KEY_CHECK_BYTES);
}

function segmentNonce(counter: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  // Counters stay far below 2^53; the 11-byte field's top 5 bytes are always zero.
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Encrypts a plaintext stream into the format above. */
export function createEncryptStream(key: Buffer, options: EncryptStreamOptions = {}): Transform {
  assertKey(key);
  const segmentSize = options.segmentSize ?? DEFAULT_ENCRYPTION_SEGMENT_SIZE;
  if (!Number.isInteger(segmentSize) || segmentSize < 1 || segmentSize > MAX_RECORD_BYTES) {
    throw new InvariantError(`encryption segment size must be an integer from 1 to ${MAX_RECORD_BYTES}, got ${segmentSize}`);
  }
  return new EncryptStream(key, segmentSize, Buffer.from(options.binding ?? '', 'utf8'));
}

class EncryptStream extends Transform {
  private readonly header: Buffer;
  private readonly aad: Buffer;
  private readonly subkey: Buffer;
  private counter = 0;
  /** Plaintext not yet sealed; a full segment is held until we know whether it is the last. */
  private readonly pending = new ByteQueue();
  private headerSent = false;

  constructor(
    key: Buffer,
    private readonly segmentSize: number,
    binding: Buffer,
  ) {
    super();
    const salt = randomBytes(SALT_BYTES);
    this.subkey = deriveSubkey(key, salt);
    this.header = Buffer.concat([ENCRYPTION_MAGIC, salt, keyCheck(this.subkey)]);
    this.aad = Buffer.concat([this.header, binding]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.sendHeader();
    this.pending.push(chunk);
    // Seal only while more than a segment is buffered: the segment is then known not to be last.
    while (this.pending.length > this.segmentSize) this.seal(this.pending.shiftPieces(this.segmentSize), false);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    this.sendHeader();
    this.seal(this.pending.shiftPieces(this.pending.length), true);
    callback();
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.push(this.header);
  }

  private seal(segment: Buffer[], final: boolean): void {
    const cipher = createCipheriv('aes-256-gcm', this.subkey, segmentNonce(this.counter++, final));
    cipher.setAAD(this.aad);
    const length = Buffer.allocUnsafe(LENGTH_BYTES);
    length.writeUInt32BE(segment.reduce((sum, piece) => sum + piece.length, 0));
    this.push(length);
    for (const piece of segment) {
      const sealed = cipher.update(piece);
      if (sealed.length > 0) this.push(sealed);
    }
    const tail = cipher.final();
    if (tail.length > 0) this.push(tail);
    this.push(cipher.getAuthTag());
  }
}

/** Decrypts and authenticates a stream in the format above; see the failure rules there. */
export function createDecryptStream(key: Buffer, options: DecryptStreamOptions = {}): Transform {
  assertKey(key);
  return new DecryptStream(key, {
    subject: options.subject ?? `artifact '${options.label ?? 'unnamed'}'`,
    binding: Buffer.from(options.binding ?? '', 'utf8'),
    acceptUnbound: options.acceptUnbound ?? true,
  });
}

class DecryptStream extends Transform {
  private readonly queue = new ByteQueue();
  /** The associated data of every segment: the header, and for a v2 object its binding. */
  private aad: Buffer | null = null;
  private bound = false;
  private subkey: Buffer | null = null;
  private counter = 0;
  private sawFinal = false;

  constructor(
    private readonly key: Buffer,
    private readonly expected: { subject: string; binding: Buffer; acceptUnbound: boolean },
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.queue.push(chunk);
      this.drain(false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.drain(true);
      if (!this.sawFinal) {
        throw this.integrity(
          this.queue.length > 0
            ? `stream ends inside a record (${this.queue.length} bytes left over)`
            : 'stream ends without its final segment (truncated)',
        );
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  /**
   * Opens every complete record that is known to be non-final (more bytes follow it) and, at the
   * end of the stream, the last record as final.
   */
  private drain(ended: boolean): void {
    if (!this.aad && !this.readHeader(ended)) return;
    for (;;) {
      if (this.queue.length < LENGTH_BYTES) return;
      const length = this.queue.uint32BE(0);
      if (length > MAX_RECORD_BYTES) throw this.integrity(`record ${this.counter} claims ${length} bytes (limit ${MAX_RECORD_BYTES})`);
      const recordBytes = LENGTH_BYTES + length + TAG_BYTES;
      if (this.queue.length < recordBytes) return;
      const isLast = this.queue.length === recordBytes;
      if (isLast && !ended) return;
      this.open(this.queue.shiftPieces(recordBytes), length, isLast);
    }
  }

  /** Reads the header once enough bytes are there; false while they are not. */
  private readHeader(ended: boolean): boolean {
    const magicBytes =
      this.queue.length >= MAGIC_BYTES ? Buffer.from(Array.from({ length: MAGIC_BYTES }, (_, i) => this.queue.byteAt(i))) : null;
    const unbound = magicBytes?.equals(UNBOUND_ENCRYPTION_MAGIC) ?? false;
    const headerBytes = unbound ? UNBOUND_HEADER_BYTES : HEADER_BYTES;
    if (this.queue.length < headerBytes) {
      if (ended) throw this.integrity(`stream of ${this.queue.length} bytes is shorter than the encryption header`);
      return false;
    }
    if (!unbound && !magicBytes?.equals(ENCRYPTION_MAGIC)) {
      throw this.integrity('not a rookery encrypted object (bad magic; expected RKYENC02 or RKYENC01)');
    }
    if (unbound && !this.expected.acceptUnbound) {
      throw this.integrity(
        'it is in the unbound format RKYENC01, and it was recorded as bound to its place (RKYENC02): replaced or altered',
      );
    }
    const header = Buffer.from(this.queue.shift(headerBytes));
    this.subkey = deriveSubkey(this.key, header.subarray(MAGIC_BYTES, MAGIC_BYTES + SALT_BYTES));
    if (!unbound && !keyCheck(this.subkey).equals(header.subarray(MAGIC_BYTES + SALT_BYTES))) throw this.wrongKey();
    this.bound = !unbound;
    this.aad = unbound ? header : Buffer.concat([header, this.expected.binding]);
    return true;
  }

  private open(record: Buffer[], length: number, final: boolean): void {
    const plaintext = this.tryOpen(record, length, final);
    if (!plaintext) {
      // Tell truncation and appending apart from damage: the record opens with the other flag.
      if (this.tryOpen(record, length, !final)) {
        throw this.integrity(
          final
            ? `stream ends after segment ${this.counter}, which is not the final one (truncated)`
            : `data follows the final segment ${this.counter} (appended)`,
        );
      }
      if (this.counter === 0 && !this.bound) throw this.wrongKey();
      if (this.counter === 0) {
        throw this.integrity(
          'segment 0 fails authentication: the object was encrypted for another place (swapped from another backup, WAL file or tier) or altered',
          {
            hint: 'the object is not the one written here; do not use it, and run rookery verify',
          },
        );
      }
      throw this.integrity(`segment ${this.counter} fails authentication (altered or reordered)`);
    }
    this.counter++;
    if (final) this.sawFinal = true;
    for (const piece of plaintext) this.push(piece);
  }

  /** The segment's plaintext if its tag verifies under this counter and flag, else null. */
  private tryOpen(record: Buffer[], length: number, final: boolean): Buffer[] | null {
    const decipher = createDecipheriv('aes-256-gcm', this.subkey as Buffer, segmentNonce(this.counter, final));
    decipher.setAAD(this.aad as Buffer);
    const plaintext: Buffer[] = [];
    const tagPieces: Buffer[] = [];
    let position = 0;
    for (const piece of record) {
      // Bytes [0, 4) of the record are the length, [4, 4 + length) ciphertext, the rest the tag.
      const start = position;
      position += piece.length;
      const ctStart = Math.max(start, LENGTH_BYTES) - start;
      const ctEnd = Math.min(position, LENGTH_BYTES + length) - start;
      if (ctEnd > ctStart) {
        const opened = decipher.update(piece.subarray(ctStart, ctEnd));
        if (opened.length > 0) plaintext.push(opened);
      }
      const tagStart = Math.max(start, LENGTH_BYTES + length) - start;
      if (piece.length > tagStart) tagPieces.push(piece.subarray(tagStart));
    }
    decipher.setAuthTag(Buffer.concat(tagPieces));
    try {
      const tail = decipher.final();
      if (tail.length > 0) plaintext.push(tail);
      return plaintext;
    } catch {
      return null;
    }
  }

  private wrongKey(): EncryptionKeyError {
    return new EncryptionKeyError(`cannot decrypt ${this.expected.subject}: wrong encryption key or the object was altered`, {
      hint: "compare the key's fingerprint with the manifest's encryption.keyId",
    });
  }

  private integrity(detail: string, options: { hint?: string } = {}): IntegrityError {
    return new IntegrityError(`cannot decrypt ${this.expected.subject}: ${detail}`, {
      hint: options.hint ?? 'the stored bytes are damaged or incomplete; run rookery verify on the backup',
    });
  }
}
