import { randomBytes } from 'node:crypto';
import { AddressInfo, Server, Socket, connect, createServer } from 'node:net';
import { FaultProxy, startFaultProxy } from './fault-proxy';
import { pollUntil } from './poll';

/** A server that keeps what it receives per connection and answers each chunk with `reply`. */
async function recordingServer(reply?: Buffer) {
  const received: Buffer[][] = [];
  const server: Server = createServer((socket) => {
    const chunks: Buffer[] = [];
    received.push(chunks);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (reply) socket.write(reply);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  return {
    port: (server.address() as AddressInfo).port,
    bytes: (connection: number) => Buffer.concat(received[connection] ?? []),
    close: () => new Promise((done) => server.close(done)),
  };
}

function dial(proxy: FaultProxy): Promise<{ socket: Socket; got: Buffer[]; error: Promise<Error | undefined> }> {
  const socket = connect(proxy.port, '127.0.0.1');
  const got: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => got.push(chunk));
  const error = new Promise<Error | undefined>((done) => {
    socket.once('error', done);
    socket.once('close', () => done(undefined));
  });
  return new Promise((done) => socket.once('connect', () => done({ socket, got, error })));
}

describe('fault proxy', () => {
  let server: Awaited<ReturnType<typeof recordingServer>>;
  let proxy: FaultProxy;
  const payload = randomBytes(256 * 1024);

  beforeEach(async () => {
    server = await recordingServer(Buffer.from('ok'));
    proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port }, { seed: 7 });
  });

  afterEach(async () => {
    await proxy.close();
    await server.close();
  });

  it('forwards every byte both ways, delayed and rate-capped', async () => {
    proxy.setFault({ delayMs: 1, bytesPerSecond: 4 * 1024 * 1024 });
    const { socket, got } = await dial(proxy);
    socket.write(payload);
    await pollUntil(
      async () => server.bytes(0).length,
      (length) => length === payload.length,
      { timeoutMs: 30_000 },
    );
    expect(server.bytes(0).equals(payload)).toBe(true);
    await pollUntil(
      async () => got.length,
      (count) => count > 0,
    );
    socket.destroy();
    expect(proxy.stats()).toMatchObject({ connections: 1, resets: 0, stalls: 0, bytesUp: payload.length });
  });

  it('resets a connection once the given number of bytes went through', async () => {
    proxy.setFault({ direction: 'up', resetAfterBytes: 100_000 });
    const { socket, error } = await dial(proxy);
    socket.write(payload);
    expect(((await error) as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNRESET');
    expect(proxy.stats()).toMatchObject({ resets: 1, bytesUp: 100_000 });
    // A reset discards what was still in flight: the server has a prefix, never more.
    const arrived = server.bytes(0);
    expect(arrived.length).toBeLessThanOrEqual(100_000);
    expect(arrived.equals(payload.subarray(0, arrived.length))).toBe(true);
  });

  it('stalls after the given bytes with the connection open, and goes on once the fault is cleared', async () => {
    proxy.setFault({ direction: 'up', stallAfterBytes: 50_000 });
    const { socket } = await dial(proxy);
    socket.write(payload);
    await pollUntil(
      async () => proxy.stats().stalls,
      (stalls) => stalls === 1,
    );
    expect(server.bytes(0).length).toBe(50_000);
    expect(socket.destroyed).toBe(false);
    proxy.clearFault();
    await pollUntil(
      async () => server.bytes(0).length,
      (length) => length === payload.length,
    );
    expect(server.bytes(0).equals(payload)).toBe(true);
    socket.destroy();
  });

  it('applies a fault to a share of connections, up to its limit, and the seed replays the choice', async () => {
    const resetSet = async (seed: number) => {
      await proxy.close();
      proxy = await startFaultProxy(
        { host: '127.0.0.1', port: server.port },
        { seed, fault: { fraction: 0.5, resetAfterBytes: 10, limit: 3 } },
      );
      const outcomes: boolean[] = [];
      for (let index = 0; index < 12; index++) {
        const { socket, got, error } = await dial(proxy);
        let closed = false;
        void error.then(() => (closed = true));
        socket.write(payload.subarray(0, 1000));
        await pollUntil(async () => closed || got.length > 0, Boolean);
        outcomes.push(got.length === 0);
        socket.destroy();
        await error;
      }
      return outcomes;
    };
    const first = await resetSet(11);
    expect(first.filter(Boolean)).toHaveLength(3);
    expect(await resetSet(11)).toEqual(first);
  });
});
