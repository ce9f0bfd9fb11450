import { existsSync, readFileSync } from 'node:fs';
import { normalize, resolve } from 'node:path';
import { ConfigError, Secret, TIER_NAMES, TierName, TierPolicy } from '@rookery/core';
import {
  AuthConfig,
  DEFAULT_BODY_LIMIT_BYTES,
  DEFAULT_COMPRESSION,
  DEFAULT_PG_IDLE_TIMEOUT_SECONDS,
  DEFAULT_REPOSITORY_OWNER,
  DEFAULT_VALIDATION_REQUEST_WINDOW_SECONDS,
  DEFAULT_WAL_ARCHIVE,
  EventKey,
  EventsConfig,
  IntegrityConfig,
  MIN_EVENT_KEY_BYTES,
  RookeryConfig,
  ServiceGrpcConfig,
  TierConfig,
  WalStreamConfig,
  defaultTierConfigs,
  defaultWalStreamConfig,
} from './rookery-config';
import { readKeyFile } from './key-file';
import { RookeryFile, describeIssues, rookeryFileSchema } from './rookery-config.schema';

export interface ConfigOverrides {
  /** --config FILE */
  configFile?: string;
  /** --repo URL (repeatable); replaces the file's repositories when given. */
  repositories?: string[];
  /** --pg-url URL for the tier the command works on. */
  pgUrl?: string;
  tier?: TierName;
  /** --port N for a service; over $PORT, over service.port. */
  port?: number;
  /**
   * false: a process that never reaches Kafka (wal-push, wal-get: PostgreSQL's archive_command and
   * restore_command, run by the server's account) — the events section is checked but its secret
   * files and variables are not read, and the config has no brokers, so nothing can connect
   * without them. Default true.
   */
  events?: boolean;
}

/** Environment variables rookery reads; nothing else in the code base reads process.env. */
export const ENV = {
  config: 'ROOKERY_CONFIG',
  encryptionKey: 'ROOKERY_ENCRYPTION_KEY',
  catalogUrl: 'ROOKERY_CATALOG_URL',
  kafkaBrokers: 'ROOKERY_KAFKA_BROKERS',
  port: 'PORT',
} as const;

/**
 * Resolves and validates the configuration: --config FILE, else $ROOKERY_CONFIG, else
 * ./rookery.yaml, else the built-in defaults; then flags override the file. Every problem is
 * reported in one ConfigError, each line naming the bad key.
 */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): RookeryConfig {
  const path = overrides.configFile ?? env[ENV.config] ?? defaultConfigPath(cwd);
  const file = path ? readConfigFile(resolve(cwd, path)) : {};
  return buildConfig(file, path ? resolve(cwd, path) : 'built-in defaults', overrides, env, cwd);
}

function defaultConfigPath(cwd: string): string | undefined {
  const candidate = resolve(cwd, 'rookery.yaml');
  return existsSync(candidate) ? candidate : undefined;
}

