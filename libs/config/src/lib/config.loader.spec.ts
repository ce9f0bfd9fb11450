import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, DEFAULT_POLICIES, UnknownTierError } from '@rookery/core';
import { buildConfig, loadConfig } from './config.loader';
import { tierConfig } from './rookery-config';

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('buildConfig', () => {
  it('falls back to the built-in policies of DESIGN §2', () => {
    const config = buildConfig({}, 'built-in defaults');
    expect(config.tiers.oltp.policy).toEqual(DEFAULT_POLICIES.oltp);
    expect(config.tiers.queue.policy.rpoSeconds).toBe(0);
    expect(config.compression.codec).toBe('zstd');
    expect(config.encryptionKey).toBeNull();
  });

  it('merges policy overrides per tier and keeps the other defaults', () => {
    const config = buildConfig({ tiers: { oltp: { policy: { retentionDays: 30 } } } }, 'test.yaml');
    expect(config.tiers.oltp.policy.retentionDays).toBe(30);
    expect(config.tiers.oltp.policy.storageClass).toBe('STANDARD_IA');
  });

  it('takes physical.incremental.deltaIndex (absent: delta page indexes), merged key by key', () => {
    expect(DEFAULT_POLICIES.oltp.physical?.incremental?.deltaIndex).toBeUndefined();
    const off = buildConfig({ tiers: { oltp: { policy: { physical: { incremental: { deltaIndex: false } } } } } }, 'test.yaml');
    expect(off.tiers.oltp.policy.physical?.incremental).toEqual({ fullEveryDays: 1, maxChainFraction: 0.5, deltaIndex: false });
    expect(
      configError(() => buildConfig({ tiers: { oltp: { policy: { physical: { incremental: { deltaIndex: 'no' } } } } } }, 'bad.yaml'))
        .message,
    ).toContain('tiers.oltp.policy.physical.incremental.deltaIndex');
  });

  it('keeps the policy-lint findings an operator acknowledged, with the reason', () => {
    const acknowledge = [{ rule: 'rpo-schedule', reason: '4-hourly content incrementals accepted' }];
    expect(buildConfig({ tiers: { content: { policy: { acknowledge } } } }, 'x').tiers.content.policy.acknowledge).toEqual(acknowledge);
  });

  it.each([
    [{ repositories: ['ftp://x'] }, 'repositories.0'],
    [{ tiers: { oltp: { policy: { retentionDays: 'ninety' } } } }, 'tiers.oltp.policy.retentionDays'],
    [{ tiers: { oltpp: {} } }, 'oltpp: unknown key'],
    [{ compresion: {} }, 'compresion: unknown key'],
    [{ compression: { codec: 'brotli' } }, 'compression.codec'],
    [{ tiers: { oltp: { policy: { fullSchedule: 'daily' } } } }, 'tiers.oltp.policy.fullSchedule'],
    [
      { tiers: { content: { policy: { acknowledge: [{ rule: 'rpo-schedul', reason: 'typo' }] } } } },
      'tiers.content.policy.acknowledge.0.rule',
    ],
    [
      { tiers: { content: { policy: { acknowledge: [{ rule: 'rpo-schedule', reason: '' }] } } } },
      'tiers.content.policy.acknowledge.0.reason',
    ],
  ])('names the bad key in %j', (document, key) => {
    expect(configError(() => buildConfig(document, 'bad.yaml')).message).toContain(key);
  });

  it('reads the WAL archiving section, defaulting to one segment per call', () => {
    expect(buildConfig({}, 'x').wal).toEqual({
      archiveAsync: false,
      spoolPath: null,
      processMax: 2,
      batchMax: 32,
      archiveTimeoutSeconds: 60,
      archiverIdleSeconds: 30,
      prefetchSegments: 32,
      reuseBuffers: true,
    });
    const config = buildConfig({ wal: { archiveAsync: true, spoolPath: 'spool', processMax: 4 } }, 'x', {}, {}, '/etc/rookery');
    expect(config.wal).toEqual({
      archiveAsync: true,
      spoolPath: '/etc/rookery/spool',
      processMax: 4,
      batchMax: 32,
      archiveTimeoutSeconds: 60,
      archiverIdleSeconds: 30,
      prefetchSegments: 32,
      reuseBuffers: true,
    });
    // The fast paths' switches: restore's prefetch (0: a plain wal-get per file) and the backup's slab reuse.
    expect(buildConfig({ wal: { prefetchSegments: 0 } }, 'x').wal.prefetchSegments).toBe(0);
    expect(buildConfig({}, 'x').backup).toEqual({ reuseBuffers: true });
    expect(buildConfig({ backup: { reuseBuffers: false } }, 'x').backup).toEqual({ reuseBuffers: false });
    // wal-get's zstd decoding into one reused buffer.
    expect(buildConfig({ wal: { reuseBuffers: false } }, 'x').wal.reuseBuffers).toBe(false);
  });

  it('reads repository.owner (the postgres account by default) and repository.group (none by default)', () => {
    expect(buildConfig({}, 'x').repository).toEqual({ owner: 'postgres', group: null });
    expect(buildConfig({ repository: { owner: 'backup', group: 'rookery' } }, 'x').repository).toEqual({
      owner: 'backup',
      group: 'rookery',
    });
    expect(configError(() => buildConfig({ repository: { owner: 'no such/account' } }, 'x')).message).toContain('repository.owner');
  });

  it('reads restores.directoryRoot (absent: null, physical restores through a service refused); a relative root is refused', () => {
    expect(buildConfig({}, 'x').restores).toEqual({ directoryRoot: null, logicalTargetHosts: null });
    expect(buildConfig({ restores: { directoryRoot: '/srv/restores/' } }, 'x').restores).toMatchObject({ directoryRoot: '/srv/restores/' });
    expect(buildConfig({ restores: { logicalTargetHosts: ['db.internal', 'copy:6432'] } }, 'x').restores.logicalTargetHosts).toEqual([
      'db.internal',
      'copy:6432',
    ]);
    expect(configError(() => buildConfig({ restores: { logicalTargetHosts: ['postgres://db'] } }, 'x')).message).toContain(
      'restores.logicalTargetHosts',
    );
    expect(buildConfig({ restores: { directoryRoot: '/srv//restores/../restores' } }, 'x').restores.directoryRoot).toBe('/srv/restores');
    expect(configError(() => buildConfig({ restores: { directoryRoot: 'restores' } }, 'x')).message).toContain('restores.directoryRoot');
  });

  it('reads service.grpc (absent: no gRPC listener): host defaults to service.host, TLS files resolved from the config directory', () => {
    expect(buildConfig({}, 'x').service.grpc).toBeNull();
    expect(buildConfig({ service: { host: '0.0.0.0', grpc: { port: 9090 } } }, 'x').service.grpc).toEqual({
      host: '0.0.0.0',
      port: 9090,
      tls: null,
    });
    const tls = { certFile: 'tls/server.crt', keyFile: '/secrets/server.key', clientCaFile: 'tls/clients.pem', requireClientCert: true };
    expect(buildConfig({ service: { grpc: { port: 9090, host: '::', tls } } }, 'x', {}, {}, '/etc/rookery').service.grpc).toEqual({
      host: '::',
      port: 9090,
      tls: {
        certFile: '/etc/rookery/tls/server.crt',
        keyFile: '/secrets/server.key',
        clientCaFile: '/etc/rookery/tls/clients.pem',
        requireClientCert: true,
      },
    });
    const withoutCa = { service: { grpc: { port: 9090, tls: { certFile: 'a', keyFile: 'b', requireClientCert: true } } } };
    expect(configError(() => buildConfig(withoutCa, 'x')).message).toContain('requireClientCert needs clientCaFile');
    expect(configError(() => buildConfig({ service: { grpc: { port: 9090, tls: { certFile: 'a' } } } }, 'x')).message).toContain('keyFile');
    expect(configError(() => buildConfig({ service: { grpc: { host: 'h' } } }, 'x')).message).toContain('service.grpc.port');
  });

  it('reads postgres.idleTimeoutSeconds, 600 s by default (the start checkpoint is silent)', () => {
    expect(buildConfig({}, 'x').postgres).toEqual({ binDir: undefined, idleTimeoutSeconds: 600 });
    expect(buildConfig({ postgres: { idleTimeoutSeconds: 5 } }, 'x').postgres.idleTimeoutSeconds).toBe(5);
    expect(configError(() => buildConfig({ postgres: { idleTimeoutSeconds: 0 } }, 'x')).message).toContain('postgres.idleTimeoutSeconds');
  });

  it.each([
    [{ wal: { archiveAsync: true } }, 'wal.spoolPath: archiveAsync needs spoolPath'],
    [{ wal: { archiveAsync: true, spoolPath: '/s', procesMax: 2 } }, 'wal.procesMax: unknown key'],
    [{ wal: { prefetchSegments: -1 } }, 'wal.prefetchSegments: Number must be greater than or equal to 0'],
    [{ backup: { reuseBuffer: false } }, 'backup.reuseBuffer: unknown key'],
    [{ wal: { processMax: 0 } }, 'wal.processMax'],
  ])('refuses the WAL section %j', (document, message) => {
    expect(configError(() => buildConfig(document, 'bad.yaml')).message).toContain(message);
  });

  it('reports every bad key at once', () => {
    const error = configError(() => buildConfig({ repositories: ['ftp://x'], compression: { level: 99 } }, 'bad.yaml'));
    expect(error.issues.length).toBe(2);
  });

  it.each([
    [{}, {}, 7000],
    [{}, { PORT: '8081' }, 8081],
    [{ port: 9090 }, { PORT: '8081' }, 9090],
  ])('service.port 7000, --port %j and env %j → %i', (overrides, env, port) => {
    expect(buildConfig({ service: { port: 7000 } }, 'f.yaml', overrides, env).service.port).toBe(port);
  });

  it('refuses a PORT that is not a port number, naming it', () => {
    expect(configError(() => buildConfig({}, 'f.yaml', {}, { PORT: '80a' })).issues).toEqual([
      "PORT: '80a' is not a port number (0-65535)",
    ]);
  });

  it('refuses the in-process bus to consumers unless events.allowInProcess', () => {
    expect(buildConfig({}, 'f.yaml').events.allowInProcess).toBe(false);
    expect(buildConfig({ events: { allowInProcess: true } }, 'f.yaml').events.allowInProcess).toBe(true);
  });

  it('lets --repo and --pg-url override the file', () => {
    const config = buildConfig({ repositories: ['file:///a'] }, 'f.yaml', {
      repositories: ['file:///b', 's3://bucket/p'],
      pgUrl: 'postgres://u:pw@h/db',
      tier: 'oltp',
    });
    expect(config.repositories).toEqual(['file:///b', 's3://bucket/p']);
    expect(config.tiers.oltp.pgUrl?.reveal()).toBe('postgres://u:pw@h/db');
    expect(JSON.stringify(config)).not.toContain('pw');
  });

  it('reads the encryption key from the environment without exposing it', () => {
    const config = buildConfig({}, 'x', {}, { ROOKERY_ENCRYPTION_KEY: 'k'.repeat(64) });
    expect(config.encryptionKey?.reveal().toString()).toBe('k'.repeat(64));
    expect(JSON.stringify(config)).not.toContain('kkkk');
  });

  it.each([
    ['no key', {}, {}, false],
    ['a key', {}, { ROOKERY_ENCRYPTION_KEY: 'k'.repeat(64) }, true],
    ['a key and required: false', { encryption: { required: false } }, { ROOKERY_ENCRYPTION_KEY: 'k'.repeat(64) }, false],
  ])('requires encryption on read with %s: %s', (_name, file, env, required) => {
    expect(buildConfig(file, 'x', {}, env).encryptionRequired).toBe(required);
  });

  it('refuses encryption.required without a key', () => {
    expect(configError(() => buildConfig({ encryption: { required: true } }, 'x', {}, {})).message).toContain(
      'encryption.required: true needs an encryption key',
    );
  });

  it('refuses a keyEnv that is not set', () => {
    expect(configError(() => buildConfig({ encryption: { keyEnv: 'MY_KEY' } }, 'x', {}, {})).message).toContain('MY_KEY is not set');
  });

  it('returns a frozen object', () => {
    const config = buildConfig({}, 'x');
    expect(Object.isFrozen(config.tiers.oltp.policy)).toBe(true);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rookery-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads --config, validating the YAML', () => {
    const path = join(dir, 'good.yaml');
    writeFileSync(path, 'repositories:\n  - file:///tmp/repo\ncompression:\n  codec: gzip\n  level: 6\n');
    const config = loadConfig({ configFile: path }, {}, dir);
    expect(config.repositories).toEqual(['file:///tmp/repo']);
    expect(config.compression).toMatchObject({ codec: 'gzip', level: 6 });
    expect(config.source).toBe(path);
  });

  it('says which line of a malformed YAML file is wrong', () => {
    const path = join(dir, 'broken.yaml');
    writeFileSync(path, 'repositories:\n  - file:///a\n bad: [\n');
    expect(configError(() => loadConfig({ configFile: path }, {}, dir)).message).toMatch(/not valid YAML at line \d/);
  });

  it('says when the config file is missing', () => {
    expect(configError(() => loadConfig({ configFile: join(dir, 'nope.yaml') }, {}, dir)).message).toContain('cannot read config file');
  });

  it('uses $ROOKERY_CONFIG when no --config is given', () => {
    const path = join(dir, 'env.yaml');
    writeFileSync(path, 'repositories: [ "file:///env" ]\n');
    expect(loadConfig({}, { ROOKERY_CONFIG: path }, dir).repositories).toEqual(['file:///env']);
  });
});

