import { createCipheriv } from 'node:crypto';

/**
 * A small seeded generator for differential and property specs: the same seed gives the same
 * sequence, so a failing case replays from the seed its spec prints. Not for anything secret.
 */
export class SeededRandom {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  /** A float in [0, 1) (mulberry32). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let value = this.state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }

  /**
   * Bytes that look random (incompressible), determined by this generator: an AES-128-CTR
   * keystream under a key and counter drawn from it (megabytes in milliseconds, where drawing
   * them number by number took seconds).
   */
  bytes(length: number): Buffer {
    const seed = Buffer.allocUnsafe(32);
    for (let index = 0; index < 32; index += 4) seed.writeUInt32LE(this.int(0, 0xffffffff), index);
    const cipher = createCipheriv('aes-128-ctr', seed.subarray(0, 16), seed.subarray(16));
    return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
  }
}

/**
 * The seeds a differential spec runs: `count` of them derived from a base seed, or only the one
 * in `ROOKERY_DIFF_SEED` to replay a failure (the spec prints it).
 */
export function differentialSeeds(count: number, base = 20_261_206, replay = process.env['ROOKERY_DIFF_SEED']): number[] {
  if (replay) return [Number(replay)];
  return Array.from({ length: count }, (_, index) => (base + index * 7_919) >>> 0);
}
