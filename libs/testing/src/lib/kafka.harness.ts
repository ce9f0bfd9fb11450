import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { killGroup, startOrphanGuard, track } from './jvm-process';
import { freeLoopbackPort } from './s3proxy.harness';
import { makeTestCertificateAuthority, openssl } from './test-certificates';

/**
 * A real Apache Kafka for tests and local runs (DESIGN §11): Kafka 4.x's jars from Maven Central
 * (fetched once with Maven into ~/.cache/rookery, then reused), one node in KRaft mode acting as
 * broker and controller on free loopback ports, storage formatted in a fresh temp directory. No
 * Docker, no download of the binary distribution: the same jars the distribution ships.
 */
export const KAFKA_VERSION = '4.4.0';
const LOG4J_VERSION = '2.25.5';

export interface KafkaOptions {
  port?: number;
  controllerPort?: number;
  /** Directory for the broker's logs and config; default a fresh temp directory, removed on stop. */
  workDir?: string;
  startTimeoutMs?: number;
  /** Maximum heap of the broker JVM (default 512m). */
  heap?: string;
  /**
   * Leave the broker running when this process exits (tools/kafka `start`): no exit hook and no
   * orphan guard; the caller stops it later by pid. Default false: tests never leak a broker.
   */
  detach?: boolean;
  /**
   * Clients connect over SASL_SSL (SCRAM-SHA-512) instead of PLAINTEXT: a throwaway CA and a
   * broker certificate for 127.0.0.1 are made in the work directory, and the SCRAM user is created
   * when the storage is formatted. The broker's own traffic stays on loopback listeners of its own.
   */
  secured?: boolean;
}

