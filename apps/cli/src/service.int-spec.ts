import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { RookeryEngine } from '@rookery/engine';
import { configureServiceApp } from '@rookery/service-kit';
import {
  AuthFixture,
  ROOKERY_BIN,
  TableChecksums,
  TestCluster,
  WORKSPACE_ROOT,
  assertCliBuilt,
  backupServiceConfig,
  freeLoopbackPort,
  makeAuthFixture,
  s3TestRepository,
  seedOltp,
  startBackupService,
  startCluster,
  tableChecksums,
} from '@rookery/testing';
// eslint-disable-next-line @nx/enforce-module-boundaries -- the CLI is tested against the real oltp-backup service, run in-process
import { OltpBackupModule } from '../../oltp-backup/src/app/oltp-backup.module';

jest.setTimeout(600_000);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** The spawned process's argv, as `ps` shows it. */
  args: string[];
}

/**
 * `rookery …args` run to its end without blocking this process (the service it calls runs here),
 * with `env` added to this process's environment (ROOKERY_TOKEN and ROOKERY_SERVICE removed first).
 */
function rookery(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const base = { ...process.env };
  delete base['ROOKERY_TOKEN'];
  delete base['ROOKERY_SERVICE'];
  const child = spawn(process.execPath, [ROOKERY_BIN, ...args], { cwd: WORKSPACE_ROOT, env: { ...base, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr, args: child.spawnargs }));
  });
}

/**
 * `rookery --service` against the oltp-backup service (in this process, listening on a loopback
 * port, authentication required, its repository in the S3 test server): a backup and a restore
 * through the service's REST API with an operator token that never appears in argv, the restored
 * data compared with the source; a wrong token is refused.
 */
