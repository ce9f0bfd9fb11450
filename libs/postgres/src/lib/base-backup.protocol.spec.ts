import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BaseBackupStreams, FlowControlledSocket, SlabGatherer } from './base-backup.protocol';

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
  it('holds no slab the consumer never hands back (compressed or encrypted on the way): they are collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const gatherer = new SlabGatherer();
    const emitted: WeakRef<ArrayBuffer>[] = [];
    // 64 MiB through the gatherer, each slab dropped by its consumer without release().
    for (let slab = 0; slab < 64; slab++) {
      gatherer.append(Buffer.alloc(SlabGatherer.SLAB_BYTES, slab), (piece) => emitted.push(new WeakRef(piece.buffer as ArrayBuffer)));
    }
    expect(emitted).toHaveLength(64);
    // WeakRef targets live at least until the job that made them ends: collect after it.
    for (let round = 0; round < 3; round++) {
      await new Promise(setImmediate);
      gc();
    }
    expect(emitted.filter((ref) => ref.deref() !== undefined).length).toBe(0);
  });

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

/**
 * The replication socket as the pg client uses it: one read at a time, each parsed to its end even
 * when a stream paused the socket halfway through it (pg parses the whole buffer it received), and
 * no next read while paused.
 */
class ScriptedSocket implements FlowControlledSocket {
  paused = false;
  delivered = 0;
  private scheduled = false;

  constructor(private readonly reads: (() => void)[]) {}

  get remaining(): number {
    return this.reads.length;
  }

  start(): void {
    this.schedule();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const read = this.paused ? undefined : this.reads.shift();
      if (!read) return;
      read();
      this.delivered++;
      this.schedule();
    });
  }
}

type Pace = 'reads at once' | 'reads slowly' | 'starts late';

/** A reader of one stream at the given pace; `progress` counts what it consumed. */
async function consume(stream: Readable, pace: Pace, progress: { bytes: number }): Promise<Buffer> {
  if (pace === 'starts late') for (let turn = 0; turn < 20; turn++) await new Promise(setImmediate);
  const chunks: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      progress.bytes += chunk.length;
      if (pace === 'reads slowly') setImmediate(() => setImmediate(callback));
      else callback();
    },
  });
  await pipeline(stream, sink);
  return Buffer.concat(chunks);
}

/** COPY-sized messages (~32 KiB) making up `bytes`. */
function messages(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += 32 * 1024) out.push(bytes.subarray(offset, offset + 32 * 1024));
  return out;
}

/**
 * Runs a base backup's byte flow: `script` builds the socket's reads (archive data, the switch to
 * the manifest, its data, then the end of the command) and both streams are read at `pace`.
 * 'stalled' when nothing moves any more while reads are still waiting behind a paused socket: the
 * state in which the real backup's process drained its event loop and exited 0.
 */
async function runFlow(
  readsOf: (streams: BaseBackupStreams, done: () => void) => (() => void)[],
  pace: { archive: Pace; manifest: Pace },
): Promise<{ outcome: 'ended' | 'stalled'; archive?: Buffer; manifest?: Buffer; remaining: number }> {
  const connection: { socket?: ScriptedSocket } = {};
  const streams = new BaseBackupStreams(() => connection.socket);
  let commandDone = false;
  const socket = new ScriptedSocket(readsOf(streams, () => (commandDone = true)));
  connection.socket = socket;
  const progress = { bytes: 0 };
  const read = Promise.all([consume(streams.archive, pace.archive, progress), consume(streams.manifest, pace.manifest, progress)]);
  let finished: [Buffer, Buffer] | undefined;
  void read.then((buffers) => (finished = buffers));
  socket.start();
  let idleTurns = 0;
  let last = -1;
  while (!(finished && commandDone) && idleTurns < 500) {
    await new Promise(setImmediate);
    const moved = socket.delivered + progress.bytes;
    idleTurns = moved === last ? idleTurns + 1 : 0;
    last = moved;
  }
  if (!(finished && commandDone)) return { outcome: 'stalled', remaining: socket.remaining };
  return { outcome: 'ended', archive: finished?.[0], manifest: finished?.[1], remaining: socket.remaining };
}