describe('tierConfig', () => {
  it('refuses an unknown tier with the list of known ones', () => {
    const config = buildConfig({}, 'x');
    expect(() => tierConfig(config, 'billing')).toThrow(UnknownTierError);
    expect(() => tierConfig(config, 'billing')).toThrow("unknown tier 'billing'");
  });
});

describe('walStream', () => {
  it('defaults to a blocking, unmanaged stream of the queue tier', () => {
    expect(buildConfig({}, 'x', {}, {}, '/srv').walStream).toEqual({
      tier: 'queue',
      slot: 'rookery_queue_wal',
      applicationName: 'rookery_queue_wal',
      spoolDir: '/srv/queue-wal-spool',
      onDown: 'blocking',
      manageSynchronousStandbyNames: false,
      restartBackoffMs: { initial: 1_000, max: 30_000 },
    });
  });

  it('resolves the spool directory and manages the setting when degrading', () => {
    const stream = buildConfig({ walStream: { spoolDir: 'spool', onDown: 'degrade' } }, 'x', {}, {}, '/srv').walStream;
    expect(stream).toMatchObject({ spoolDir: '/srv/spool', onDown: 'degrade', manageSynchronousStandbyNames: true });
  });

  it.each([
    [
      { walStream: { onDown: 'degrade', manageSynchronousStandbyNames: false } },
      'walStream.onDown: degrade needs manageSynchronousStandbyNames',
    ],
    [{ walStream: { onDown: 'sometimes' } }, 'walStream.onDown'],
    [{ walStream: { slot: 'Bad-Slot' } }, 'walStream.slot'],
    [{ walStream: { applicationName: 'a b' } }, 'walStream.applicationName'],
    [{ walStream: { spool: '/x' } }, 'walStream.spool: unknown key'],
  ])('refuses %j', (document, message) => {
    expect(configError(() => buildConfig(document, 'bad.yaml')).message).toContain(message);
  });
});

