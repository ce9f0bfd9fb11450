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

  it('reuses the memory of a piece handed back, and only of one handed back', () => {
    // Every other piece is written by the store and handed back; the rest are still queued or
    // being written downstream while later messages arrive.
    const gatherer = new SlabGatherer();
    const held: { piece: Buffer; bytes: Buffer }[] = [];
    const heldMemory = new Set<ArrayBufferLike>();
    const releasedMemory = new Set<ArrayBufferLike>();
    let emitted = 0;
    let reused = 0;
    const emit = (piece: Buffer) => {
      expect(heldMemory.has(piece.buffer)).toBe(false);
      if (releasedMemory.delete(piece.buffer)) reused++;
      if (emitted++ % 2 === 0) {
        releasedMemory.add(piece.buffer);
        gatherer.release(piece);
      } else {
        held.push({ piece, bytes: Buffer.from(piece) });
        heldMemory.add(piece.buffer);
      }
    };
    for (let i = 0; i < 400; i++) gatherer.append(randomBytes(30 * 1024 + (i % 5) * 2000), emit);
    expect(reused).toBeGreaterThan(3);
    for (const { piece, bytes } of held) expect(piece.equals(bytes)).toBe(true);
  });

  it('ignores what it did not hand out, and a piece handed back twice', () => {
    const gatherer = new SlabGatherer();
    const pieces: Buffer[] = [];
    const emit = (piece: Buffer) => pieces.push(piece);
    gatherer.append(randomBytes(SLAB), emit);
    gatherer.release(Buffer.alloc(SLAB));
    gatherer.release(pieces[0] as Buffer);
    gatherer.release(pieces[0] as Buffer);
    gatherer.append(randomBytes(SLAB), emit);
    gatherer.append(randomBytes(SLAB), emit);
    // The memory handed back once serves one later piece, not two at the same time.
    expect(pieces[1]?.buffer).toBe(pieces[0]?.buffer);
    expect(pieces[2]?.buffer).not.toBe(pieces[1]?.buffer);
  });

  it('has nothing to take when nothing was appended since the last piece', () => {
    const gatherer = new SlabGatherer();
    expect(gatherer.take()).toBeNull();
    gatherer.append(randomBytes(SLAB), () => undefined);
    expect(gatherer.take()).toBeNull();
  });
});