describe('BaseBackupStreams (flow control of the replication socket)', () => {
  const archiveBytes = randomBytes(5 * 1024 * 1024 + 12_345);
  const manifestBytes = randomBytes(100_000);
  const bigManifest = randomBytes(3 * 1024 * 1024 + 7);

  const scripts = {
    // The whole archive and its end in one socket read: its last pieces meet a full buffer, and
    // the manifest's bytes wait in the next read, behind the paused socket.
    'the archive ends on backpressure': (streams: BaseBackupStreams, done: () => void) => [
      () => {
        for (const message of messages(archiveBytes)) streams.append(streams.archive, message);
        streams.end(streams.archive);
      },
      () => messages(manifestBytes).forEach((message) => streams.append(streams.manifest, message)),
      () => streams.end(streams.manifest),
      done,
    ],
    // A manifest over its buffer in one read: the end point and ReadyForQuery wait behind it.
    'the manifest ends on backpressure': (streams: BaseBackupStreams, done: () => void) => [
      () => {
        for (const message of messages(archiveBytes.subarray(0, 100_000))) streams.append(streams.archive, message);
        streams.end(streams.archive);
      },
      () => {
        for (const message of messages(bigManifest)) streams.append(streams.manifest, message);
        streams.end(streams.manifest);
      },
      done,
    ],
    // Ordinary backpressure: the archive in reads of 256 KiB, its reader behind.
    'the archive arrives in many reads': (streams: BaseBackupStreams, done: () => void) => [
      ...Array.from({ length: Math.ceil(archiveBytes.length / (256 * 1024)) }, (_, i) => () => {
        for (const message of messages(archiveBytes.subarray(i * 256 * 1024, (i + 1) * 256 * 1024)))
          streams.append(streams.archive, message);
      }),
      () => streams.end(streams.archive),
      () => messages(manifestBytes).forEach((message) => streams.append(streams.manifest, message)),
      () => streams.end(streams.manifest),
      done,
    ],
  };
  const paces: { archive: Pace; manifest: Pace }[] = [
    { archive: 'reads at once', manifest: 'reads at once' },
    { archive: 'reads slowly', manifest: 'reads at once' },
    { archive: 'starts late', manifest: 'reads slowly' },
    { archive: 'reads slowly', manifest: 'starts late' },
  ];
  const cases = Object.keys(scripts).flatMap((script) =>
    paces.map((pace) => [script as keyof typeof scripts, pace.archive, pace.manifest, pace] as const),
  );

  it.each(cases)('delivers every byte and the end of the command when %s (archive %s, manifest %s)', async (script, _a, _m, pace) => {
    const manifest = script === 'the manifest ends on backpressure' ? bigManifest : manifestBytes;
    const archive = script === 'the manifest ends on backpressure' ? archiveBytes.subarray(0, 100_000) : archiveBytes;
    const flow = await runFlow(scripts[script], pace);
    expect({ outcome: flow.outcome, remaining: flow.remaining }).toEqual({ outcome: 'ended', remaining: 0 });
    expect(flow.archive?.equals(archive)).toBe(true);
    expect(flow.manifest?.equals(manifest)).toBe(true);
  });

  it('pauses the socket while the stream being fed is full, and only then', async () => {
    const pauses: string[] = [];
    const socket: FlowControlledSocket = { pause: () => pauses.push('pause'), resume: () => pauses.push('resume') };
    const streams = new BaseBackupStreams(() => socket);
    for (const message of messages(randomBytes(3 * 1024 * 1024))) streams.append(streams.archive, message);
    expect(pauses).toEqual([]);
    for (const message of messages(randomBytes(2 * 1024 * 1024))) streams.append(streams.archive, message);
    expect(pauses).toEqual(['pause']);
    // Its reader takes the bytes: the stream asks for more, which resumes the socket.
    streams.archive.resume();
    await new Promise(setImmediate);
    expect(pauses).toEqual(['pause', 'resume']);
  });
});

describe('BaseBackupStreams with tablespaces (one archive after another on one socket)', () => {
  it.each([
    ['reads at once', 'reads at once'],
    ['reads slowly', 'starts late'],
    ['starts late', 'reads slowly'],
  ] as const)('delivers each archive whole to its own stream (tablespace reader %s, data directory reader %s)', async (first, second) => {
    const tablespaceBytes = [randomBytes(5 * 1024 * 1024 + 3), randomBytes(200_001)];
    const baseBytes = randomBytes(4 * 1024 * 1024 + 77);
    const manifestBytes = randomBytes(50_000);
    const connection: { socket?: ScriptedSocket } = {};
    const streams = new BaseBackupStreams(() => connection.socket);
    const opened: Readable[] = [];
    let done = false;
    const feed = (stream: () => Readable, bytes: Buffer) => [
      ...Array.from({ length: Math.ceil(bytes.length / (512 * 1024)) }, (_, i) => () => {
        for (const message of messages(bytes.subarray(i * 512 * 1024, (i + 1) * 512 * 1024))) streams.append(stream(), message);
      }),
      () => streams.end(stream()),
    ];
    const reads = [
      // As the protocol client does on each 'n': a new stream for each tablespace, the data directory's last.
      ...tablespaceBytes.flatMap((bytes, index) => [() => void opened.push(streams.openArchive()), ...feed(() => opened[index], bytes)]),
      ...feed(() => streams.archive, baseBytes),
      ...feed(() => streams.manifest, manifestBytes),
      () => (done = true),
    ];
    const socket = new ScriptedSocket(reads);
    connection.socket = socket;
    const progress = { bytes: 0 };
    socket.start();
    // The caller reads the tablespaces in turn as they are announced, the data directory's and the manifest meanwhile.
    const base = consume(streams.archive, second, progress);
    const manifest = consume(streams.manifest, 'reads at once', progress);
    const tablespaces: Buffer[] = [];
    for (let index = 0; index < tablespaceBytes.length; index++) {
      while (!opened[index]) await new Promise(setImmediate);
      tablespaces.push(await consume(opened[index], first, progress));
    }
    expect((await base).equals(baseBytes)).toBe(true);
    expect((await manifest).equals(manifestBytes)).toBe(true);
    tablespaces.forEach((bytes, index) => expect(bytes.equals(tablespaceBytes[index])).toBe(true));
    while (!done) await new Promise(setImmediate);
    expect(socket.remaining).toBe(0);
  });
});