function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read config file '${path}'`, [], { cause: error });
  }
  // Loaded here: most runs (the embedded defaults, every wal-get) have no file to parse.
  const { parse: parseYaml, YAMLParseError } = require('yaml') as typeof import('yaml');
  try {
    return parseYaml(text) ?? {};
  } catch (error) {
    const where = error instanceof YAMLParseError ? ` at line ${error.linePos?.[0].line}` : '';
    throw new ConfigError(`config file '${path}' is not valid YAML${where}`, [], { cause: error });
  }
}

/** Validates a parsed config document and merges defaults, flags and environment. */
export function buildConfig(
  document: unknown,
  source: string,
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = {},
  cwd = process.cwd(),
): RookeryConfig {
  const parsed = rookeryFileSchema.safeParse(document);
  if (!parsed.success) {
    const issues = describeIssues(parsed.error);
    throw new ConfigError(`invalid config in ${source}: ${issues.join('; ')}`, issues);
  }
  const file: RookeryFile = parsed.data;
  const problems: string[] = [];

  const repositories = overrides.repositories?.length ? overrides.repositories : (file.repositories ?? []);
  repositories.forEach((url, index) => {
    if (!/^(file|s3):\/\//.test(url)) problems.push(`repositories.${index}: '${url}' must be a file:// or s3:// URL`);
  });

  const tiers = defaultTierConfigs();
  for (const tier of TIER_NAMES) {
    const section = file.tiers?.[tier];
    const merged: TierConfig = {
      policy: mergePolicy(tiers[tier].policy, section?.policy),
      pgUrl: section?.pgUrl ? new Secret(section.pgUrl) : null,
      checkpoint: section?.checkpoint ?? 'fast',
    };
    tiers[tier] = merged;
  }
  if (overrides.pgUrl) {
    if (!/^postgres(ql)?:\/\//.test(overrides.pgUrl)) problems.push(`--pg-url: must be a postgres:// URL`);
    else if (!overrides.tier) problems.push('--pg-url: needs --tier');
    else tiers[overrides.tier] = { ...tiers[overrides.tier], pgUrl: new Secret(overrides.pgUrl) };
  }

  const port = servicePort(overrides.port, env[ENV.port], problems) ?? file.service?.port ?? 8080;
  const hints: string[] = [];
  const encryptionKey = readEncryptionKey(file, env, cwd, problems, hints);
  const encryptionRequired = file.encryption?.required ?? encryptionKey !== null;
  if (encryptionRequired && !encryptionKey)
    problems.push('encryption.required: true needs an encryption key (encryption.keyFile or keyEnv)');
  const integrity = readIntegrityKeys(file, env, cwd, problems, hints);
  const withEvents = overrides.events ?? true;
  const eventSecurity: EventSecurity = withEvents
    ? readEventSecurity(file, env, cwd, problems, hints)
    : { tls: null, sasl: null, signing: null, verifyKeys: [], allowUnsigned: file.events?.allowUnsigned ?? false };
  if (problems.length) {
    throw new ConfigError(`invalid config in ${source}: ${problems.join('; ')}`, problems, hints.length ? { hint: hints.join('; ') } : {});
  }

  const compression = {
    codec: (file.compression?.codec ?? DEFAULT_COMPRESSION.codec) as RookeryConfig['compression']['codec'],
    level: file.compression?.level ?? DEFAULT_COMPRESSION.level,
    workers: file.compression?.workers ?? DEFAULT_COMPRESSION.workers,
    chunkSize: file.compression?.chunkSizeMb ? Math.round(file.compression.chunkSizeMb * 1024 * 1024) : DEFAULT_COMPRESSION.chunkSize,
    location: file.compression?.location ?? DEFAULT_COMPRESSION.location,
  };

  return deepFreeze({
    source,
    repositories,
    repository: { owner: file.repository?.owner ?? DEFAULT_REPOSITORY_OWNER, group: file.repository?.group ?? null },
    compression,
    encryptionKey,
    encryptionKeyEnv: file.encryption?.keyEnv ?? ENV.encryptionKey,
    encryptionRequired,
    integrity,
    postgres: { binDir: file.postgres?.binDir, idleTimeoutSeconds: file.postgres?.idleTimeoutSeconds ?? DEFAULT_PG_IDLE_TIMEOUT_SECONDS },
    catalog: { url: env[ENV.catalogUrl] ?? file.catalog?.url ?? 'sqlite://rookery-catalog.sqlite' },
    service: {
      host: file.service?.host ?? '127.0.0.1',
      port,
      bodyLimitBytes: file.service?.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
      allowedOrigins: file.service?.allowedOrigins ?? [],
      grpc: grpcConfig(file, cwd),
    },
    auth: authConfig(file, cwd),
    tiers,
    walStream: walStreamConfig(file, cwd),
    wal: {
      archiveAsync: file.wal?.archiveAsync ?? DEFAULT_WAL_ARCHIVE.archiveAsync,
      spoolPath: file.wal?.spoolPath ? resolve(cwd, file.wal.spoolPath) : DEFAULT_WAL_ARCHIVE.spoolPath,
      processMax: file.wal?.processMax ?? DEFAULT_WAL_ARCHIVE.processMax,
      batchMax: file.wal?.batchMax ?? DEFAULT_WAL_ARCHIVE.batchMax,
      archiveTimeoutSeconds: file.wal?.archiveTimeoutSeconds ?? DEFAULT_WAL_ARCHIVE.archiveTimeoutSeconds,
      archiverIdleSeconds: file.wal?.archiverIdleSeconds ?? DEFAULT_WAL_ARCHIVE.archiverIdleSeconds,
      prefetchSegments: file.wal?.prefetchSegments ?? DEFAULT_WAL_ARCHIVE.prefetchSegments,
      reuseBuffers: file.wal?.reuseBuffers ?? DEFAULT_WAL_ARCHIVE.reuseBuffers,
    },
    events: {
      brokers: withEvents ? (kafkaBrokers(env[ENV.kafkaBrokers]) ?? file.events?.brokers ?? []) : [],
      clientId: file.events?.clientId ?? 'rookery',
      partitions: file.events?.partitions ?? 4,
      replicationFactor: file.events?.replicationFactor ?? null,
      allowInProcess: file.events?.allowInProcess ?? false,
      ...eventSecurity,
    },
    validator: { requestWindowSeconds: file.validator?.requestWindowSeconds ?? DEFAULT_VALIDATION_REQUEST_WINDOW_SECONDS },
    restore: {
      directWrites: file.restore?.directWrites ?? true,
      chainDigestsFromIndex: file.restore?.chainDigestsFromIndex ?? true,
      chainInPlace: file.restore?.chainInPlace ?? true,
      deltaReadAhead: file.restore?.deltaReadAhead ?? true,
      prefetchInProcess: file.restore?.prefetchInProcess ?? true,
    },
    restores: {
      directoryRoot: file.restores?.directoryRoot ? normalize(file.restores.directoryRoot) : null,
      logicalTargetHosts: file.restores?.logicalTargetHosts ?? null,
    },
    backup: { reuseBuffers: file.backup?.reuseBuffers ?? true },
  });
}

