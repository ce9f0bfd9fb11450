import { IntegrityError } from '@rookery/core';
import { ExactReader } from './exact-reader';

/** Builds a record of big-endian fields. */
export class FieldWriter {
  private readonly parts: Buffer[] = [];

  u8(value: number): this {
    return this.push(Buffer.of(value));
  }

  u16(value: number): this {
    const buffer = Buffer.allocUnsafe(2);
    buffer.writeUInt16BE(value);
    return this.push(buffer);
  }

  u32(value: number): this {
    const buffer = Buffer.allocUnsafe(4);
    buffer.writeUInt32BE(value);
    return this.push(buffer);
  }

  /** A non-negative safe integer (sizes, times). */
  u64(value: number): this {
    const buffer = Buffer.allocUnsafe(8);
    buffer.writeBigUInt64BE(BigInt(value));
    return this.push(buffer);
  }

  /** UTF-8 text with a 16-bit length. */
  text(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    return this.u16(bytes.length).push(bytes);
  }

  bytes(value: Buffer): this {
    return this.push(value);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }

  private push(buffer: Buffer): this {
    this.parts.push(buffer);
    return this;
  }
}

const SMALL_FIELD_BYTES = 64;

/** Reads the fields FieldWriter writes; every read names what it reads, for the error of a short stream. */
export class FieldReader {
  constructor(readonly reader: ExactReader) {}

  async u8(what: string): Promise<number> {
    return (await this.reader.read(1, what))[0];
  }

  async u16(what: string): Promise<number> {
    return (await this.reader.read(2, what)).readUInt16BE();
  }

  async u32(what: string): Promise<number> {
    return (await this.reader.read(4, what)).readUInt32BE();
  }

  async u64(what: string): Promise<number> {
    const value = (await this.reader.read(8, what)).readBigUInt64BE();
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new IntegrityError(`${this.reader.label} has ${what} out of range (${value})`);
    return Number(value);
  }

  async text(what: string): Promise<string> {
    const length = await this.u16(`the length of ${what}`);
    return (await this.reader.read(length, what)).toString('utf8');
  }

  /**
   * A digest or other small field is copied: kept for long (a page's digest in the combiner's
   * states), a view would keep the whole stream chunk it came from alive. Larger reads (pages)
   * are views; whoever keeps them copies them (SpillStore.append).
   */
  async bytes(length: number, what: string): Promise<Buffer> {
    const bytes = await this.reader.read(length, what);
    return length <= SMALL_FIELD_BYTES ? Buffer.from(bytes) : bytes;
  }
}
