import { randomBytes } from 'node:crypto';
import { SlabGatherer } from './base-backup.protocol';

const SLAB = SlabGatherer.SLAB_BYTES;

/** Feeds `messages` through one gatherer, each from one reused buffer as the protocol parser does. */
function gather(messages: Buffer[]): { pieces: Buffer[]; atEmit: Buffer[] } {
  const gatherer = new SlabGatherer();
  const pieces: Buffer[] = [];
  const atEmit: Buffer[] = [];
  // The parser hands each message over in memory it overwrites with the next socket read.
  const reused = Buffer.alloc(Math.max(...messages.map((message) => message.length), 1));
  for (const message of messages) {
    message.copy(reused);
    gatherer.append(reused.subarray(0, message.length), (piece) => {
      pieces.push(piece);
      atEmit.push(Buffer.from(piece));
    });
    reused.fill(0xee);
  }
  const tail = gatherer.take();
  if (tail) {
    pieces.push(tail);
    atEmit.push(Buffer.from(tail));
  }
  return { pieces, atEmit };
}

describe('SlabGatherer', () => {
  it.each([
    ['no message', []],
    ['one small message', [randomBytes(100)]],
    ['COPY-sized messages over several slabs', Array.from({ length: 200 }, (_, i) => randomBytes(32 * 1024 + (i % 7) * 1000))],
    ['messages that fill a slab exactly', Array.from({ length: 8 }, () => randomBytes(SLAB / 4))],
    ['a message larger than a slab between small ones', [randomBytes(10), randomBytes(SLAB + 5), randomBytes(20)]],
  ])('passes on every byte, in order, in pieces of at most a slab: %s', (_name, messages) => {
    const { pieces } = gather(messages);
    expect(Buffer.concat(pieces).equals(Buffer.concat(messages))).toBe(true);
    expect(pieces.every((piece) => piece.length > 0)).toBe(true);
    for (const piece of pieces) {
      if (piece.length > SLAB) expect(messages.some((message) => message.equals(piece))).toBe(true);
    }
  });

  it('gathers ~32 KiB messages into whole-slab pieces', () => {
    const messages = Array.from({ length: 64 }, () => randomBytes(32 * 1024));
    const { pieces } = gather(messages);
    expect(pieces.map((piece) => piece.length)).toEqual([SLAB, SLAB]);
  });

  it('never writes into a piece it has handed downstream', () => {
    // A piece is still queued in the archive stream, or being written, while later messages
    // arrive: its bytes must stay what they were when it was emitted.
    const messages = Array.from({ length: 300 }, (_, i) => randomBytes(20 * 1024 + (i % 11) * 3000));
    const { pieces, atEmit } = gather(messages);
    expect(pieces.length).toBeGreaterThan(5);
    pieces.forEach((piece, i) => expect(piece.equals(atEmit[i] as Buffer)).toBe(true));
    const memories = new Set(pieces.map((piece) => piece.buffer));
    expect(memories.size).toBe(pieces.length);
  });

  it('has nothing to take when nothing was appended since the last piece', () => {
    const gatherer = new SlabGatherer();
    expect(gatherer.take()).toBeNull();
    gatherer.append(randomBytes(SLAB), () => undefined);
    expect(gatherer.take()).toBeNull();
  });
});