describe('rookery --service URL (the CLI through the oltp-backup service)', () => {
  let work: string;
  let cluster: TestCluster;
  let auth: AuthFixture;
  let app: INestApplication;
  let service: string;
  let tokenFile: string;
  let token: string;
  let restoreRoot: string;
  let source: TableChecksums;
  let backupId: string;

  beforeAll(async () => {
    assertCliBuilt();
    work = await mkdtemp(join(tmpdir(), 'rookery-cli-service-'));
    // Restored servers run as the postgres account: it must reach their directories.
    await chmod(work, 0o711);
    restoreRoot = join(work, 'restores');
    await mkdir(restoreRoot, { mode: 0o711 });
    auth = await makeAuthFixture(work);
    cluster = await startCluster({ name: 'cli-service' });
    await seedOltp(cluster.url, { sizeMb: 8 });
    source = await tableChecksums(cluster.url);
    const config = backupServiceConfig('oltp', {
      repository: await s3TestRepository('cli-service'),
      pgUrl: cluster.url,
      catalogUrl: `sqlite://${join(work, 'catalog.sqlite')}`,
      auth: auth.section,
      restoresRoot: restoreRoot,
    });
    app = await startBackupService(OltpBackupModule.forRoot, config, (created) =>
      configureServiceApp(created, { title: 'oltp-backup (cli test)', description: 'test' }),
    );
    await app.listen(0, '127.0.0.1');
    service = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    token = auth.tokens['operator-oltp'];
    tokenFile = join(work, 'operator.token');
    await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    try {
      await app?.close();
    } finally {
      await cluster?.destroy();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('backs up through the service with the token from --token-file: follows the backup to completed, exit 0; the token is in no argv', async () => {
    const run = await rookery(['--service', service, '--token-file', tokenFile, 'backup', '--tier', 'oltp']);
    expect(run.stderr).toMatch(new RegExp(`^rookery: backup (\\S+) started on ${service}\\n`));
    expect(run.status).toBe(0);
    backupId = /backup (\S+) completed/.exec(run.stdout)?.[1] as string;
    expect(run.stdout).toMatch(/tier oltp, full physical, lsn [0-9A-F]+\/[0-9A-F]+\.\.[0-9A-F]+\/[0-9A-F]+/);
    expect(run.args.join(' ')).not.toContain(token);
    expect(run.stdout + run.stderr).not.toContain(token);

    // The service's own record of it, read with the token from ROOKERY_TOKEN this time.
    const listed = await rookery(['--service', service, 'info', '--tier', 'oltp', '--json'], { ROOKERY_TOKEN: token });
    expect(listed.stderr).toBe('');
    expect(listed.status).toBe(0);
    expect(listed.args.join(' ')).not.toContain(token);
    const { backups } = JSON.parse(listed.stdout) as { backups: { id: string; status: string }[] };
    expect(backups.map(({ id, status }) => ({ id, status }))).toEqual([{ id: backupId, status: 'completed' }]);
  });

  it("restores through the service into a directory under its restores.directoryRoot: exit 0, and the restored server holds the source's data", async () => {
    const directory = join(restoreRoot, 'restored');
    const run = await rookery([
      '--service',
      service,
      '--token-file',
      tokenFile,
      'restore',
      '--tier',
      'oltp',
      '--backup',
      backupId,
      '--to',
      directory,
    ]);
    expect(run.stderr).toMatch(new RegExp(`^rookery: restore (\\S+) started on ${service}\\n`));
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^restored backup ${backupId} \\(.+\\) into ${directory} on the service's host`));
    const engine = app.get(RookeryEngine);
    const port = await engine.startRestored(directory, { port: await freeLoopbackPort() });
    try {
      expect(await tableChecksums(`postgres://postgres@127.0.0.1:${port}/postgres`)).toEqual(source);
    } finally {
      await engine.stopRestored(directory);
    }
  });

  it("a restore the service refuses or fails exits 1 with the service's message", async () => {
    const outside = join(work, 'outside');
    const run = await rookery(['--service', service, '--token-file', tokenFile, 'restore', '--tier', 'oltp', '--to', outside]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('is not under restores.directoryRoot');
  });

  it('places, lists and releases a legal hold, and prints the retention plan (expire --dry-run); expire itself is refused', async () => {
    const base = ['--service', service, '--token-file', tokenFile];
    const placed = await rookery([...base, 'hold', '--tier', 'oltp', '--backup', backupId, '--reason', 'case 9']);
    expect(placed.stderr).toBe('');
    expect(placed.stdout).toMatch(new RegExp(`^legal hold placed on oltp backup ${backupId}: case 9 \\(by operator-oltp`));
    const listed = await rookery([...base, 'hold', '--tier', 'oltp', '--list', '--json']);
    expect((JSON.parse(listed.stdout) as { holds: { backupId: string }[] }).holds.map((hold) => hold.backupId)).toEqual([backupId]);
    const plan = await rookery([...base, 'expire', '--tier', 'oltp', '--dry-run']);
    expect(plan.stderr).toBe('');
    expect(plan.status).toBe(0);
    expect(plan.stdout).toMatch(/^expire of tier oltp as of .+ \(dry run: nothing deleted\): 0 backups/);
    expect(plan.stdout).toMatch(new RegExp(`^keep    ${backupId}  full  .*legal hold`, 'm'));
    const released = await rookery([...base, 'hold', '--tier', 'oltp', '--backup', backupId, '--release']);
    expect(released.status).toBe(0);
    expect(released.stdout).toContain(`legal hold released on oltp backup ${backupId}`);
    const refused = await rookery([...base, 'expire', '--tier', 'oltp']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('expire deletes backups and is not offered through a service');
  });

  it('refuses a wrong token: exit 1, naming the 401, starting nothing', async () => {
    const wrongFile = join(work, 'wrong.token');
    await writeFile(wrongFile, `${token.slice(0, -4)}${token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}\n`, { mode: 0o600 });
    const run = await rookery(['--service', service, '--token-file', wrongFile, 'backup', '--tier', 'oltp']);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^rookery: the service at ${service} refused the token \\(401 unauthenticated\\): .+\\n$`));
    const auditorFile = join(work, 'auditor.token');
    await writeFile(auditorFile, `${auth.tokens['auditor']}\n`, { mode: 0o600 });
    const auditor = await rookery(['--service', service, '--token-file', auditorFile, 'backup', '--tier', 'oltp']);
    expect(auditor.status).toBe(1);
    expect(auditor.stderr).toMatch(new RegExp(`^rookery: the service at ${service} refused the call \\(403 forbidden\\): .+\\n$`));
    const listed = await rookery(['--service', service, '--token-file', tokenFile, 'info', '--json']);
    expect((JSON.parse(listed.stdout) as { backups: unknown[] }).backups).toHaveLength(1);
  });
});
