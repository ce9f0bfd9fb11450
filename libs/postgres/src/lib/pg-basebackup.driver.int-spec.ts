import { pipeline } from 'node:stream/promises';
import { Parser } from 'tar';
import { ToolFailedError, parseLsn } from '@rookery/core';
import { PgBasebackupDriver } from './pg-basebackup.driver';
import { PgBinaries } from './pg-binaries';
import { ProcessRunner } from './process.runner';
import { ScratchCluster, createScratchCluster, freeLoopbackPort } from './scratch-cluster';

jest.setTimeout(60_000);

describe('PgBasebackupDriver', () => {
  let cluster: ScratchCluster;
  let driver: PgBasebackupDriver;

  beforeAll(async () => {
    cluster = await createScratchCluster({ name: 'basebackup', fsync: false, baseEnv: process.env });
    const runner = new ProcessRunner({ baseEnv: process.env });
    driver = new PgBasebackupDriver(runner, await PgBinaries.resolve({ runner }));
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('streams one tar with backup_label, pg_control, the WAL it needs and the backup manifest', async () => {
    await cluster.query('create table t as select g from generate_series(1, 1000) g');
    const lines: string[] = [];
    const backup = driver.start({ url: cluster.url, label: 'int-spec', checkpoint: 'fast', onStderrLine: (line) => lines.push(line) });
    const entries: string[] = [];
    await pipeline(
      backup.stream,
      new Parser({
        onReadEntry: (entry) => {
          entries.push(entry.path);
          entry.resume();
        },
      }),
    );
    const result = await backup.result;

    expect(entries).toEqual(expect.arrayContaining(['backup_label', 'global/pg_control', 'PG_VERSION']));
    expect(entries.some((path) => /^pg_wal\/[0-9A-F]{24}$/.test(path))).toBe(true);
    expect(entries[entries.length - 1]).toBe('backup_manifest');
    expect(result.timeline).toBe(1);
    expect(parseLsn(result.stopLsn)).toBeGreaterThanOrEqual(parseLsn(result.startLsn));
    expect(lines.some((line) => line.includes('write-ahead log end point'))).toBe(true);
  });

  it('fails against a dead server with ToolFailedError carrying the stderr tail, and errors the stream', async () => {
    const port = await freeLoopbackPort();
    const backup = driver.start({ url: `postgres://postgres@127.0.0.1:${port}/postgres`, label: 'dead', checkpoint: 'fast' });
    const streamed = pipeline(backup.stream, new Parser());
    await expect(backup.result).rejects.toBeInstanceOf(ToolFailedError);
    await expect(backup.result).rejects.toMatchObject({
      tool: 'pg_basebackup',
      exitCode: 1,
      stderrTail: expect.stringMatching(/connection to server .* failed/),
    });
    await expect(backup.result).rejects.toThrow(/pg_basebackup failed with exit code 1: .*Connection refused/);
    await expect(streamed).rejects.toBeInstanceOf(ToolFailedError);
  });

  it('stops pg_basebackup when aborted', async () => {
    const controller = new AbortController();
    const backup = driver.start({ url: cluster.url, label: 'aborted', checkpoint: 'fast', signal: controller.signal });
    controller.abort(new Error('shutting down'));
    backup.stream.resume();
    backup.stream.on('error', () => undefined);
    await expect(backup.result).rejects.toThrow('shutting down');
  });
});
