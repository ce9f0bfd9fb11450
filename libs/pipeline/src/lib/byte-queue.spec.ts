import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ByteQueue } from './byte-queue';

describe('ByteQueue', () => {
  it.each([1, 3, 1000])('reads and takes across pieces of %i bytes', (pieceSize) => {
    const data = randomBytes(5000);
    const queue = new ByteQueue();
    for (let offset = 0; offset < data.length; offset += pieceSize) queue.push(data.subarray(offset, offset + pieceSize));
    expect(queue.length).toBe(5000);
    expect(queue.uint32BE(10)).toBe(data.readUInt32BE(10));
    expect(queue.uint32LE(4990)).toBe(data.readUInt32LE(4990));
    expect(queue.byteAt(7)).toBe(data[7]);
    expect(queue.shift(1234).equals(data.subarray(0, 1234))).toBe(true);
    expect(queue.byteAt(0)).toBe(data[1234]);
    expect(Buffer.concat(queue.shiftPieces(3000)).equals(data.subarray(1234, 4234))).toBe(true);
    expect(queue.shift(queue.length).equals(data.subarray(4234))).toBe(true);
    expect(queue.length).toBe(0);
  });

  it('refuses reads beyond its bytes', () => {
    const queue = new ByteQueue();
    queue.push(Buffer.from([1, 2, 3]));
    expect(() => queue.uint32BE(0)).toThrow(RangeError);
    expect(() => queue.shift(4)).toThrow(RangeError);
  });

  it('lets go of a piece once it was taken (memory stays at what is queued, whatever the stream length)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const queue = new ByteQueue();
    const taken: WeakRef<Buffer>[] = [];
    const feed = (index: number): WeakRef<Buffer> => {
      const piece = Buffer.alloc(1024, index);
      queue.push(piece);
      return new WeakRef(piece);
    };
    for (let index = 0; index < 10; index++) {
      taken.push(feed(index));
      queue.shiftPieces(queue.length);
    }
    queue.push(Buffer.alloc(16));
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(taken.filter((ref) => ref.deref() !== undefined)).toHaveLength(0);
  });
});
