import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { status } from '@grpc/grpc-js';
import type {
  BackupProgressUpdate__Output,
  BackupRecord__Output,
  HoldList__Output,
  Hold__Output,
  RestoreList__Output,
  RestoreProgressUpdate__Output,
  RestoreRecord__Output,
  RetentionPlanResult__Output,
} from '@rookery/contracts';
import { ServiceEventsService, configureServiceApp, grpcListenerOf } from '@rookery/service-kit';
import {
  AuthFixture,
  BackupServiceBed,
  CONTENT_DATABASE,
  GrpcTestClient,
  TableChecksums,
  TestCertificateAuthority,
  backupServiceConfig,
  diffTableChecksums,
  grpcAddress,
  grpcAuthChecks,
  grpcTestClient,
  makeAuthFixture,
  makeTestCertificateAuthority,
  recordAudits,
  seedContent,
  startBackupService,
  startBackupServiceBed,
  userTableChecksums,
} from '@rookery/testing';
import { ContentBackupModule } from './content-backup.module';

jest.setTimeout(300_000);

const configure = (service: INestApplication) => configureServiceApp(service, { title: 'content-backup (gRPC test)', description: 'test' });

describe('content-backup over gRPC', () => {
  let work: string;
  let auth: AuthFixture;
  let bed: BackupServiceBed;
  let source: TableChecksums;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rookery-content-grpc-'));
    auth = await makeAuthFixture(work);
    bed = await startBackupServiceBed({
      tier: 'content',
      database: CONTENT_DATABASE,
      seed: (url) => seedContent(url, { sizeMb: 4, seed: 11 }),
      module: ContentBackupModule.forRoot,
      configure,
      auth: auth.section,
      grpc: { port: 0 },
    });
    source = await userTableChecksums(bed.cluster.urlFor(CONTENT_DATABASE));
  }, 240_000);

  afterAll(async () => {
    await bed?.destroy();
    await rm(work, { recursive: true, force: true });
  });

  describe('authentication (every method of every service served)', () => {
    it.each(grpcAuthChecks({ listener: () => grpcListenerOf(bed.app), auth: () => auth, tier: 'content' }))('%s', (_name, run) => run());
  });

  describe('operations', () => {
    let client: GrpcTestClient;
    const operator = () => auth.tokens['operator-content'];

    beforeAll(() => {
      client = grpcTestClient(grpcAddress(grpcListenerOf(bed.app)));
    });
    afterAll(() => client?.close());

    it('backs up through StartBackup as a tier operator, watched with WatchBackup to completion, restored through StartRestore identical; audited with the principal', async () => {
      const audits = recordAudits(bed.app.get(ServiceEventsService));
      const started = await client.rpc<BackupRecord__Output>('BackupService', 'StartBackup', {}, operator());
      expect(started).toMatchObject({ code: status.OK });
      const running = started.messages[0];
      expect(running).toMatchObject({ tier: 'content', type: 'full', method: 'logical', requestedBy: 'operator-content' });

      const watched = await client.rpc<BackupProgressUpdate__Output>(
        'BackupService',
        'WatchBackup',
        { id: running.id },
        auth.tokens['auditor-content'],
      );
      expect(watched.code).toBe(status.OK);
      const last = watched.messages.at(-1);
      expect(last?.backup).toMatchObject({ id: running.id, status: 'completed' });
      expect(last?.progress).toBeNull();
      expect(watched.messages.slice(0, -1).every((update) => update.backup?.status === 'running')).toBe(true);
      const done = (await client.rpc<BackupRecord__Output>('BackupService', 'GetBackup', { id: running.id }, operator())).messages[0];
      expect(done).toMatchObject({ id: running.id, status: 'completed' });
      expect(done.artifacts.length).toBeGreaterThan(0);
      // A finished backup is watched as one update, and cannot be cancelled.
      expect((await client.rpc('BackupService', 'WatchBackup', { id: running.id }, operator())).messages).toHaveLength(1);
      expect(await client.rpc('BackupService', 'CancelBackup', { id: running.id }, operator())).toMatchObject({
        code: status.FAILED_PRECONDITION,
        rookeryCode: 'NOT_RUNNING',
      });

      const listed = await client.rpc<{ backups: BackupRecord__Output[] }>(
        'BackupService',
        'ListBackups',
        {},
        auth.tokens['auditor-content'],
      );
      expect(listed.messages[0].backups.map((record) => record.id)).toContain(running.id);

      const target = bed.cluster.urlFor('content_grpc_restored');
      const restore = await client.rpc<RestoreRecord__Output>(
        'RestoreService',
        'StartRestore',
        { backup: running.id, logical: { url: target } },
        operator(),
      );
      expect(restore).toMatchObject({
        code: status.OK,
        messages: [{ tier: 'content', kind: 'logical', backup: running.id, requestedBy: 'operator-content' }],
      });
      const restoreId = restore.messages[0].id;
      const restoreUpdates = await client.rpc<RestoreProgressUpdate__Output>(
        'RestoreService',
        'WatchRestore',
        { id: restoreId },
        operator(),
      );
      expect(restoreUpdates.code).toBe(status.OK);
      expect(restoreUpdates.messages.at(-1)?.restore).toMatchObject({ id: restoreId, status: 'completed', backupId: running.id });
      expect(diffTableChecksums(source, await userTableChecksums(target))).toEqual([]);
      const restores = await client.rpc<RestoreList__Output>('RestoreService', 'ListRestores', {}, auth.tokens['auditor']);
      expect(restores.messages[0].restores.map((record) => record.id)).toEqual([restoreId]);

      const calls = audits.filter((audit) => audit.action.startsWith('GRPC '));
      expect(calls.map(({ actor, role, action, outcome }) => ({ actor, role, action, outcome }))).toEqual([
        { actor: 'operator-content', role: 'operator', action: 'GRPC /rookery.v1.BackupService/StartBackup', outcome: 'succeeded' },
        { actor: 'operator-content', role: 'operator', action: 'GRPC /rookery.v1.BackupService/CancelBackup', outcome: 'failed' },
        { actor: 'operator-content', role: 'operator', action: 'GRPC /rookery.v1.RestoreService/StartRestore', outcome: 'succeeded' },
      ]);
    });

    it('an incremental through StartBackup names the backup it was taken against (parent); the full names none', async () => {
      const [full] = (await client.rpc<{ backups: BackupRecord__Output[] }>('BackupService', 'ListBackups', {}, operator())).messages[0]
        .backups;
      const started = await client.rpc<BackupRecord__Output>('BackupService', 'StartBackup', { type: 'incremental' }, operator());
      expect(started).toMatchObject({ code: status.OK, messages: [{ type: 'incremental', status: 'running' }] });
      const id = started.messages[0].id;
      const watched = await client.rpc<BackupProgressUpdate__Output>('BackupService', 'WatchBackup', { id }, operator());
      expect(watched.messages.at(-1)?.backup).toMatchObject({ id, status: 'completed', parent: full.id });

      const listed = await client.rpc<{ backups: BackupRecord__Output[] }>(
        'BackupService',
        'ListBackups',
        {},
        auth.tokens['auditor-content'],
      );
      expect(listed.messages[0].backups.map((record) => [record.id, record.type, record.parent])).toEqual([
        [full.id, 'full', undefined],
        [id, 'incremental', full.id],
      ]);
    });

    it('places, lists and releases a legal hold; the retention plan keeps the held backup and says why', async () => {
      const [backup] = (await client.rpc<{ backups: BackupRecord__Output[] }>('BackupService', 'ListBackups', {}, operator())).messages[0]
        .backups;
      const placed = await client.rpc<Hold__Output>('HoldService', 'PlaceHold', { backup: backup.id, reason: 'case 42' }, operator());
      expect(placed).toMatchObject({ code: status.OK, messages: [{ backupId: backup.id, tier: 'content', reason: 'case 42' }] });
      const holds = await client.rpc<HoldList__Output>('HoldService', 'ListHolds', {}, auth.tokens['auditor']);
      expect(holds.messages[0].holds.map((hold) => hold.backupId)).toEqual([backup.id]);

      const plan = (await client.rpc<RetentionPlanResult__Output>('RetentionService', 'PlanRetention', {}, operator())).messages[0];
      expect(plan).toMatchObject({ tier: 'content', dryRun: true });
      const kept = plan.plan?.keep?.backups.find((candidate) => candidate.id === backup.id);
      expect(kept?.reasons.join('; ')).toMatch(/hold/i);

      const released = await client.rpc<Hold__Output>('HoldService', 'ReleaseHold', { backup: backup.id }, operator());
      expect(released).toMatchObject({ code: status.OK, messages: [{ backupId: backup.id }] });
      expect((await client.rpc<HoldList__Output>('HoldService', 'ListHolds', {}, operator())).messages[0].holds).toEqual([]);
    });

    it('answers errors with their gRPC status, message and code, never a stack', async () => {
      const missing = await client.rpc('BackupService', 'GetBackup', { id: '20200101T000000Z-content' }, operator());
      expect(missing).toMatchObject({ code: status.NOT_FOUND, rookeryCode: 'BACKUP_NOT_FOUND' });
      expect(missing.details).toContain('20200101T000000Z-content');
      const badType = await client.rpc('BackupService', 'StartBackup', { type: 'weekly' }, operator());
      expect(badType).toMatchObject({ code: status.INVALID_ARGUMENT, rookeryCode: 'REQUEST_INVALID' });
      expect(badType.details).toContain("'weekly'");
      const noReason = await client.rpc('HoldService', 'PlaceHold', { backup: 'x', reason: ' ' }, operator());
      expect(noReason).toMatchObject({ code: status.INVALID_ARGUMENT });
      const restoreWithPassword = await client.rpc(
        'RestoreService',
        'StartRestore',
        { backup: 'latest', logical: { url: 'postgres://app:hunter2@127.0.0.1:5432/x' } },
        operator(),
      );
      expect(restoreWithPassword).toMatchObject({ code: status.INVALID_ARGUMENT, rookeryCode: 'CONFIG_INVALID' });
      expect(restoreWithPassword.details).not.toContain('hunter2');
      const physical = await client.rpc(
        'RestoreService',
        'StartRestore',
        { backup: 'latest', physical: { directory: '/tmp/x' } },
        operator(),
      );
      expect(physical).toMatchObject({ code: status.INVALID_ARGUMENT });
      const noTarget = await client.rpc('RestoreService', 'StartRestore', { backup: 'latest' }, operator());
      expect(noTarget).toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(noTarget.details).toContain('target');
      const unknownRestore = await client.rpc('RestoreService', 'GetRestore', { id: 'restore-unknown' }, operator());
      expect(unknownRestore).toMatchObject({ code: status.NOT_FOUND, rookeryCode: 'RESTORE_NOT_FOUND' });
      for (const outcome of [missing, badType, noReason, restoreWithPassword, physical, noTarget, unknownRestore])
        expect(outcome.details).not.toMatch(/\n\s+at /);
    });
  });

  describe('TLS', () => {
    let ca: TestCertificateAuthority;
    let apps: INestApplication[];

    beforeAll(() => {
      ca = makeTestCertificateAuthority(join(work, 'tls'));
      apps = [];
    });
    afterAll(async () => {
      for (const app of apps) await app.close();
    });

    const startWith = async (
      name: string,
      tls: { certFile: string; keyFile: string; clientCaFile?: string; requireClientCert?: boolean },
    ) => {
      const config = backupServiceConfig('content', {
        repository: `file://${join(work, `repository-${name}`)}`,
        pgUrl: bed.cluster.urlFor(CONTENT_DATABASE),
        catalogUrl: `sqlite://${join(work, `${name}.sqlite`)}`,
        auth: auth.section,
        grpc: { port: 0, tls },
      });
      const app = await startBackupService(ContentBackupModule.forRoot, config, configure);
      apps.push(app);
      return grpcAddress(grpcListenerOf(app));
    };

    it('serves over TLS with the configured certificate; a plaintext client gets nothing', async () => {
      const address = await startWith('tls', ca.issue('server', 'serverAuth'));
      const secure = grpcTestClient(address, { caFile: ca.caFile });
      const plain = grpcTestClient(address);
      try {
        expect(await secure.health()).toBe('SERVING');
        expect(await secure.rpc('BackupService', 'ListBackups', {}, auth.tokens['auditor'])).toMatchObject({ code: status.OK });
        expect(await secure.rpc('BackupService', 'ListBackups', {})).toMatchObject({ code: status.UNAUTHENTICATED });
        expect(await plain.rpc('BackupService', 'ListBackups', {}, auth.tokens['auditor'])).toMatchObject({ code: status.UNAVAILABLE });
      } finally {
        secure.close();
        plain.close();
      }
    });

    it('with requireClientCert, refuses a client without a certificate from the client CA and serves one with', async () => {
      const address = await startWith('mtls', {
        ...ca.issue('mtls-server', 'serverAuth'),
        clientCaFile: ca.caFile,
        requireClientCert: true,
      });
      const stranger = makeTestCertificateAuthority(join(work, 'tls-stranger'), 'another CA');
      const clients = {
        withCertificate: grpcTestClient(address, { caFile: ca.caFile, clientCertificate: ca.issue('client', 'clientAuth') }),
        without: grpcTestClient(address, { caFile: ca.caFile }),
        foreign: grpcTestClient(address, { caFile: ca.caFile, clientCertificate: stranger.issue('intruder', 'clientAuth') }),
      };
      try {
        expect(await clients.withCertificate.rpc('BackupService', 'ListBackups', {}, auth.tokens['auditor'])).toMatchObject({
          code: status.OK,
        });
        expect(await clients.without.rpc('BackupService', 'ListBackups', {}, auth.tokens['auditor'])).toMatchObject({
          code: status.UNAVAILABLE,
        });
        expect(await clients.without.health()).toMatch(/^error UNAVAILABLE/);
        expect(await clients.foreign.rpc('BackupService', 'ListBackups', {}, auth.tokens['auditor'])).toMatchObject({
          code: status.UNAVAILABLE,
        });
      } finally {
        for (const client of Object.values(clients)) client.close();
      }
    });
  });
});
