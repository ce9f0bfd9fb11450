import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { Transform, TransformCallback } from 'node:stream';
import { EncryptionKeyError, IntegrityError, InvariantError } from '@rookery/core';
import { ByteQueue } from './byte-queue';

/*
 * Client-side encryption format of an artifact, version 1 ("RKYENC01").
 *
 *   artifact = header record* final-record
 *   header   = "RKYENC01" (8 ASCII bytes) | salt (32 random bytes)                   40 bytes
 *   record   = length (u32 big-endian, bytes of ciphertext) | ciphertext | tag (16 bytes)
 *
 * - subkey = HKDF-SHA256(ikm = the 32-byte key, salt, info = "rookery artifact v1", 32 bytes): a
 *   fresh key per artifact, so counter nonces never repeat under one key.
 * - The plaintext is cut into segments of `segmentSize` bytes (default 1 MiB); the last segment
 *   holds the remainder and may be empty (empty plaintext = one empty final segment).
 * - Segment i is sealed with AES-256-GCM under the subkey, nonce = i as 11-byte big-endian
 *   integer | final flag (1 byte: 0x01 on the last segment, else 0x00), AAD = the 40-byte header.
 *   This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): reordering
 *   (counter), truncation at a record boundary (no final flag), appending after the final
 *   segment and any bit flip all make a tag check fail.
 * - A reader releases a segment's plaintext only after its tag verifies, treats a record as final
 *   only when the stream ends right after it, and rejects records longer than 64 MiB.
 * - A failed tag on the first segment is reported as a wrong key (EncryptionKeyError), since that
 *   is by far its likeliest cause; any later failure is an IntegrityError.
 */

export const ENCRYPTION_MAGIC = Buffer.from('RKYENC01', 'ascii');
export const DEFAULT_ENCRYPTION_SEGMENT_SIZE = 1024 * 1024;
const SALT_BYTES = 32;
const HEADER_BYTES = ENCRYPTION_MAGIC.length + SALT_BYTES;
const KEY_BYTES = 32;
const TAG_BYTES = 16;
const LENGTH_BYTES = 4;
const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const HKDF_INFO = Buffer.from('rookery artifact v1', 'ascii');

export interface EncryptStreamOptions {
  /** Plaintext bytes per sealed segment (default 1 MiB, at most 64 MiB). */
  segmentSize?: number;
}

export interface DecryptStreamOptions {
  /** Artifact name used in error messages. */
  label?: string;
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
  return new EncryptStream(key, segmentSize);
}

class EncryptStream extends Transform {
  private readonly header: Buffer;
  private readonly subkey: Buffer;
  private counter = 0;
  /** Plaintext not yet sealed; a full segment is held until we know whether it is the last. */
  private readonly pending = new ByteQueue();
  private headerSent = false;

  constructor(key: Buffer, private readonly segmentSize: number) {
    super();
    const salt = randomBytes(SALT_BYTES);
    this.header = Buffer.concat([ENCRYPTION_MAGIC, salt]);
    this.subkey = deriveSubkey(key, salt);
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
    cipher.setAAD(this.header);
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
  return new DecryptStream(key, options.label ?? 'unnamed');
}

class DecryptStream extends Transform {
  private readonly queue = new ByteQueue();
  private header: Buffer | null = null;
  private subkey: Buffer | null = null;
  private counter = 0;
  private sawFinal = false;

  constructor(
    private readonly key: Buffer,
    private readonly label: string,
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
          this.queue.length > 0 ? `stream ends inside a record (${this.queue.length} bytes left over)` : 'stream ends without its final segment (truncated)',
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
    if (!this.header) {
      if (this.queue.length < HEADER_BYTES) {
        if (ended) throw this.integrity(`stream of ${this.queue.length} bytes is shorter than the encryption header`);
        return;
      }
      const header = Buffer.from(this.queue.shift(HEADER_BYTES));
      if (!header.subarray(0, ENCRYPTION_MAGIC.length).equals(ENCRYPTION_MAGIC)) {
        throw this.integrity('not a rookery encrypted artifact (bad magic; expected RKYENC01)');
      }
      this.header = header;
      this.subkey = deriveSubkey(this.key, header.subarray(ENCRYPTION_MAGIC.length));
    }
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
      if (this.counter === 0) {
        throw new EncryptionKeyError(`cannot decrypt artifact '${this.label}': wrong encryption key or the artifact was altered`, {
          hint: "compare the key's fingerprint with the manifest's encryption.keyId",
        });
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
    decipher.setAAD(this.header as Buffer);
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

  private integrity(detail: string, cause?: unknown): IntegrityError {
    return new IntegrityError(`cannot decrypt artifact '${this.label}': ${detail}`, {
      cause,
      hint: 'the stored bytes are damaged or incomplete; run rookery verify on the backup',
    });
  }
}