/** ROOKERY_KAFKA_BROKERS=host:port,host:port overrides events.brokers (containers set it). */
function kafkaBrokers(value: string | undefined): string[] | undefined {
  const brokers = value
    ?.split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
  return brokers?.length ? brokers : undefined;
}

/** --port, else $PORT (platforms and several services on one host set it), else the file. */
function servicePort(flag: number | undefined, variable: string | undefined, problems: string[]): number | undefined {
  if (flag !== undefined) {
    if (Number.isInteger(flag) && flag >= 0 && flag <= 65535) return flag;
    problems.push(`--port: '${flag}' is not a port number (0-65535)`);
    return undefined;
  }
  if (variable === undefined || variable.trim() === '') return undefined;
  if (/^\d{1,5}$/.test(variable.trim()) && Number(variable) <= 65535) return Number(variable);
  problems.push(`${ENV.port}: '${variable}' is not a port number (0-65535)`);
  return undefined;
}

function grpcConfig(file: RookeryFile, cwd: string): ServiceGrpcConfig | null {
  const grpc = file.service?.grpc;
  if (!grpc) return null;
  const { tls } = grpc;
  return {
    host: grpc.host ?? file.service?.host ?? '127.0.0.1',
    port: grpc.port,
    tls: tls
      ? {
          certFile: resolve(cwd, tls.certFile),
          keyFile: resolve(cwd, tls.keyFile),
          clientCaFile: tls.clientCaFile ? resolve(cwd, tls.clientCaFile) : null,
          requireClientCert: tls.requireClientCert ?? false,
        }
      : null,
  };
}

function authConfig(file: RookeryFile, cwd: string): AuthConfig {
  const jwt = file.auth?.jwt;
  return {
    mode: file.auth?.mode ?? 'required',
    tokenFile: file.auth?.tokenFile ? resolve(cwd, file.auth.tokenFile) : null,
    jwt: jwt
      ? {
          issuer: jwt.issuer,
          audience: jwt.audience,
          jwksUrl: jwt.jwksUrl ?? null,
          jwksFile: jwt.jwksFile ? resolve(cwd, jwt.jwksFile) : null,
          algorithms: jwt.algorithms ?? ['RS256', 'PS256', 'ES256', 'EdDSA'],
          rolesClaim: jwt.rolesClaim ?? 'roles',
          tiersClaim: jwt.tiersClaim ?? 'rookery_tiers',
          principalClaim: jwt.principalClaim ?? 'sub',
          clockToleranceSeconds: jwt.clockToleranceSeconds ?? 30,
        }
      : null,
  };
}