describe('events', () => {
  it('defaults to no brokers (the in-process bus) and takes brokers from the file or ROOKERY_KAFKA_BROKERS', () => {
    expect(buildConfig({}, 'x').events).toEqual({
      brokers: [],
      clientId: 'rookery',
      partitions: 4,
      replicationFactor: null,
      allowInProcess: false,
      tls: null,
      sasl: null,
      signing: null,
      verifyKeys: [],
      allowUnsigned: false,
    });
    expect(buildConfig({ events: { brokers: ['kafka-1:9092'], clientId: 'oltp', replicationFactor: 3 } }, 'x').events).toEqual({
      brokers: ['kafka-1:9092'],
      clientId: 'oltp',
      partitions: 4,
      replicationFactor: 3,
      allowInProcess: false,
      tls: null,
      sasl: null,
      signing: null,
      verifyKeys: [],
      allowUnsigned: false,
    });
    expect(buildConfig({ events: { brokers: ['a:1'] } }, 'x', {}, { ROOKERY_KAFKA_BROKERS: 'k1:9092, k2:9092' }).events.brokers).toEqual([
      'k1:9092',
      'k2:9092',
    ]);
  });

  it.each([
    [{ events: { brokers: ['kafka'] } }, 'events.brokers.0: must be host:port'],
    [{ events: { brokers: [] } }, 'events.brokers'],
    [{ events: { broker: ['k:1'] } }, 'events.broker: unknown key'],
  ])('refuses %j', (file, message) => {
    expect(() => buildConfig(file as never, 'x')).toThrow(message);
  });

  describe('security: tls, sasl, signing keys', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rookery-events-config-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, content: string, mode = 0o600) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      chmodSync(path, mode);
      return path;
    };
    const key = 'a'.repeat(64);

    it('reads TLS files, the SASL password and the keys from files and variables, keeping secrets redacted', () => {
      const events = buildConfig(
        {
          events: {
            brokers: ['kafka:9093'],
            tls: {
              caFile: file('ca.pem', 'CA PEM', 0o644),
              certFile: file('client.pem', 'CERT PEM', 0o644),
              keyFile: file('client.key', 'KEY PEM'),
            },
            sasl: { mechanism: 'scram-sha-512', username: 'rookery', passwordFile: file('kafka-password', 's3cret\n') },
            signing: { keyId: 'oltp-backup', keyFile: file('oltp-backup.key', `${key}\n`) },
            verifyKeys: {
              'oltp-backup': { keyFile: file('oltp-backup.key', key), types: ['dev.rookery.backup.*', 'dev.rookery.wal.archived'] },
              validator: { keyEnv: 'VALIDATOR_EVENT_KEY' },
            },
          },
        },
        'x',
        {},
        { VALIDATOR_EVENT_KEY: 'b'.repeat(64) },
        dir,
      ).events;
      expect(events.tls).toMatchObject({ ca: ['CA PEM'], cert: 'CERT PEM', rejectUnauthorized: true });
      expect(events.tls?.key?.reveal()).toBe('KEY PEM');
      expect(events.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'rookery' });
      expect(events.sasl?.password.reveal()).toBe('s3cret');
      expect(events.signing?.keyId).toBe('oltp-backup');
      expect(events.signing?.key.reveal().toString()).toBe(key);
      expect(events.verifyKeys.map((entry) => [entry.keyId, entry.key.reveal().toString(), entry.types])).toEqual([
        ['oltp-backup', key, ['dev.rookery.backup.*', 'dev.rookery.wal.archived']],
        ['validator', 'b'.repeat(64), null],
      ]);
      const printed = `${JSON.stringify(events)} ${inspect(events, { depth: 5 })}`;
      for (const secret of ['KEY PEM', 's3cret', key, 'b'.repeat(64)]) expect(printed).not.toContain(secret);
    });

    it.each([
      [{ sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'inline' } }, 'events.sasl.password: unknown key'],
      [{ sasl: { mechanism: 'scram-sha-512', username: 'u' } }, 'events.sasl: set passwordFile or passwordEnv'],
      [{ sasl: { mechanism: 'gssapi', username: 'u', passwordEnv: 'P' } }, 'events.sasl.mechanism'],
      [{ tls: { certFile: '/c.pem' } }, 'events.tls: certFile and keyFile go together'],
      [{ signing: { keyId: 'Oltp Backup', keyEnv: 'K' } }, 'events.signing.keyId'],
      [{ signing: { keyId: 'oltp', keyEnv: 'K', keyFile: '/k' } }, 'events.signing: set keyFile or keyEnv'],
      [{ signing: { keyId: 'oltp', key: 'inline' } }, 'events.signing.key: unknown key'],
      [{ verifyKeys: { validator: {} } }, 'events.verifyKeys.validator: set keyFile or keyEnv'],
      [{ verifyKeys: { validator: { keyEnv: 'K', types: ['validation.*'] } } }, 'events.verifyKeys.validator.types.0'],
      [{ verifyKeys: { validator: { keyEnv: 'K', types: [] } } }, 'events.verifyKeys.validator.types'],
    ])('refuses %j', (section, message) => {
      expect(() => buildConfig({ events: section } as never, 'x')).toThrow(message);
    });

    it('reads no event secret for a process that never reaches Kafka (the WAL commands), and gives it no brokers', () => {
      const document = {
        events: {
          brokers: ['kafka:9093'],
          signing: { keyId: 'validator', keyFile: 'unreadable.key' },
          sasl: { mechanism: 'scram-sha-512', username: 'u', passwordEnv: 'UNSET' },
        },
      };
      expect(() => buildConfig(document, 'x', {}, {}, dir)).toThrow('events.signing.keyFile');
      const events = buildConfig(document, 'x', { events: false }, { ROOKERY_KAFKA_BROKERS: 'kafka:9093' }, dir).events;
      expect(events).toMatchObject({ brokers: [], tls: null, sasl: null, signing: null, verifyKeys: [] });
    });

    it('reports every unreadable, shared, unset or short secret together', () => {
      const error = configError(() =>
        buildConfig(
          {
            events: {
              tls: { caFile: 'missing-ca.pem' },
              sasl: { mechanism: 'plain', username: 'u', passwordFile: file('shared-password', 'pw', 0o644) },
              signing: { keyId: 'cli', keyEnv: 'UNSET_KEY' },
              verifyKeys: { short: { keyFile: file('short.key', 'tooshort') } },
            },
          },
          'x',
          {},
          {},
          dir,
        ),
      );
      expect(error.issues).toEqual([
        `events.tls.caFile: cannot read '${join(dir, 'missing-ca.pem')}'`,
        `events.sasl.passwordFile: '${join(dir, 'shared-password')}' is accessible by group or others (mode 0644)`,
        'events.signing.keyEnv: environment variable UNSET_KEY is not set',
        "events.verifyKeys.short: the key of 'short' has 8 bytes, at least 32 are needed",
      ]);
      expect(error.hint).toContain('events.sasl.allowReadablePasswordFile: true');
    });
  });
});
