import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { TokenFileVerifier } from '@rookery/auth';
import { ENV, rookeryFileSchema } from '@rookery/config';

/**
 * docker/compose.yaml, docker/Dockerfile and the files they use, checked without a Docker engine
 * (there is none on the development machine; issue 16 item 4): the compose file is parsed as
 * compose would (YAML merge keys resolved), the Dockerfile as its instructions and stages, and
 * the properties a working stack needs are asserted on them. The two shell scripts of the stack
 * (init-secrets.sh, secrets-env.sh) are run for real. Nothing here builds an image or starts a
 * container: README "Running the services together" says so.
 */
const ROOT = resolve(__dirname, '..', '..', '..', '..', '..');
const DOCKER = join(ROOT, 'docker');
const read = (...path: string[]): string => readFileSync(join(ROOT, ...path), 'utf8');

// ---- compose.yaml, as compose reads it ------------------------------------------------------------

type Condition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string; target?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number> | string[];
  ports?: (string | { host_ip?: string; published?: string | number; target: number })[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  restart?: string;
  depends_on?: string[] | Record<string, { condition?: Condition }>;
  secrets?: (string | { source: string; target?: string })[];
  volumes?: string[];
  user?: string;
  init?: boolean;
}

interface Compose {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string; environment?: string }>;
  volumes?: Record<string, unknown>;
}

const composeText = read('docker', 'compose.yaml');
const compose = parseYaml(composeText, { merge: true }) as Compose;
const services = compose.services;
const serviceNames = Object.keys(services);

function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((entry) => [entry.split('=')[0], entry.split('=').slice(1).join('=')]));
  return Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)]));
}

function dependencies(service: ComposeService): Record<string, Condition> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started' as Condition]));
  return Object.fromEntries(Object.entries(deps).map(([name, spec]) => [name, spec?.condition ?? 'service_started']));
}

function secretNames(service: ComposeService): string[] {
  return (service.secrets ?? []).map((secret) => (typeof secret === 'string' ? secret : secret.source));
}

function argv(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : value.split(/\s+/);
}

/** `-c name=value` settings of a postgres command line. */
function serverSettings(service: ComposeService): Record<string, string> {
  const args = argv(service.command);
  const settings: Record<string, string> = {};
  args.forEach((arg, index) => {
    if (arg === '-c' && args[index + 1]) {
      const [name, ...value] = args[index + 1].split('=');
      settings[name] = value.join('=');
    }
  });
  return settings;
}

/** Services that run to completion: what others wait for with service_completed_successfully. */
const jobs = new Set(
  Object.values(services).flatMap((service) =>
    Object.entries(dependencies(service))
      .filter(([, condition]) => condition === 'service_completed_successfully')
      .map(([name]) => name),
  ),
);
const longRunning = serviceNames.filter((name) => !jobs.has(name));

/** The rookery services: the app image, one built main.js each. */
const APPS = ['oltp-backup', 'queue-wal', 'validator', 'compliance-reporting'] as const;
const rookeryServices = serviceNames.filter((name) => services[name].build?.target === 'app');