function walStreamConfig(file: RookeryFile, cwd: string): WalStreamConfig {
  const defaults = defaultWalStreamConfig(cwd);
  const section = file.walStream ?? {};
  const onDown = section.onDown ?? defaults.onDown;
  return {
    ...defaults,
    ...section,
    spoolDir: section.spoolDir ? resolve(cwd, section.spoolDir) : defaults.spoolDir,
    onDown,
    // Degrading means removing our name from synchronous_standby_names: only a managed setting can.
    manageSynchronousStandbyNames: section.manageSynchronousStandbyNames ?? onDown === 'degrade',
  };
}

/**
 * File policy over the default; a logical section overrides key by key, not as a whole, and so
 * does physical.incremental (`incremental: null` turns a tier's block incrementals off).
 */
function mergePolicy(base: TierPolicy, overrides: NonNullable<NonNullable<RookeryFile['tiers']>[TierName]>['policy']): TierPolicy {
  const { logical, physical, ...rest } = overrides ?? {};
  const merged: TierPolicy = { ...base, ...rest };
  if (physical && 'incremental' in physical) {
    const incremental = physical.incremental
      ? { fullEveryDays: 1, maxChainFraction: 0.5, ...base.physical?.incremental, ...physical.incremental }
      : undefined;
    merged.physical = { ...base.physical, incremental };
    if (!incremental) delete merged.physical.incremental;
  }
  if (logical) {
    merged.logical = {
      splitTable: null,
      excludeTableData: [],
      format: 'custom',
      jobs: 1,
      ...base.logical,
      ...logical,
    } as TierPolicy['logical'];
  }
  return merged;
}

function readEncryptionKey(
  file: RookeryFile,
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: string[],
  hints: string[],
): Secret<Buffer> | null {
  if (file.encryption?.keyFile) {
    return keyFromFile(
      'encryption.keyFile',
      resolve(cwd, file.encryption.keyFile),
      file.encryption.allowReadableKeyFile ?? false,
      problems,
      hints,
    );
  }
  const variable = file.encryption?.keyEnv ?? ENV.encryptionKey;
  const value = env[variable];
  if (file.encryption?.keyEnv && !value) {
    problems.push(`encryption.keyEnv: environment variable ${variable} is not set`);
  }
  return value ? new Secret(Buffer.from(value, 'utf8')) : null;
}

/** integrity.keyFile or keyEnv (the key that signs) and integrity.verifyKeyFiles (older keys still accepted). */
function readIntegrityKeys(file: RookeryFile, env: NodeJS.ProcessEnv, cwd: string, problems: string[], hints: string[]): IntegrityConfig {
  const section = file.integrity ?? {};
  const allowReadable = section.allowReadableKeyFile ?? false;
  let signingKey: Secret<Buffer> | null = null;
  if (section.keyFile) signingKey = keyFromFile('integrity.keyFile', resolve(cwd, section.keyFile), allowReadable, problems, hints);
  else if (section.keyEnv) {
    const value = env[section.keyEnv];
    if (value) signingKey = new Secret(Buffer.from(value, 'utf8'));
    else problems.push(`integrity.keyEnv: environment variable ${section.keyEnv} is not set`);
  }
  const verifyKeys = (section.verifyKeyFiles ?? []).map((keyFile, index) =>
    keyFromFile(`integrity.verifyKeyFiles[${index}]`, resolve(cwd, keyFile), allowReadable, problems, hints),
  );
  return { signingKey, verifyKeys: verifyKeys.filter((key): key is Secret<Buffer> => key !== null) };
}

type EventSecurity = Pick<EventsConfig, 'tls' | 'sasl' | 'signing' | 'verifyKeys' | 'allowUnsigned'>;

/**
 * events.tls, events.sasl, events.signing and events.verifyKeys, their files read now (a missing
 * or shared key file is a config problem at start, not a failed connection later). Secrets come
 * from files only their owner can read or from environment variables, never from the config itself.
 */
