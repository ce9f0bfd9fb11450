import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import request from 'supertest';
import { BackupRecord } from '@rookery/catalog';
import { TierCompliance } from '@rookery/compliance';
import { lookupOsUser } from '@rookery/postgres';
import { repositoryLayout } from '@rookery/repository';
import { KafkaHandle, TestCluster, freeLoopbackPort, pollUntil, seedOltp, startCluster, startKafka } from '@rookery/testing';

jest.setTimeout(480_000);

/**
 * Issue 5 end to end, every part real and every service its own process (as deployed): the
 * oltp-backup service takes a backup → backup.completed on Kafka (through its outbox) → the
 * validator re-reads and checks it → validation.passed on Kafka → compliance-reporting shows the
 * tier compliant with the backup in its ledger exactly once, and a drill completes the evidence.
 * Then, with the validator stopped, a backup is damaged in the store; the restarted validator
 * picks the pending event up from Kafka, names the artifact, and compliance shows the violation.
 */
const root = resolve(__dirname, '..', '..', '..', '..');
const SERVICES = ['compliance-reporting', 'validator', 'oltp-backup'];

interface Service {
  name: string;
  url: string;
  process: ChildProcess;
  log: string[];
}

describe('backup → Kafka → validator → compliance (end to end, separate processes)', () => {
  let kafka: KafkaHandle;
  let cluster: TestCluster;
  let work: string;
  const services = new Map<string, Service>();

  async function startService(name: string): Promise<Service> {
    const port = await freeLoopbackPort();
    const config = join(work, `${name}.yaml`);
    await writeFile(
      config,
      [
        `repositories: ["file://${join(work, 'repository')}"]`,
        `tiers: { oltp: { pgUrl: "${cluster.url}" } }`,
        `catalog: { url: "sqlite://${join(work, `${name}.sqlite`)}" }`,
        `events: { brokers: ["${kafka.brokers[0]}"], clientId: "${name}", partitions: 2,`,
        // Each service signs its events with its own key and accepts the other services' (issue 16).
        `  signing: { keyId: "${name}", keyFile: "${eventKeyFile(name)}" },`,
        `  verifyKeys: { ${SERVICES.map((other) => `"${other}": { keyFile: "${eventKeyFile(other)}" }`).join(', ')} } }`,
        `service: { host: 127.0.0.1, port: ${port} }`,
        'auth: { mode: none }',
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['-r', './tools/runtime/register-aliases.cjs', `dist/apps/${name}/src/main.js`], {
      cwd: root,
      env: { ...process.env, ROOKERY_CONFIG: config, ROOKERY_KAFKA_BROKERS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const service: Service = { name, url: `http://127.0.0.1:${port}`, process: child, log: [] };
    const keep = (chunk: Buffer) => service.log.push(chunk.toString());
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    services.set(name, service);
    await pollUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${service.log.join('').slice(-2000)}`);
        return request(service.url)
          .get('/health')
          .then(
            (response) => response.status,
            () => 0,
          );
      },
      (status) => status === 200,
      { what: `${name} answering /health`, intervalMs: 250 },
    );
    return service;
  }

  async function stopService(name: string): Promise<void> {
    const service = services.get(name);
    if (!service || service.process.exitCode !== null) return;
    const exited = new Promise((resolve) => service.process.once('exit', resolve));
    service.process.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    if (service.process.exitCode === null) service.process.kill('SIGKILL');
    services.delete(name);
  }

  const eventKeyFile = (name: string) => join(work, `${name}.event-key`);

  const url = (name: string) => (services.get(name) as Service).url;

  async function backup(): Promise<BackupRecord> {
    const started = (await request(url('oltp-backup')).post('/backups').expect(202)).body as BackupRecord;
    return pollUntil(
      async () => (await request(url('oltp-backup')).get(`/backups/${started.id}`).expect(200)).body as BackupRecord,
      (record) => record.status !== 'running',
      { what: `backup ${started.id}`, timeoutMs: 120_000 },
    );
  }

  const oltpCompliance = async () =>
    (await request(url('compliance-reporting')).get('/compliance/oltp').expect(200)).body as TierCompliance;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-e2e-'));
    await chmod(work, 0o711);
    kafka = await startKafka();
    // The oltp tier archives its WAL with rookery (archive_command runs as the server's account,
    // which must be able to write the repository's oltp/wal folder).
    const repository = join(work, 'repository');
    const postgres = lookupOsUser('postgres');
    await mkdir(join(repository, 'oltp', 'wal'), { recursive: true });
    for (const dir of [repository, join(repository, 'oltp'), join(repository, 'oltp', 'wal')]) await chown(dir, postgres.uid, postgres.gid);
    cluster = await startCluster({
      name: 'e2e',
      settings: {
        archive_mode: 'on',
        archive_command: `${process.execPath} ${join(root, 'bin', 'rookery.js')} wal-push %p --tier oltp --repo file://${repository}`,
      },
    });
    await seedOltp(cluster.url, { sizeMb: 6 });
    for (const name of SERVICES) await writeFile(eventKeyFile(name), randomBytes(32).toString('hex'), { mode: 0o600 });
    await Promise.all(SERVICES.map((name) => startService(name)));
  }, 300_000);

  afterAll(async () => {
    for (const name of [...services.keys()]) await stopService(name);
    await kafka?.stop();
    await cluster?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  it('a backup is validated and shown compliant, once in the ledger; a drill completes the evidence', async () => {
    const record = await backup();
    expect(record.status).toBe('completed');

    const view = await pollUntil(oltpCompliance, (tier) => tier.lastGoodFull?.backupId === record.id && tier.lastGoodFull.validated, {
      what: 'compliance showing the validated backup',
      timeoutMs: 180_000,
      intervalMs: 500,
    });
    expect(view.validation).toEqual({ completed: 1, validated: 1, coverage: 1, openFailures: [] });
    expect(view.rpoMet).toBe(true);
    // Exactly once in the ledger, however often the outbox relay or the consumers delivered it.
    expect(view.series.backups.filter((point) => point.backupId === record.id)).toHaveLength(1);

    const drill = await request(url('validator')).post('/drills').send({ tier: 'oltp' });
    expect(drill.status).toBeLessThan(300);
    expect(drill.body).toMatchObject({ tier: 'oltp', ok: true, withinRto: true });
    const compliant = await pollUntil(oltpCompliance, (tier) => tier.lastDrill !== null, {
      what: 'the drill in the compliance view',
      intervalMs: 500,
    });
    expect(compliant.lastDrill).toMatchObject({ ok: true, withinRto: true });
    expect(compliant.lint.filter((finding) => finding.severity !== 'info')).toEqual([]);
    expect(compliant.status).toBe('ok');

    // WAL archived by archive_command after the backup moves the tier's recovery point (the
    // oltp-backup service reports the archive's new files as batched wal.archived events).
    await cluster.query('create table after_backup as select 1 as id');
    await cluster.query('select pg_switch_wal()');
    const moved = await pollUntil(oltpCompliance, (tier) => tier.recoveryPoint?.source === 'wal', {
      what: 'the recovery point moved by archived WAL',
      timeoutMs: 120_000,
      intervalMs: 1_000,
    });
    expect(Date.parse(moved.recoveryPoint?.at ?? '')).toBeGreaterThan(Date.parse(record.finishedAt ?? ''));
  });

  it('a byte flipped in a stored artifact: the restarted validator names it and compliance shows the violation', async () => {
    await stopService('validator');
    const record = await backup();
    expect(record.status).toBe('completed');
    const artifact = record.artifacts[0];
    const path = join(
      work,
      'repository',
      ...repositoryLayout.artifactKey('oltp', record.id, new Date(record.startedAt), artifact.name).split('/'),
    );
    const handle = await open(path, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, 4096);
      byte[0] ^= 0xff;
      await handle.write(byte, 0, 1, 4096);
    } finally {
      await handle.close();
    }
    // The backup.completed event waited in Kafka for the validator's consumer group.
    await startService('validator');
    const view = await pollUntil(oltpCompliance, (tier) => tier.validation.openFailures.includes(record.id), {
      what: 'compliance showing the failed validation',
      timeoutMs: 180_000,
      intervalMs: 500,
    });
    expect(view.status).toBe('failing');
    expect(view.lastGoodFull?.backupId).not.toBe(record.id);
    const validations = JSON.stringify((await request(url('validator')).get('/validations').expect(200)).body);
    expect(validations).toContain(record.id);
    expect(validations).toContain(artifact.name);
  });
});