/** How a client reaches a broker started with `secured`. */
export interface KafkaSecurity {
  /** PEM file of the CA that signed the broker's certificate. */
  caFile: string;
  mechanism: 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaHandle {
  /** Bootstrap servers for clients: ['127.0.0.1:PORT']. */
  brokers: string[];
  pid: number;
  workDir: string;
  /** Present when started with `secured`: the CA and the SCRAM credentials clients need. */
  security?: KafkaSecurity;
  stop(): Promise<void>;
}

/** The directory holding Kafka's jars and their dependencies, fetching them with Maven when absent. */
export function ensureKafkaClasspath(version = KAFKA_VERSION): string {
  const home = join(homedir(), '.cache', 'rookery', `kafka-${version}`);
  const lib = join(home, 'lib');
  if (existsSync(join(lib, `kafka_2.13-${version}.jar`)) && existsSync(join(lib, `log4j-slf4j-impl-${LOG4J_VERSION}.jar`))) return lib;
  mkdirSync(home, { recursive: true });
  const pom = join(home, 'pom.xml');
  writeFileSync(pom, kafkaPom(version));
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      pom,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${lib}`,
      '-DincludeScope=runtime',
      `-Dmaven.repo.local=${join(homedir(), '.m2', 'repository')}`,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 },
  );
  if (result.status !== 0 || !existsSync(join(lib, `kafka_2.13-${version}.jar`))) {
    const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`could not fetch kafka ${version} with maven (exit ${result.status}): ${tail || result.error?.message}`);
  }
  return lib;
}

function kafkaPom(version: string): string {
  const dependency = (group: string, artifact: string, v: string) =>
    `<dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${v}</version></dependency>`;
  return `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.rookery</groupId><artifactId>kafka-runtime</artifactId><version>${version}</version><packaging>pom</packaging>
  <dependencies>
    ${dependency('org.apache.kafka', 'kafka_2.13', version)}
    ${dependency('org.apache.logging.log4j', 'log4j-slf4j-impl', LOG4J_VERSION)}
  </dependencies>
</project>
`;
}

/** Starts a single-node KRaft broker and resolves once it serves clients. */
export async function startKafka(options: KafkaOptions = {}): Promise<KafkaHandle> {
  const lib = ensureKafkaClasspath();
  const port = options.port ?? (await freeLoopbackPort());
  let controllerPort = options.controllerPort ?? (await freeLoopbackPort());
  // Kafka refuses two listeners on one port; a caller's chosen port is not bound yet, so the kernel may offer it again.
  while (controllerPort === port) controllerPort = await freeLoopbackPort();
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'rookery-kafka-')));
  const dataDir = join(workDir, 'data');
  await mkdir(dataDir, { recursive: true });
  let security: KafkaSecurity | undefined;
  let listeners: Listeners = { port, controllerPort };
  if (options.secured) {
    let internalPort = await freeLoopbackPort();
    while (internalPort === port || internalPort === controllerPort) internalPort = await freeLoopbackPort();
    const tls = makeBrokerCertificate(join(workDir, 'tls'));
    security = { caFile: tls.caFile, mechanism: 'scram-sha-512', username: 'rookery', password: randomBytes(18).toString('base64url') };
    listeners = { port, controllerPort, secured: { internalPort, keystore: tls.keystoreFile, truststore: tls.caFile } };
  }
  const properties = join(workDir, 'server.properties');
  await writeFile(properties, serverProperties(listeners, dataDir));
  const log4j = join(workDir, 'log4j2.properties');
  await writeFile(log4j, LOG4J_PROPERTIES);

  const classpath = readdirSync(lib)
    .filter((name) => name.endsWith('.jar'))
    .map((name) => join(lib, name))
    .join(':');
  const jvm = [
    '-Xmx' + (options.heap ?? '512m'),
    '-XX:+UseSerialGC',
    '-XX:TieredStopAtLevel=1',
    `-Dlog4j2.configurationFile=${log4j}`,
    '-cp',
    classpath,
  ];

  // A cluster id is 16 random bytes in URL-safe base64, as `kafka-storage random-uuid` prints. It
  // may start with '-': passed as --cluster-id=ID so the argument parser cannot take it for a flag.
  const clusterId = randomBytes(16).toString('base64url');
  const format = spawnSync(
    'java',
    [
      ...jvm,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      `--cluster-id=${clusterId}`,
      '-c',
      properties,
      // The SCRAM user exists from the first start (KRaft keeps credentials in its metadata log).
      ...(security ? ['--add-scram', `SCRAM-SHA-512=[name=${security.username},password=${security.password}]`] : []),
    ],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  if (format.status !== 0) {
    await rm(workDir, { recursive: true, force: true });
    throw new Error(`kafka storage format failed (exit ${format.status}): ${`${format.stdout}${format.stderr}`.trim().slice(-800)}`);
  }

  const child = spawn('java', [...jvm, 'kafka.Kafka', properties], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!options.detach) {
    track(child);
    if (child.pid !== undefined) startOrphanGuard(process.pid, child.pid, workDir);
  }
  let output = '';
  let started = false;
  let spawnError: Error | null = null;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
    if (/Kafka Server started/.test(output)) started = true;
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  child.on('error', (error) => (spawnError = error));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    await killGroup(child, exited);
    await rm(workDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 90_000);
  while (!started) {
    const failure =
      spawnError ?? (child.exitCode !== null || child.signalCode !== null ? new Error(`exit ${child.exitCode ?? child.signalCode}`) : null);
    if (failure || Date.now() > deadline) {
      await stop();
      const why = failure ? `exited before serving (${failure.message})` : `did not start within ${options.startTimeoutMs ?? 90_000} ms`;
      throw new Error(`kafka ${why} on 127.0.0.1:${port}: ${output.trim().slice(-800)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (options.detach) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.unref();
  }
  return { brokers: [`127.0.0.1:${port}`], pid: child.pid as number, workDir, security, stop };
}

interface Listeners {
  port: number;
  controllerPort: number;
  /** Clients on SASL_SSL at `port`; the broker's own (inter-broker) traffic on a loopback PLAINTEXT `internalPort`. */
  secured?: { internalPort: number; keystore: string; truststore: string };
}

function listenerProperties({ port, controllerPort, secured }: Listeners): string[] {
  if (!secured) {
    return [
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      'inter.broker.listener.name=PLAINTEXT',
    ];
  }
  return [
    `listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${secured.internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${secured.internalPort}`,
    'listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=INTERNAL',
    'listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512',
    'listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    // PEM files, no JKS: the key is unencrypted PKCS#8 in a directory only this account reads.
    'listener.name.client.ssl.keystore.type=PEM',
    `listener.name.client.ssl.keystore.location=${secured.keystore}`,
    'listener.name.client.ssl.truststore.type=PEM',
    `listener.name.client.ssl.truststore.location=${secured.truststore}`,
    'listener.name.client.ssl.client.auth=none',
  ];
}

/**
 * A throwaway CA and a broker certificate for 127.0.0.1 (openssl), in `dir`: ca.pem (what
 * clients trust) and broker.pem (the broker's PKCS#8 key followed by its certificate chain).
 */
function makeBrokerCertificate(dir: string): { caFile: string; keystoreFile: string } {
  const ca = makeTestCertificateAuthority(dir);
  const broker = ca.issue('broker', 'serverAuth');
  const pkcs8 = join(dir, 'broker.pk8');
  openssl(dir, ['pkcs8', '-topk8', '-nocrypt', '-in', broker.keyFile, '-out', pkcs8]);
  const keystoreFile = join(dir, 'broker.pem');
  writeFileSync(keystoreFile, [pkcs8, broker.certFile, ca.caFile].map((part) => readFileSync(part, 'utf8')).join(''), {
    mode: 0o600,
  });
  return { caFile: ca.caFile, keystoreFile };
}

function serverProperties(listeners: Listeners, dataDir: string): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${listeners.controllerPort}`,
    ...listenerProperties(listeners),
    'controller.listener.names=CONTROLLER',
    `log.dirs=${dataDir}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Topics are created by rookery's admin client with their settings; a typo must not create one.
    'auto.create.topics.enable=false',
    '',
  ].join('\n');
}

const LOG4J_PROPERTIES = [
  'status = warn',
  'appender.out.type = Console',
  'appender.out.name = out',
  'appender.out.layout.type = PatternLayout',
  'appender.out.layout.pattern = [%d] %p %m (%c)%n',
  'rootLogger.level = warn',
  'rootLogger.appenderRef.out.ref = out',
  // The line startKafka waits for.
  'logger.server.name = kafka.server.KafkaRaftServer',
  'logger.server.level = info',
  '',
].join('\n');
