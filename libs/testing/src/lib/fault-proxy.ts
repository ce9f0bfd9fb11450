import { once } from 'node:events';
import { AddressInfo, Server, Socket, connect, createServer } from 'node:net';

/**
 * A TCP proxy that misbehaves on purpose, for fault-injection tests: put it in front of S3Proxy or
 * PostgreSQL and point the client at its port. It forwards bytes both ways and, per the current
 * fault, delays them, caps their rate, resets the connection (TCP RST) or stalls it (stops
 * forwarding with both sockets open, as a paused server would) after a number of bytes. A fault
 * set while connections are open applies to them from then on; clearing it lets stalled
 * connections go on, as a server would after SIGCONT. Choices by chance come from a seeded
 * generator, so a failing run replays with the seed it printed.
 */

export interface Fault {
  /** Bytes that count toward the thresholds: client to server ('up'), server to client ('down'), or both. */
  direction?: 'up' | 'down' | 'both';
  /** Wait before forwarding each chunk, both ways. */
  delayMs?: number;
  /** Rate cap per connection and direction. */
  bytesPerSecond?: number;
  /** Share of connections the reset or stall applies to; default all. */
  fraction?: number;
  /** Reset after this many counted bytes; a [min, max] range draws a number per connection. */
  resetAfterBytes?: number | [number, number];
  /** Stop forwarding after this many counted bytes; a range draws per connection. */
  stallAfterBytes?: number | [number, number];
  /** At most this many resets or stalls in all; later connections pass untouched. */
  limit?: number;
}

export interface FaultStats {
  connections: number;
  resets: number;
  stalls: number;
  bytesUp: number;
  bytesDown: number;
}

export interface FaultProxy {
  readonly port: number;
  /** `http://127.0.0.1:<port>`, for S3 endpoints. */
  readonly endpoint: string;
  readonly seed: number;
  /** Replaces the current fault (and releases stalled connections); also counts fires anew. */
  setFault(fault: Fault): void;
  clearFault(): void;
  stats(): FaultStats;
  close(): Promise<void>;
}

interface Plan {
  generation: number;
  selected: boolean;
  triggerAt?: number;
  action?: 'reset' | 'stall';
  counted: number;
  stalled: boolean;
}

export async function startFaultProxy(
  target: { host: string; port: number },
  options: { seed?: number; fault?: Fault } = {},
): Promise<FaultProxy> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = mulberry32(seed);
  let fault: Fault = options.fault ?? {};
  let generation = 0;
  let fires = 0;
  let release: () => void = () => undefined;
  let released = new Promise<void>((done) => (release = done));
  const stats: FaultStats = { connections: 0, resets: 0, stalls: 0, bytesUp: 0, bytesDown: 0 };
  const open = new Set<Socket>();
  let closing = false;

  const draw = (range: number | [number, number]) =>
    typeof range === 'number' ? range : range[0] + Math.floor(random() * (range[1] - range[0] + 1));

  const planFor = (plan: Plan | undefined): Plan => {
    if (plan && plan.generation === generation) return plan;
    const withinLimit = fault.limit === undefined || fires < fault.limit;
    const selected = withinLimit && (fault.fraction === undefined || random() < fault.fraction);
    const action = fault.resetAfterBytes !== undefined ? 'reset' : fault.stallAfterBytes !== undefined ? 'stall' : undefined;
    const threshold = fault.resetAfterBytes ?? fault.stallAfterBytes;
    return {
      generation,
      selected,
      action: selected ? action : undefined,
      triggerAt: selected && threshold !== undefined ? draw(threshold) : undefined,
      counted: 0,
      stalled: false,
    };
  };

  const handle = (client: Socket) => {
    stats.connections += 1;
    const upstream = connect(target.port, target.host);
    let plan: Plan | undefined;
    let done = false;
    const sockets = [client, upstream];
    const finish = (reset: boolean) => {
      if (done) return;
      done = true;
      for (const socket of sockets) {
        if (reset && !socket.destroyed && !socket.connecting) {
          try {
            socket.resetAndDestroy();
            continue;
          } catch {
            // Not a connected TCP socket after all: a plain close will do.
          }
        }
        socket.destroy();
      }
    };
    for (const socket of sockets) {
      open.add(socket);
      socket.on('error', () => finish(false));
      socket.on('close', () => {
        open.delete(socket);
        // A side that ended cleanly leaves the other to its pump, which forwards what is still
        // queued (delayed or rate-capped) and then ends it; any other close aborts both.
        if (!socket.readableEnded) finish(false);
      });
    }

    const pump = async (from: Socket, to: Socket, direction: 'up' | 'down') => {
      for await (const chunk of from as AsyncIterable<Buffer>) {
        let data = chunk;
        while (data.length > 0) {
          if (done) return;
          plan = planFor(plan);
          if (plan.stalled) {
            await released;
            continue;
          }
          const counts = fault.direction === undefined || fault.direction === 'both' || fault.direction === direction;
          let piece = data;
          if (counts && plan.triggerAt !== undefined) {
            const left = plan.triggerAt - plan.counted;
            if (left <= 0) {
              fires += 1;
              if (plan.action === 'reset') {
                stats.resets += 1;
                finish(true);
                return;
              }
              stats.stalls += 1;
              plan.stalled = true;
              plan.triggerAt = undefined;
              continue;
            }
            piece = piece.subarray(0, left);
          }
          const rate = fault.bytesPerSecond;
          // Small slices, so a capped rate is smooth rather than a burst and a long pause.
          if (rate) piece = piece.subarray(0, Math.max(1, Math.floor(rate / 20)));
          const wait = (fault.delayMs ?? 0) + (rate ? (piece.length * 1000) / rate : 0);
          if (wait > 0) await new Promise((resume) => setTimeout(resume, wait));
          if (done) return;
          if (!to.write(piece)) await Promise.race([once(to, 'drain'), once(to, 'close')]);
          if (counts) plan.counted += piece.length;
          if (direction === 'up') stats.bytesUp += piece.length;
          else stats.bytesDown += piece.length;
          data = data.subarray(piece.length);
        }
      }
      if (!done) to.end();
    };
    const pumps = (
      [
        [client, upstream, 'up'],
        [upstream, client, 'down'],
      ] as const
    ).map(([from, to, direction]) => pump(from, to, direction).catch(() => finish(false)));
    void Promise.all(pumps).then(() => finish(false));
  };

  const server: Server = createServer(handle);
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => done());
  });
  const port = (server.address() as AddressInfo).port;

  const setFault = (next: Fault) => {
    fault = { ...next };
    generation += 1;
    fires = 0;
    release();
    released = new Promise<void>((done) => (release = done));
  };

  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    seed,
    setFault,
    clearFault: () => setFault({}),
    stats: () => ({ ...stats }),
    close: async () => {
      if (closing) return;
      closing = true;
      release();
      for (const socket of open) socket.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}

/** A small seeded generator (mulberry32): the same seed gives the same faults. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
