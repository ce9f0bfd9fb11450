import { Readable } from 'node:stream';
import { ConfigError, ToolFailedError } from '@rookery/core';
import { ProcessRunner, lookupOsUser, pickInheritedEnv } from './process.runner';

const node = process.execPath;

describe('ProcessRunner', () => {
  const runner = new ProcessRunner({ baseEnv: { PATH: '/usr/bin:/bin', HOME: '/root', SECRET_TOKEN: 'x' } });

  it('runs an argv without a shell and returns stdout', async () => {
    const result = await runner.run(node, ['-e', 'process.stdout.write(process.argv[1])', '$(echo injected); rm -rf /']);
    expect(result.stdout).toBe('$(echo injected); rm -rf /');
    expect(result.exitCode).toBe(0);
  });

  it('passes only inherited keys plus the explicit env', async () => {
    const result = await runner.run(node, ['-e', 'process.stdout.write(JSON.stringify(process.env))'], {
      env: { PGPASSWORD: 'pw', HOME: undefined },
    });
    const env = JSON.parse(result.stdout) as Record<string, string>;
    expect(env['PGPASSWORD']).toBe('pw');
    expect(env['PATH']).toBe('/usr/bin:/bin');
    expect(env['SECRET_TOKEN']).toBeUndefined();
    expect(env['HOME']).toBeUndefined();
  });

  it('rejects with ToolFailedError carrying the exit code and stderr tail', async () => {
    const failure = runner.run(node, ['-e', 'console.error("fatal: it broke"); process.exit(3)']);
    await expect(failure).rejects.toBeInstanceOf(ToolFailedError);
    await expect(failure).rejects.toMatchObject({ exitCode: 3, stderrTail: expect.stringContaining('fatal: it broke') });
    await expect(failure).rejects.toThrow(/exited|exit code 3: fatal: it broke/);
  });

  it('keeps only the last 64 KiB of stderr', async () => {
    const result = await runner.run(node, ['-e', 'for (let i = 0; i < 5000; i++) process.stderr.write(`line ${i} ${"x".repeat(40)}\\n`)']);
    expect(result.stderrTail.length).toBeLessThanOrEqual(64 * 1024);
    expect(result.stderrTail).toContain('line 4999');
    expect(result.stderrTail).not.toContain('line 1 ');
  });

  it('reports each stderr line to onStderrLine', async () => {
    const lines: string[] = [];
    await runner.run(node, ['-e', 'process.stderr.write("one\\ntw"); setTimeout(() => process.stderr.write("o\\nthree"), 20)'], {
      onStderrLine: (line) => lines.push(line),
    });
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('feeds stdin from a string or a stream', async () => {
    const echo = ['-e', 'process.stdin.pipe(process.stdout)'];
    expect((await runner.run(node, echo, { stdin: 'hello' })).stdout).toBe('hello');
    expect((await runner.run(node, echo, { stdin: Readable.from(['a', 'b']) })).stdout).toBe('ab');
  });

  it('errors stdout when the process fails, so a pipeline cannot see a truncated output as complete', async () => {
    const child = runner.spawn(node, ['-e', 'process.stdout.write("partial"); process.exit(2)']);
    const consumed = new Promise((resolve, reject) => {
      child.stdout
        .on('data', () => undefined)
        .on('end', resolve)
        .on('error', reject);
    });
    await expect(consumed).rejects.toBeInstanceOf(ToolFailedError);
    await expect(child.result).rejects.toMatchObject({ exitCode: 2 });
  });

  it('kills the process group on abort and rejects with the abort reason', async () => {
    const controller = new AbortController();
    const child = runner.spawn(node, ['-e', 'process.stdout.write("running"); setInterval(() => {}, 1000)'], { signal: controller.signal });
    child.stdout.on('error', () => undefined);
    // Aborted once the child is running (its first output), not after a guessed delay.
    child.stdout.once('data', () => controller.abort(new Error('user cancelled')));
    child.stdout.resume();
    await expect(child.result).rejects.toThrow('user cancelled');
  });

  it('rejects at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(runner.run(node, ['-e', '1'], { signal: controller.signal })).rejects.toThrow(/abort/i);
  });

  it('kills a child that stops writing stdout while it is read, and rejects with the stdoutIdle error', async () => {
    const stalled = (seen: { bytes: number }) => new Error(`quiet after ${seen.bytes} bytes`);
    const child = runner.spawn(node, ['-e', 'process.stdout.write("12345"); setInterval(() => undefined, 1000)'], {
      stdoutIdle: { timeoutMs: 1_000, error: stalled },
    });
    const read: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => read.push(chunk));
    await expect(child.result).rejects.toThrow('quiet after 5 bytes');
    expect(Buffer.concat(read).toString()).toBe('12345');
    expect(() => process.kill(child.pid as number, 0)).toThrow();
  });

  it('does not count the time its consumer stopped reading stdout against stdoutIdle', async () => {
    // 4 MiB: far more than the pipe and the stream buffers hold, so the child blocks on its stdout
    // for as long as nobody reads (4 stdoutIdle timeouts).
    const child = runner.spawn(node, ['-e', 'process.stdout.write(Buffer.alloc(4 * 1024 * 1024, 7))'], {
      stdoutIdle: { timeoutMs: 1_000, error: () => new Error('counted a paused stdout as silence') },
    });
    // A sleep on purpose: nobody reading for several stdoutIdle timeouts is what the case is about.
    await new Promise((resume) => setTimeout(resume, 4_000));
    let bytes = 0;
    child.stdout.on('data', (chunk: Buffer) => (bytes += chunk.length));
    await expect(child.result).resolves.toMatchObject({ exitCode: 0 });
    await new Promise((ended) => child.stdout.once('end', ended));
    expect(bytes).toBe(4 * 1024 * 1024);
  });

  it('turns a missing program into a ConfigError', async () => {
    await expect(runner.run('/nonexistent/pg_basebackup', [])).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('ProcessRunner.runSync', () => {
  const runner = new ProcessRunner({ baseEnv: { PATH: '/usr/bin:/bin', SECRET_TOKEN: 'x' } });

  it("returns stdout of a program run with the runner's environment", () => {
    const stdout = runner.runSync(node, ['-e', 'process.stdout.write(JSON.stringify(process.env))']);
    const env = JSON.parse(stdout ?? '{}') as Record<string, string>;
    expect(env['PATH']).toBe('/usr/bin:/bin');
    expect(env['SECRET_TOKEN']).toBeUndefined();
  });

  it.each([
    ['exits non-zero', node, ['-e', 'process.stdout.write("partial"); process.exit(2)']],
    ['does not exist', '/nonexistent/pg_config', ['--bindir']],
  ])('returns undefined when the program %s', (_name, command, args) => {
    expect(runner.runSync(command, args)).toBeUndefined();
  });
});

describe('ProcessRunner.startOrphanGuard', () => {
  const runner = new ProcessRunner();
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  /** Waits for `condition` (a generous cap: a wait, never a time bound); true once it holds. */
  const until = async (condition: () => boolean) => {
    for (let i = 0; i < 1_200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    return condition();
  };

  it('signals the target once the watched process is gone', async () => {
    const watched = runner.spawn(node, ['-e', 'setInterval(() => {}, 1000)']);
    const target = runner.spawn(node, ['-e', 'setInterval(() => {}, 1000)']);
    watched.result.catch(() => undefined);
    const watchPid = Number(watched.pid);
    const targetPid = Number(target.pid);
    runner.startOrphanGuard({ watchPid, targetPid, signal: 'SIGTERM' });
    process.kill(watchPid, 'SIGKILL');
    await expect(target.result).rejects.toMatchObject({ exitCode: null });
    expect(await until(() => !alive(targetPid))).toBe(true);
  }, 180_000);
});

describe('pickInheritedEnv', () => {
  it('keeps PATH, HOME, LANG and drops everything else', () => {
    expect(pickInheritedEnv({ PATH: '/bin', HOME: '/h', LANG: 'C', PGPASSWORD: 'x', AWS_SECRET_ACCESS_KEY: 'y' })).toEqual({
      PATH: '/bin',
      HOME: '/h',
      LANG: 'C',
    });
  });
});

describe('lookupOsUser', () => {
  it('finds root', () => {
    expect(lookupOsUser('root')).toMatchObject({ uid: 0, gid: 0 });
  });

  it('names a missing user', () => {
    expect(() => lookupOsUser('no-such-user-rookery')).toThrow(/no-such-user-rookery/);
  });
});
