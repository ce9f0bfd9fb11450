import { existsSync } from 'node:fs';
import { ToolFailedError } from '@rookery/core';
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
});
