import { ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TestCluster, grpcTestClient, pollUntil, startCluster } from '@rookery/testing';

jest.setTimeout(600_000);

/**
 * Services as operators start them (`npm run start:<service>` after `npm run build`): the built
 * main.js of each app in a process of its own, on one configuration file, several on one host.
 */
const root = resolve(__dirname, '..', '..', '..', '..');

interface RunningService {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

function startService(app: string, options: { config: string; args?: string[]; port?: number }): RunningService {
  const env: NodeJS.ProcessEnv = { ...process.env, ROOKERY_CONFIG: options.config };
  delete env['ROOKERY_KAFKA_BROKERS'];
  delete env['PORT'];
  if (options.port !== undefined) env['PORT'] = String(options.port);
  const main = join(root, 'dist', 'apps', app, 'src', 'main.js');
  const child = spawn(process.execPath, ['-r', './tools/runtime/register-aliases.cjs', main, ...(options.args ?? [])], {
    cwd: root,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, stderr: () => stderr, exited };
}

async function stopService(service: RunningService): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGTERM');
  await service.exited;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise<void>((done) => server.close(() => done()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function healthStatus(port: number): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`)).status;
  } catch {
    return 0;
  }
}

describe('services started together (built main.js, one config, one host)', () => {
  let work: string;
  let catalog: TestCluster;
  const running: RunningService[] = [];

  async function writeConfig(name: string, lines: string[]): Promise<string> {
    const path = join(work, name);
    await writeFile(
      path,
      [
        `repositories: ['file://${join(work, 'repository')}']`,
        // A service section among the lines replaces this one.
        ...(lines.some((line) => line.startsWith('service:')) ? [] : ['service: { host: 127.0.0.1, port: 1 }']),
        'auth: { mode: none }',
        ...lines,
        '',
      ].join('\n'),
    );
    return path;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-service-start-'));
    catalog = await startCluster({ name: 'service-start-catalog' });
  });

  afterEach(async () => {
    await Promise.all(running.splice(0).map(stopService));
  });

  afterAll(async () => {
    await catalog?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  /** Polls until the service answers /health (200) or exits ('exited'). */
  function upOrExited(port: number, service: RunningService): Promise<number | 'exited'> {
    return pollUntil(
      async () => (service.child.exitCode !== null ? 'exited' : await healthStatus(port)),
      (status) => status === 200 || status === 'exited',
      { what: `the service on port ${port} to answer /health or exit` },
    );
  }

  it.each(['validator', 'compliance-reporting'])(
    '%s on the in-process bus exits 1 with one line naming the missing brokers',
    async (app) => {
      const config = await writeConfig(`${app}-in-process.yaml`, [`catalog: { url: 'sqlite://${join(work, `${app}.sqlite`)}' }`]);
      const port = await freePort();
      const service = startService(app, { config, port });
      running.push(service);
      expect(await upOrExited(port, service)).toBe('exited');
      expect(await service.exited).toBe(1);
      const lines = service.stderr().trimEnd().split('\n');
      expect(lines).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${app}: ${app} consumes the events of the other rookery services, but no Kafka brokers are configured.*allowInProcess`,
          ),
        ),
      ]);
    },
  );

  it('with events.allowInProcess, two services start at once on one empty PostgreSQL catalog, on PORT and --port; the schema is migrated once', async () => {
    await catalog.query('create database shared_catalog');
    const config = await writeConfig('shared.yaml', [
      `catalog: { url: '${catalog.urlFor('shared_catalog')}' }`,
      'events: { allowInProcess: true }',
    ]);
    const [validatorPort, compliancePort] = [await freePort(), await freePort()];
    const validator = startService('validator', { config, port: validatorPort });
    const compliance = startService('compliance-reporting', { config, args: ['--port', String(compliancePort)] });
    running.push(validator, compliance);
    expect(await Promise.all([upOrExited(validatorPort, validator), upOrExited(compliancePort, compliance)])).toEqual([200, 200]);
    const migrations = await catalog.query<{ name: string }>('select name from catalog_migrations order by id', [], 'shared_catalog');
    expect(migrations.map((row) => row.name)).toEqual([
      'CreateBackupRecord1767225600000',
      'CreateOutboxEvent1795651200000',
      'CreateLedgerEvent1795654800000',
      'AddBackupRecordParent1795737600000',
    ]);
    // compliance-reporting serves the objectives too.
    const metrics = await (await fetch(`http://127.0.0.1:${compliancePort}/metrics`)).text();
    expect(metrics).toMatch(/^rookery_rpo_objective_seconds\{tier="oltp"\} \d+$/m);
    expect(validator.stderr()).toBe('');
    expect(compliance.stderr()).toBe('');
  });

  it('an unreachable catalog is one line on stderr and exit status 1 (no stack from Nest)', async () => {
    const config = await writeConfig('unreachable-catalog.yaml', [`catalog: { url: 'postgres://postgres@127.0.0.1:1/catalog' }`]);
    const service = startService('oltp-backup', { config, port: await freePort() });
    running.push(service);
    expect(await service.exited).toBe(1);
    expect(service.stderr().trimEnd().split('\n')).toEqual([
      expect.stringMatching(
        /^oltp-backup: cannot open the catalog database postgres:\/\/postgres@127\.0\.0\.1:1\/catalog: connect ECONNREFUSED/,
      ),
    ]);
  });

  it('a bad --port is one line and exit status 1', async () => {
    const config = await writeConfig('bad-port.yaml', [`catalog: { url: 'sqlite://${join(work, 'bad-port.sqlite')}' }`]);
    const service = startService('oltp-backup', { config, args: ['--port', 'eighty'] });
    running.push(service);
    expect(await service.exited).toBe(1);
    expect(service.stderr().trimEnd().split('\n')).toEqual([expect.stringMatching(/^oltp-backup: --port: 'eighty' is not a port number/)]);
  });

  it('with service.grpc, serves gRPC beside HTTP: health SERVING and its rookery.v1 services through reflection', async () => {
    const [port, grpcPort] = [await freePort(), await freePort()];
    const config = await writeConfig('grpc.yaml', [
      `catalog: { url: 'sqlite://${join(work, 'grpc.sqlite')}' }`,
      'events: { allowInProcess: true }',
      // service.host (127.0.0.1) is the gRPC host too.
      `service: { host: 127.0.0.1, port: 1, grpc: { port: ${grpcPort} } }`,
    ]);
    const service = startService('compliance-reporting', { config, port });
    running.push(service);
    expect(await upOrExited(port, service)).toBe(200);
    const client = grpcTestClient(`127.0.0.1:${grpcPort}`);
    try {
      expect(await client.health()).toBe('SERVING');
      expect(await client.reflectedServices()).toEqual(expect.arrayContaining(['grpc.health.v1.Health', 'rookery.v1.ComplianceService']));
    } finally {
      client.close();
    }
    expect(service.stderr()).toBe('');
  });

  it('a gRPC TLS file that cannot be read is one line naming it and exit status 1', async () => {
    const missing = join(work, 'no-such-cert.pem');
    const config = await writeConfig('grpc-bad-tls.yaml', [
      `catalog: { url: 'sqlite://${join(work, 'grpc-bad-tls.sqlite')}' }`,
      `service: { host: 127.0.0.1, port: 1, grpc: { port: 0, tls: { certFile: '${missing}', keyFile: '${missing}' } } }`,
    ]);
    const service = startService('oltp-backup', { config, port: await freePort() });
    running.push(service);
    expect(await service.exited).toBe(1);
    expect(service.stderr().trimEnd().split('\n')).toEqual([`oltp-backup: service.grpc.tls.certFile: cannot read ${missing}: ENOENT`]);
  });
});