// ---- the Dockerfile, as instructions in stages --------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (/^\s*#/.test(line) && pending === '') continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    const continued = /\\\s*$/.test(line);
    pending += `${line.replace(/\\\s*$/, '')} `;
    if (!continued) {
      if (pending.trim()) logical.push(pending.trim().replace(/\s+/g, ' '));
      pending = '';
    }
  }
  const stages: Stage[] = [];
  for (const instruction of logical) {
    const [keyword, ...rest] = instruction.split(' ');
    const args = rest.join(' ');
    if (keyword.toUpperCase() === 'FROM') {
      const match = /^(?:--platform=\S+ )?(\S+)(?: AS (\S+))?$/i.exec(args);
      if (!match) throw new Error(`cannot read FROM ${args}`);
      stages.push({ name: match[2] ?? String(stages.length), from: match[1], instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1].instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

const dockerfileText = read('docker', 'Dockerfile');
const stages = parseDockerfile(dockerfileText);
const stage = (name: string): Stage => {
  const found = stages.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no stage '${name}' in docker/Dockerfile`);
  return found;
};

interface Copy {
  from: string | null;
  sources: string[];
  destination: string;
}
function copies(of: Stage): Copy[] {
  return of.instructions
    .filter((instruction) => instruction.keyword === 'COPY' || instruction.keyword === 'ADD')
    .map((instruction) => {
      const words = instruction.args.split(' ');
      const from = words.find((word) => word.startsWith('--from='))?.slice('--from='.length) ?? null;
      const paths = words.filter((word) => !word.startsWith('--'));
      return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1] };
    });
}

const runs = (of: Stage): string[] => of.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const lastUser = (of: Stage): string | undefined =>
  of.instructions.filter((i) => i.keyword === 'USER').map((i) => i.args.trim())[
    of.instructions.filter((i) => i.keyword === 'USER').length - 1
  ];
const isRoot = (user: string | undefined): boolean => user === undefined || /^(root|0)(:.*)?$/.test(user);

/**
 * The stages a path of a stage's filesystem comes from, following COPY --from back to the stage
 * that made it (one that RUNs something there, e.g. `npm ci`), with the path in that stage.
 */
function origins(of: Stage, path: string, seen = new Set<string>()): { stage: Stage; path: string }[] {
  if (seen.has(`${of.name}:${path}`)) return [];
  seen.add(`${of.name}:${path}`);
  const found: { stage: Stage; path: string }[] = [];
  for (const copy of copies(of)) {
    if (!copy.from) continue;
    for (const source of copy.sources) {
      // COPY --from=S /opt/rookery /opt/rookery brings /opt/rookery/node_modules along.
      if (path === copy.destination || path.startsWith(`${copy.destination.replace(/\/$/, '')}/`)) {
        found.push(...origins(stage(copy.from), source + path.slice(copy.destination.replace(/\/$/, '').length), seen));
      }
    }
  }
  return found.length > 0 ? found : runs(of).length > 0 ? [{ stage: of, path }] : [];
}

// ---- the files the stack mounts ------------------------------------------------------------------

const rookeryYaml = parseYaml(read('docker', 'rookery.yaml')) as {
  repositories: string[];
  tiers: Record<string, { pgUrl?: string }>;
  walStream?: { spoolDir?: string; tier?: string };
  integrity?: { keyFile?: string };
  encryption?: { keyFile?: string };
  events?: { signing?: { keyFile?: string }; verifyKeys?: Record<string, { keyFile?: string }> };
  auth?: { mode?: string; tokenFile?: string };
  catalog?: unknown;
  service?: { host?: string; port?: number };
};
const initSecrets = read('docker', 'init-secrets.sh');
const eventKeyFiles = () =>
  [rookeryYaml.events?.signing?.keyFile, ...Object.values(rookeryYaml.events?.verifyKeys ?? {}).map((key) => key.keyFile)].filter(
    (file): file is string => Boolean(file),
  );
const secretsEnv = read('docker', 'secrets-env.sh');
/** The variables docker/secrets-env.sh reads from VAR_FILE. */
const wrappedVariables = (/for var in ([A-Z_ ]+); do/.exec(secretsEnv)?.[1] ?? '').trim().split(/\s+/);

describe('docker/compose.yaml (static: no Docker engine here)', () => {
  it('parses, with the services of a working stack', () => {
    expect(serviceNames).toEqual(
      expect.arrayContaining(['oltp-db', 'queue-db', 'catalog-db', 's3', 'create-bucket', 'kafka', ...APPS, 'prometheus']),
    );
    expect(rookeryServices.sort()).toEqual([...APPS].sort());
  });

  it.each(longRunning)('%s: has a health check and restarts unless stopped', (name) => {
    const service = services[name];
    expect(service.healthcheck?.disable).not.toBe(true);
    expect(argv(service.healthcheck?.test).length).toBeGreaterThan(1);
    expect(['CMD', 'CMD-SHELL']).toContain(argv(service.healthcheck?.test)[0]);
    expect(service.restart).toMatch(/^(unless-stopped|always)$/);
  });

  it('one-shot jobs are retried on failure and have no health check to wait for', () => {
    expect([...jobs]).toEqual(['create-bucket']);
    for (const name of jobs) {
      expect(services[name].restart).toMatch(/^on-failure(:\d+)?$/);
      expect(services[name].healthcheck).toEqual({ disable: true });
    }
  });

  it('publishes ports on 127.0.0.1 only', () => {
    const published = serviceNames.flatMap((name) => (services[name].ports ?? []).map((port) => ({ name, port })));
    expect(published.length).toBeGreaterThan(0);
    for (const { name, port } of published) {
      const hostIp = typeof port === 'string' ? (port.split(':').length === 3 ? port.split(':')[0] : undefined) : port.host_ip;
      expect({ name, hostIp }).toEqual({ name, hostIp: '127.0.0.1' });
    }
    // Each rookery service is reachable from the host, each on its own port.
    const hostPorts = APPS.map((app) => String(services[app].ports?.[0]).split(':')[1]);
    expect(new Set(hostPorts).size).toBe(APPS.length);
  });

  it('depends_on names existing services, waits for health only where there is a check, and has no cycle', () => {
    for (const name of serviceNames) {
      for (const [dependency, condition] of Object.entries(dependencies(services[name]))) {
        expect({ name, dependency, exists: serviceNames.includes(dependency) }).toEqual({ name, dependency, exists: true });
        if (condition === 'service_healthy') expect(longRunning).toContain(dependency);
        if (condition === 'service_completed_successfully') expect(jobs.has(dependency)).toBe(true);
      }
    }
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, path: string[]): void => {
      if (done.has(name)) return;
      if (visiting.has(name)) throw new Error(`depends_on cycle: ${[...path, name].join(' -> ')}`);
      visiting.add(name);
      Object.keys(dependencies(services[name])).forEach((dependency) => visit(dependency, [...path, name]));
      visiting.delete(name);
      done.add(name);
    };
    serviceNames.forEach((name) => visit(name, []));
  });

  it('uses no variable interpolation ($$ is a literal $), so nothing depends on the caller environment', () => {
    expect(composeText.replace(/\$\$/g, '').match(/\$\{?[A-Za-z_]/g)).toBeNull();
  });
});

describe('the source databases (oltp-db, queue-db)', () => {
  const hba = read('docker', 'postgres', 'pg_hba.conf')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((line) => line.split(/\s+/));

  it('run the database image, built from the Dockerfile stage that installs rookery and pg_hba.conf', () => {
    for (const name of ['oltp-db', 'queue-db']) {
      expect(services[name].build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile', target: 'postgres' });
      expect(serverSettings(services[name]).hba_file).toBe('/etc/postgresql/pg_hba.conf');
      expect(serverSettings(services[name]).wal_level).toMatch(/^(replica|logical)$/);
    }
    const postgres = stage('postgres');
    expect(postgres.from).toMatch(/POSTGRES_IMAGE|postgres:15/);
    expect(copies(postgres)).toEqual(
      expect.arrayContaining([{ from: null, sources: ['docker/postgres/pg_hba.conf'], destination: '/etc/postgresql/pg_hba.conf' }]),
    );
    // rookery, with its pinned node and production dependencies, from the same files as the app.
    for (const path of ['/opt/rookery/bin/rookery-wal-push', '/opt/rookery/dist/apps/cli', '/opt/rookery/node_modules']) {
      expect(origins(postgres, path).length).toBeGreaterThan(0);
    }
    // The pinned node and the native modules link libstdc++ (the database image is Debian too).
    expect(runs(postgres).join('\n')).toMatch(/apt-get install -y --no-install-recommends libstdc\+\+6/);
    expect(isRoot(lastUser(postgres))).toBe(false);
  });

  it('pg_hba.conf admits replication connections from the compose network with passwords', () => {
    const replication = hba.filter(([type, database]) => type.startsWith('host') && database === 'replication');
    expect(replication.length).toBeGreaterThan(0);
    for (const [, , , address, method] of replication) {
      expect(address).toMatch(/^(samenet|samehost|\d+\.\d+\.\d+\.\d+\/\d+)$/);
      expect(method).toBe('scram-sha-256');
    }
    // No network line trusts without a password.
    expect(hba.filter(([type, , , , method]) => type.startsWith('host') && method === 'trust')).toEqual([]);
    expect(hba.some(([type, database]) => type === 'host' && database === 'all')).toBe(true);
  });

  it('oltp-db archives its WAL through the rookery of its image into the stack repository', () => {
    const settings = serverSettings(services['oltp-db']);
    expect(settings.archive_mode).toBe('on');
    const command = /^(\/opt\/rookery\/bin\/rookery-wal-push) %p --tier (\S+) --config (\S+)$/.exec(settings.archive_command);
    expect(command).not.toBeNull();
    const [, executable, tier, config] = command as RegExpExecArray;
    // The executable is one the image has: bin/ of this repository, copied to /opt/rookery/bin.
    expect(statSync(join(ROOT, 'bin', 'rookery-wal-push')).mode & 0o111).not.toBe(0);
    expect(origins(stage('postgres'), executable).length).toBeGreaterThan(0);
    expect(rookeryYaml.tiers[tier]?.pgUrl).toMatch(/@oltp-db:5432\//);
    expect(services['oltp-db'].volumes).toContain(`./rookery.yaml:${config}:ro`);
    // The store's credentials and the signing key reach the server's account as files.
    expect(environment(services['oltp-db']).AWS_SHARED_CREDENTIALS_FILE).toBe('/run/secrets/s3_credentials');
    expect(secretNames(services['oltp-db'])).toEqual(expect.arrayContaining(['s3_credentials', 'rookery_signing_key']));
    expect(Number(settings.archive_timeout)).toBeGreaterThan(0);
  });
});

describe('the S3 store', () => {
  const repository = new URL(rookeryYaml.repositories[0]);
  const bucket = repository.hostname;
  const usesS3 = serviceNames.filter((name) => environment(services[name]).AWS_SHARED_CREDENTIALS_FILE);

  it('the repository is a bucket of the stack s3 service', () => {
    expect(repository.protocol).toBe('s3:');
    expect(new URL(repository.searchParams.get('endpoint') ?? '').host).toBe('s3:9000');
    expect(repository.searchParams.get('forcePathStyle')).toBe('true');
  });

  it('a one-shot job creates that bucket once the store is healthy', () => {
    const job = services['create-bucket'];
    const script = argv(job.command).join('\n');
    expect(script).toMatch(new RegExp(`mc mb --ignore-existing s3/${bucket}\\b`));
    expect(script).toMatch(
      /MC_HOST_s3="http:\/\/\$\$\(cat \/run\/secrets\/s3_access_key_id\):\$\$\(cat \/run\/secrets\/s3_secret_access_key\)@s3:9000"/,
    );
    expect(dependencies(job)).toEqual({ s3: 'service_healthy' });
  });

  it('every service that uses S3 starts after the bucket exists', () => {
    expect(usesS3.sort()).toEqual(['oltp-db', ...APPS].sort());
    for (const name of usesS3)
      expect({ name, condition: dependencies(services[name])['create-bucket'] }).toEqual({
        name,
        condition: 'service_completed_successfully',
      });
  });
});

describe('the rookery services', () => {
  it.each(APPS)('%s runs its built main.js from the app image', (app) => {
    expect(services[app].build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile', target: 'app' });
    expect(argv(services[app].command)).toEqual(['node', '-r', './tools/runtime/register-aliases.cjs', `dist/apps/${app}/src/main.js`]);
    expect(statSync(join(ROOT, 'apps', app, 'src', 'main.ts')).isFile()).toBe(true);
    expect(services[app].init).toBe(true);
  });

  it.each(APPS)('%s: health check on GET /health of the port rookery.yaml gives it', (app) => {
    expect(rookeryYaml.service?.port).toBe(8080);
    expect(argv(services[app].healthcheck?.test).join(' ')).toContain("fetch('http://127.0.0.1:8080/health')");
    expect(String(services[app].ports?.[0])).toMatch(/^127\.0\.0\.1:\d+:8080$/);
    // Listening beyond the container's loopback, or the published port and Prometheus reach nothing.
    expect(rookeryYaml.service?.host).toBe('0.0.0.0');
  });

  it('queue-wal streams queue-db into a spool on a named volume', () => {
    const spool = rookeryYaml.walStream?.spoolDir as string;
    expect(rookeryYaml.walStream?.tier ?? 'queue').toBe('queue');
    expect(rookeryYaml.tiers.queue?.pgUrl).toMatch(/@queue-db:5432\//);
    const volume = services['queue-wal'].volumes?.find((entry) => entry.split(':')[1] === spool);
    expect(volume).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain((volume as string).split(':')[0]);
    expect(dependencies(services['queue-wal'])['queue-db']).toBe('service_healthy');
    // The image makes the directory for the account, so a new volume takes its owner.
    expect(runs(stage('app')).join('\n')).toContain(spool);
  });

  it('oltp-backup waits for oltp-db; validator and compliance-reporting consume Kafka (they refuse the in-process bus)', () => {
    expect(dependencies(services['oltp-backup'])['oltp-db']).toBe('service_healthy');
    const advertised = environment(services.kafka).KAFKA_ADVERTISED_LISTENERS.replace(/^PLAINTEXT:\/\//, '');
    for (const app of APPS) {
      expect(environment(services[app])[ENV.kafkaBrokers]).toBe(advertised);
      expect(dependencies(services[app]).kafka).toBe('service_healthy');
    }
  });

  it('catalog migrations run once: one PostgreSQL catalog for every service, migrated under an advisory lock, no migration job', () => {
    // Every service opens the one catalog URL (a secret: it holds the password) ...
    for (const app of APPS) {
      expect(environment(services[app])[`${ENV.catalogUrl}_FILE`]).toBe('/run/secrets/catalog_url');
      expect(dependencies(services[app])['catalog-db']).toBe('service_healthy');
    }
    expect(rookeryYaml.catalog).toBeUndefined();
    expect(initSecrets).toMatch(/secret catalog_url "postgres:\/\/rookery:\$\{catalog_password\}@catalog-db:5432\/rookery"/);
    // ... and runs the pending migrations under pg_advisory_lock, so one migrates and the others
    // wait (proved on a real PostgreSQL by catalog-migration-lock.int-spec and service-start.int-spec).
    const factory = read('libs', 'catalog', 'src', 'lib', 'catalog-data-source.factory.ts');
    expect(factory).toMatch(/await migrateUnderLock\(dataSource\)/);
    expect(factory).toMatch(/select pg_advisory_lock\(\$1\)', \[CATALOG_MIGRATION_LOCK\]\);\s+try \{\s+await dataSource\.runMigrations/);
    // No second runner racing them.
    expect(serviceNames.filter((name) => /migrat/i.test(argv(services[name].command).join(' ')))).toEqual([]);
  });
});

describe('environment and secrets', () => {
  /** What rookery reads from the environment (libs/config ENV), what libpq, node-postgres and the AWS SDK read. */
  const READ_BY_ROOKERY = new Set([...Object.values(ENV), 'PGPASSWORD', 'AWS_SHARED_CREDENTIALS_FILE']);

  it.each(APPS)(
    '%s: every variable it is given is read by rookery (directly or through secrets-env.sh), and what it needs is set',
    (app) => {
      const env = environment(services[app]);
      for (const name of Object.keys(env)) {
        const wrapped = name.endsWith('_FILE') && wrappedVariables.includes(name.slice(0, -'_FILE'.length));
        expect({ name, read: READ_BY_ROOKERY.has(name) || wrapped }).toEqual({ name, read: true });
      }
      expect(services[app].volumes).toContain(`./rookery.yaml:${env[ENV.config]}:ro`);
      expect(env[`${ENV.catalogUrl}_FILE`]).toBeDefined();
      expect(env.PGPASSWORD_FILE).toBeDefined();
      expect(env.AWS_SHARED_CREDENTIALS_FILE).toBeDefined();
    },
  );

  it('secrets-env.sh is the app image entrypoint and handles every *_FILE variable the services use', () => {
    expect(stage('app').instructions).toEqual(expect.arrayContaining([{ keyword: 'ENTRYPOINT', args: '["rookery-secrets-env"]' }]));
    expect(copies(stage('app'))).toEqual(
      expect.arrayContaining([{ from: null, sources: ['docker/secrets-env.sh'], destination: '/usr/local/bin/rookery-secrets-env' }]),
    );
    const fileVariables = APPS.flatMap((app) => Object.keys(environment(services[app]))).filter((name) => name.endsWith('_FILE'));
    for (const name of fileVariables.filter((variable) => variable !== 'AWS_SHARED_CREDENTIALS_FILE')) {
      expect(wrappedVariables).toContain(name.slice(0, -'_FILE'.length));
    }
  });

  it.each(serviceNames)('%s: every file variable names a secret mounted in it, declared from docker/secrets/', (name) => {
    const mounted = secretNames(services[name]);
    for (const [variable, value] of Object.entries(environment(services[name]))) {
      if (!variable.endsWith('_FILE')) continue;
      // MinIO's entrypoint takes a name under /run/secrets/; the others an absolute path.
      const secret = value.startsWith('/run/secrets/') ? value.slice('/run/secrets/'.length) : value;
      expect({ variable, mounted: mounted.includes(secret) }).toEqual({ variable, mounted: true });
    }
    for (const secret of mounted) expect(compose.secrets?.[secret]).toEqual({ file: `./secrets/${secret}` });
  });

  it('no secret value in the compose file, the configuration, the Dockerfile or any argv', () => {
    for (const name of serviceNames) {
      for (const [variable, value] of Object.entries(environment(services[name]))) {
        if (/PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL/.test(variable)) expect(variable).toMatch(/_FILE$/);
        // No URL with a password in it (postgres://user:password@…).
        expect(value).not.toMatch(/\/\/[^/@\s:]+:[^/@\s]+@/);
      }
      // Commands read secret files (`$$(cat /run/secrets/…)`, run inside the container); they never
      // hold a value themselves, such as a URL with credentials.
      const commandLine = [...argv(services[name].entrypoint), ...argv(services[name].command)].join(' ');
      expect(commandLine.replace(/\$\$\(cat \/run\/secrets\/[a-z0-9_]+\)/g, '')).not.toMatch(/\/\/[^/@\s:]+:[^/@\s]+@/);
    }
    for (const url of [...rookeryYaml.repositories, ...Object.values(rookeryYaml.tiers).map((tier) => tier.pgUrl ?? '')]) {
      expect(url).not.toMatch(/\/\/[^/@\s:]+:[^/@\s]+@/);
    }
    for (const keyFile of [rookeryYaml.integrity?.keyFile, rookeryYaml.encryption?.keyFile, ...eventKeyFiles()].filter(Boolean)) {
      expect(keyFile).toMatch(/^\/run\/secrets\//);
    }
    // The Dockerfile takes no secret as a build argument or environment value, and copies none.
    for (const { keyword, args } of stages.flatMap((of) => of.instructions)) {
      if (keyword === 'ARG' || keyword === 'ENV') expect(args).not.toMatch(/PASSWORD|SECRET|TOKEN|KEY|CREDENTIAL/i);
      if (keyword === 'COPY' || keyword === 'ADD') expect(args).not.toMatch(/secrets\/|\.env\b|\.key\b/);
    }
    expect(read('.gitignore').split('\n')).toContain('docker/secrets/');
  });

  it('every rookery service reads the bearer-token file named in rookery.yaml; Prometheus has its token', () => {
    const tokenFile = (rookeryYaml.auth?.tokenFile as string).slice('/run/secrets/'.length);
    expect(compose.secrets?.[tokenFile]).toEqual({ file: `./secrets/${tokenFile}` });
    for (const name of APPS) expect(secretNames(services[name])).toContain(tokenFile);
    expect(rookeryYaml.auth?.mode).toBeUndefined();
    expect(secretNames(services.prometheus)).toEqual(['prometheus_token']);
    expect(composeText).not.toContain('AUTH PLACEHOLDER');
  });
});

describe('docker/rookery.yaml', () => {
  it('is valid rookery configuration (the schema every service validates at start)', () => {
    const parsed = rookeryFileSchema.safeParse(rookeryYaml);
    expect(parsed.success ? [] : parsed.error.issues).toEqual([]);
  });

  it('names only hosts of the stack and secrets mounted in every container that reads it', () => {
    for (const tier of Object.values(rookeryYaml.tiers)) expect(serviceNames).toContain(new URL(tier.pgUrl as string).hostname);
    const keyFile = (rookeryYaml.integrity?.keyFile as string).slice('/run/secrets/'.length);
    for (const name of [...APPS, 'oltp-db']) expect(secretNames(services[name])).toContain(keyFile);
  });

  it('signs every event and has the consumers check them (issue 16), with a key every service mounts and init-secrets.sh makes', () => {
    expect(rookeryYaml.events?.signing?.keyFile).toBeDefined();
    expect(Object.keys(rookeryYaml.events?.verifyKeys ?? {})).not.toHaveLength(0);
    for (const keyFile of eventKeyFiles()) {
      const secret = keyFile.slice('/run/secrets/'.length);
      for (const name of APPS) expect({ name, mounted: secretNames(services[name]).includes(secret) }).toEqual({ name, mounted: true });
      expect(initSecrets).toMatch(new RegExp(`^secret ${secret} "\\$\\(hex 32\\)"`, 'm'));
    }
  });
});

describe('docker/Dockerfile (static: not built here)', () => {
  const app = stages[stages.length - 1];

  it('is multi-stage; the last stage is the app image and runs as a non-root account', () => {
    expect(stages.map((of) => of.name)).toEqual(['build', 'prod-deps', 'runtime-files', 'postgres', 'app']);
    expect(app.name).toBe('app');
    expect(isRoot(lastUser(app))).toBe(false);
    expect(lastUser(app)).toMatch(/^\d+:\d+$/);
    expect(runs(app).join('\n')).toMatch(/useradd --system --uid 10001/);
  });

  it('the final image has production dependencies only: its node_modules come from `npm ci --omit=dev`', () => {
    const found = origins(app, '/opt/rookery/node_modules');
    expect(found.map((origin) => origin.stage.name)).toEqual(['prod-deps']);
    for (const { stage: origin } of found) {
      const install = runs(origin).join('\n');
      expect(install).toMatch(/npm ci --omit=dev\b/);
      // Install scripts of the dependencies run (native modules, the pinned node); the root's
      // `prepare` (a TypeScript build, a dev dependency) does not.
      expect(install).toMatch(/--ignore-scripts[\s\S]*npm rebuild/);
      expect(install).toMatch(/native-check\.cjs/);
    }
    // The final image installs nothing itself, takes nothing from the build stage's node_modules,
    // and copies no source tree.
    expect(runs(app).join('\n')).not.toMatch(/npm (ci|install|i)\b/);
    for (const copy of copies(app)) {
      expect(copy.sources).not.toContain('.');
      expect(copy.sources.filter((source) => /^(apps|libs)\b/.test(source))).toEqual([]);
    }
    const fromBuild = copies(stage('runtime-files')).filter((copy) => copy.from === 'build');
    expect(fromBuild.flatMap((copy) => copy.sources).filter((source) => /node_modules/.test(source))).toEqual([]);
    expect(origins(app, '/opt/rookery/dist/apps/validator').map((origin) => origin.stage.name)).toEqual(['build']);
  });

  it('copies into the build only what the build context keeps (.dockerignore)', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'));
    const sources = stages.flatMap((of) =>
      copies(of)
        .filter((copy) => !copy.from)
        .flatMap((copy) => copy.sources),
    );
    for (const source of sources) {
      expect({ source, ignored: ignored.filter((pattern) => source === pattern || source.startsWith(`${pattern}/`)) }).toEqual({
        source,
        ignored: [],
      });
      expect(() => statSync(join(ROOT, source))).not.toThrow();
    }
  });
});

describe('.dockerignore', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it.each([
    ['installed dependencies', '**/node_modules'],
    ['the repository', '.git'],
    ['build output', 'dist'],
    ['TypeScript build info', '*.tsbuildinfo'],
    ['the Nx cache', '.nx'],
    ['coverage', 'coverage'],
    ['test artifacts', 'test-artifacts'],
    ['local rookery state', '.rookery'],
    ['SQLite catalogs', '**/*.sqlite'],
    ['the stack secrets', 'docker/secrets'],
  ])('excludes %s (%s)', (_what, pattern) => {
    expect(patterns).toContain(pattern);
  });
});

describe('the stack scripts, run here', () => {
  let work: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'rookery-compose-stack-'));
  });
  afterEach(() => rmSync(work, { recursive: true, force: true }));

  const sh = (script: string, args: string[], env: Record<string, string> = {}) =>
    spawnSync('sh', [script, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env } });

  it('init-secrets.sh makes every file secret compose declares, 0644 in a 0700 directory, and keeps them when run again', () => {
    cpSync(join(DOCKER, 'init-secrets.sh'), join(work, 'init-secrets.sh'));
    expect(sh(join(work, 'init-secrets.sh'), []).status).toBe(0);
    const secrets = join(work, 'secrets');
    expect(statSync(secrets).mode & 0o777).toBe(0o700);
    const declared = Object.values(compose.secrets ?? {}).map((secret) => (secret.file as string).replace('./secrets/', ''));
    expect(readdirSync(secrets).sort()).toEqual(declared.sort());
    for (const file of declared) expect(statSync(join(secrets, file)).mode & 0o777).toBe(0o644);
    const value = (file: string): string => readFileSync(join(secrets, file), 'utf8').trim();
    expect(value('catalog_url')).toBe(`postgres://rookery:${value('catalog_password')}@catalog-db:5432/rookery`);
    expect(value('s3_credentials')).toBe(
      `[default]\naws_access_key_id = ${value('s3_access_key_id')}\naws_secret_access_key = ${value('s3_secret_access_key')}`,
    );
    expect(value('rookery_signing_key')).toMatch(/^[0-9a-f]{64}$/);
    const before = declared.map(value);
    const again = sh(join(work, 'init-secrets.sh'), []);
    expect(again.status).toBe(0);
    expect(declared.map(value)).toEqual(before);
    expect(again.stdout).not.toContain('rky_');
  });

  it('init-secrets.sh makes a token file the services accept: Prometheus an auditor, an operator whose token is printed once', async () => {
    cpSync(join(DOCKER, 'init-secrets.sh'), join(work, 'init-secrets.sh'));
    const run = sh(join(work, 'init-secrets.sh'), []);
    expect(run.status).toBe(0);
    const operatorToken = /operator bearer token \(shown once, not stored\): (rky_\S+)/.exec(run.stdout)?.[1] as string;
    const verifier = await TokenFileVerifier.load(join(work, 'secrets', 'rookery_api_tokens'));
    await expect(verifier.verify(readFileSync(join(work, 'secrets', 'prometheus_token'), 'utf8').trim())).resolves.toMatchObject({
      name: 'prometheus',
      roles: ['auditor'],
      tiers: null,
    });
    await expect(verifier.verify(operatorToken)).resolves.toMatchObject({ name: 'operator', roles: ['operator'], tiers: null });
    expect(
      readdirSync(join(work, 'secrets'))
        .map((file) => readFileSync(join(work, 'secrets', file), 'utf8'))
        .join('\n'),
    ).not.toContain(operatorToken);
  });

  it('secrets-env.sh sets each VAR from VAR_FILE without putting it in argv, and fails on a file it cannot read', () => {
    const file = join(work, 'password');
    writeFileSync(file, 'pass word\n');
    chmodSync(file, 0o600);
    const printed = sh(join(DOCKER, 'secrets-env.sh'), ['sh', '-c', 'printf "%s|%s" "$PGPASSWORD" "${PGPASSWORD_FILE-unset}"'], {
      PGPASSWORD_FILE: file,
    });
    expect(printed.stdout).toBe('pass word|unset');
    expect(printed.status).toBe(0);
    const missing = sh(join(DOCKER, 'secrets-env.sh'), ['true'], { ROOKERY_CATALOG_URL_FILE: join(work, 'absent') });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`rookery-secrets-env: cannot read ROOKERY_CATALOG_URL_FILE '${join(work, 'absent')}'`);
  });
});

describe('docker/prometheus/prometheus.yml', () => {
  it('scrapes every rookery service of the stack and loads the alert rules mounted beside it', () => {
    const prometheus = parseYaml(read('docker', 'prometheus', 'prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: { static_configs: { targets: string[] }[]; authorization?: { type?: string; credentials_file?: string } }[];
    };
    for (const job of prometheus.scrape_configs) {
      expect(job.authorization).toEqual({ type: 'Bearer', credentials_file: '/run/secrets/prometheus_token' });
    }
    const targets = prometheus.scrape_configs.flatMap((job) => job.static_configs.flatMap((config) => config.targets));
    expect(targets.sort()).toEqual(APPS.map((app) => `${app}:8080`).sort());
    expect(prometheus.rule_files).toEqual(['rookery-alerts.yml']);
    expect(services.prometheus.volumes).toEqual(
      expect.arrayContaining([
        './prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
        './prometheus/rookery-alerts.yml:/etc/prometheus/rookery-alerts.yml:ro',
      ]),
    );
  });
});
