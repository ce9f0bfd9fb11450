import { SourceUnavailableError } from '@rookery/core';
import { PgControlClient } from './pg-control.client';
import { ScratchCluster, createScratchCluster, freeLoopbackPort } from './scratch-cluster';

jest.setTimeout(60_000);

describe('PgControlClient', () => {
  let cluster: ScratchCluster;
  const client = new PgControlClient();

  beforeAll(async () => {
    cluster = await createScratchCluster({
      name: 'control',
      fsync: false,
      baseEnv: process.env,
      hbaLines: ['host all alice 127.0.0.1/32 scram-sha-256'],
    });
    await cluster.query(`create role alice login superuser password 'right-password'`);
  });

  afterAll(async () => {
    await cluster?.destroy();
  });

  it('reads version, system identifier, timeline, recovery state, segment size and library settings', async () => {
    const info = await client.serverInfo(cluster.url);
    const [control] = await cluster.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    expect(info.systemIdentifier).toBe(control.id);
    expect(info.systemIdentifier).toMatch(/^\d{15,20}$/);
    expect(info.versionNum).toBeGreaterThanOrEqual(150000);
    expect(info.version).toMatch(/^15\./);
    expect(info.timeline).toBe(1);
    expect(info.isInRecovery).toBe(false);
    expect(info.dataDirectory).toBe(cluster.dataDir);
    expect(info.walSegmentSize).toBe(16 * 1024 * 1024);
    expect(info.librarySettings).toEqual({
      shared_preload_libraries: '',
      local_preload_libraries: '',
      session_preload_libraries: '',
      dynamic_library_path: '$libdir',
    });
  });

  it('accepts the right password', async () => {
    const info = await client.serverInfo(`postgres://alice:right-password@127.0.0.1:${cluster.port}/postgres`);
    expect(info.timeline).toBe(1);
  });

  it('reports a wrong port as SourceUnavailableError naming host and port', async () => {
    const port = await freeLoopbackPort();
    const failure = client.serverInfo(`postgres://postgres:pw-not-shown@127.0.0.1:${port}/postgres`);
    await expect(failure).rejects.toBeInstanceOf(SourceUnavailableError);
    await expect(failure).rejects.toThrow(`cannot connect to postgres 127.0.0.1:${port}/postgres`);
    await expect(failure).rejects.toMatchObject({ retryable: true });
    await failure.catch((error: Error) => expect(error.message).not.toContain('pw-not-shown'));
  });

  it('reports a wrong password as a non-retryable authentication failure', async () => {
    const failure = client.serverInfo(`postgres://alice:wrong-password@127.0.0.1:${cluster.port}/postgres`);
    await expect(failure).rejects.toBeInstanceOf(SourceUnavailableError);
    await expect(failure).rejects.toThrow(/authentication failed for user 'alice' on postgres 127\.0\.0\.1:\d+\/postgres/);
    await expect(failure).rejects.toMatchObject({ retryable: false });
    await failure.catch((error: Error) => expect(error.message).not.toContain('wrong-password'));
  });
});
