import { EventEmitter } from 'node:events';
import { DrainedProcess, failWhenDrained } from './cli.drain';

/** A process stand-in: beforeExit is emitted by the spec, stderr collected. */
function fakeProcess(): DrainedProcess & { emitter: EventEmitter; written: string[] } {
  const emitter = new EventEmitter();
  const written: string[] = [];
  return {
    emitter,
    written,
    on: (event, listener) => emitter.on(event, listener),
    off: (event, listener) => emitter.off(event, listener),
    stderr: { write: (text: string) => written.push(text) },
    exitCode: undefined,
  };
}

describe('failWhenDrained', () => {
  it('fails a command whose promise had not settled when the event loop drained, once', () => {
    const host = fakeProcess();
    failWhenDrained('backup', new Promise(() => undefined), host);
    host.emitter.emit('beforeExit', 0);
    host.emitter.emit('beforeExit', 1);
    expect(host.exitCode).toBe(1);
    expect(host.written).toHaveLength(1);
    expect(host.written[0]).toMatch(/^rookery: backup stopped before it finished: .*\(this is a bug; .*\)\n$/);
  });

  it.each([
    ['resolved', () => Promise.resolve(0)],
    ['rejected', () => Promise.reject(new Error('failed loudly'))],
  ])('leaves a command that %s alone', async (_how, start) => {
    const host = fakeProcess();
    const running = start();
    failWhenDrained('verify', running, host);
    await running.catch(() => undefined);
    await new Promise(setImmediate);
    host.emitter.emit('beforeExit', 0);
    expect(host.exitCode).toBeUndefined();
    expect(host.written).toEqual([]);
    expect(host.emitter.listenerCount('beforeExit')).toBe(0);
  });
});
