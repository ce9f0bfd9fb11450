import { existsSync } from 'node:fs';
import { ToolFailedError } from '@rookery/core';
import { PgBinaries } from './pg-binaries';
import { PgCtlDriver } from './pg-ctl.driver';
import { ProcessRunner } from './process.runner';
import { createScratchCluster } from './scratch-cluster';

jest.setTimeout(60_000);

describe('createScratchCluster', () => {
  it('starts, answers, and leaves nothing behind when destroyed', async () => {
    const cluster = await createScratchCluster({ name: 'lifecycle', fsync: false, baseEnv: process.env });
    try {
      const [row] = await cluster.query<{ port: string }>(`select current_setting('port') as port`);
      expect(Number(row.port)).toBe(cluster.port);
    } finally {
      await cluster.destroy();
    }
    expect(existsSync(cluster.baseDir)).toBe(false);
  });

  it('fails to start on a bad setting with the server log tail in the error', async () => {
    const failure = createScratchCluster({
      name: 'badsetting',
      fsync: false,
      baseEnv: process.env,
      settings: { shared_buffers: 'lots' },
    });
    await expect(failure).rejects.toBeInstanceOf(ToolFailedError);
    await expect(failure).rejects.toThrow(/shared_buffers/);
  });

  it('reports a taken port with the bind error from the server log', async () => {
    const first = await createScratchCluster({ name: 'port-a', fsync: false, baseEnv: process.env });
    const second = await createScratchCluster({ name: 'port-b', fsync: false, baseEnv: process.env });
    try {
      await second.stop();
      const runner = new ProcessRunner({ baseEnv: process.env });
      const ctl = new PgCtlDriver(runner, await PgBinaries.resolve({ runner }));
      const failure = ctl.start(second.dataDir, {
        user: 'postgres',
        port: first.port,
        socketDir: second.socketDir,
        logFile: second.logFile,
        settings: { listen_addresses: '127.0.0.1' },
      });
      await expect(failure).rejects.toBeInstanceOf(ToolFailedError);
      await expect(failure).rejects.toMatchObject({ stderrTail: expect.stringMatching(/already in use/) });
      expect(await ctl.isRunning(second.dataDir, { user: 'postgres' })).toBe(false);
    } finally {
      await Promise.all([first.destroy(), second.destroy()]);
    }
  });
});