function readEventSecurity(file: RookeryFile, env: NodeJS.ProcessEnv, cwd: string, problems: string[], hints: string[]): EventSecurity {
  const section = file.events ?? {};
  let tls: EventSecurity['tls'] = null;
  if (section.tls) {
    const ca = section.tls.caFile ? readText('events.tls.caFile', resolve(cwd, section.tls.caFile), problems) : null;
    const cert = section.tls.certFile ? readText('events.tls.certFile', resolve(cwd, section.tls.certFile), problems) : null;
    const key = section.tls.keyFile
      ? keyFromFile('events.tls.keyFile', resolve(cwd, section.tls.keyFile), section.tls.allowReadableKeyFile ?? false, problems, hints)
      : null;
    tls = {
      ca: ca ? [ca] : [],
      cert,
      key: key ? new Secret(key.reveal().toString('utf8')) : null,
      rejectUnauthorized: section.tls.rejectUnauthorized ?? true,
    };
  }
  let sasl: EventSecurity['sasl'] = null;
  if (section.sasl) {
    const { mechanism, username, passwordFile, passwordEnv, allowReadablePasswordFile } = section.sasl;
    const password = secretText(
      passwordFile
        ? { setting: 'events.sasl.passwordFile', path: resolve(cwd, passwordFile), allowReadable: allowReadablePasswordFile ?? false }
        : null,
      passwordEnv ? { setting: 'events.sasl.passwordEnv', name: passwordEnv } : null,
      env,
      problems,
      hints,
    );
    if (password) sasl = { mechanism, username, password: new Secret(password) };
  }
  const eventKey = (
    setting: string,
    keyId: string,
    source: { keyFile?: string; keyEnv?: string; allowReadableKeyFile?: boolean },
  ): EventKey | null => {
    const material = secretText(
      source.keyFile
        ? { setting: `${setting}.keyFile`, path: resolve(cwd, source.keyFile), allowReadable: source.allowReadableKeyFile ?? false }
        : null,
      source.keyEnv ? { setting: `${setting}.keyEnv`, name: source.keyEnv } : null,
      env,
      problems,
      hints,
    );
    if (material === null) return null;
    if (Buffer.byteLength(material) < MIN_EVENT_KEY_BYTES) {
      problems.push(
        `${setting}: the key of '${keyId}' has ${Buffer.byteLength(material)} bytes, at least ${MIN_EVENT_KEY_BYTES} are needed`,
      );
      hints.push('generate one with: openssl rand -hex 32');
      return null;
    }
    return { keyId, key: new Secret<Buffer>(Buffer.from(material, 'utf8')) } as EventKey;
  };
  const signing = section.signing ? eventKey('events.signing', section.signing.keyId, section.signing) : null;
  const verifyKeys = Object.entries(section.verifyKeys ?? {})
    .map(([keyId, source]): (EventKey & { types: readonly string[] | null }) | null => {
      const key = eventKey(`events.verifyKeys.${keyId}`, keyId, source);
      return key && { ...key, types: source.types ?? null };
    })
    .filter((key): key is EventKey & { types: readonly string[] | null } => key !== null);
  return { tls, sasl, signing, verifyKeys, allowUnsigned: section.allowUnsigned ?? false };
}

/** A secret from a file only its owner can read (trailing whitespace dropped) or an environment variable; null with the problem recorded. */
function secretText(
  fromFile: { setting: string; path: string; allowReadable: boolean } | null,
  fromEnv: { setting: string; name: string } | null,
  env: NodeJS.ProcessEnv,
  problems: string[],
  hints: string[],
): string | null {
  if (fromFile)
    return (
      keyFromFile(fromFile.setting, fromFile.path, fromFile.allowReadable, problems, hints)?.reveal().toString('utf8').trimEnd() ?? null
    );
  if (!fromEnv) return null;
  const value = env[fromEnv.name];
  if (value) return value;
  problems.push(`${fromEnv.setting}: environment variable ${fromEnv.name} is not set`);
  return null;
}

/** A file that is no secret (a certificate), or null with the problem recorded. */
function readText(setting: string, path: string, problems: string[]): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    problems.push(`${setting}: cannot read '${path}'`);
    return null;
  }
}

/** A key from a file that only its owner can read (readKeyFile), or null with the problem and its hint recorded. */
function keyFromFile(setting: string, path: string, allowReadable: boolean, problems: string[], hints: string[]): Secret<Buffer> | null {
  const read = readKeyFile(path, setting, allowReadable);
  if ('key' in read) return new Secret(read.key);
  problems.push(read.problem);
  if (read.hint) hints.push(read.hint);
  return null;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Secret) && !Buffer.isBuffer(value)) {
    Object.values(value as Record<string, unknown>).forEach(deepFreeze);
    Object.freeze(value);
  }
  return value;
}

/** The process environment, for the few places that hand it on (child process base env). */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
