import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { killGroup, startOrphanGuard, track } from './jvm-process';
import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { AddressInfo, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real S3-compatible server for integration tests: S3Proxy (Maven Central, org.gaul:s3proxy)
 * on a free loopback port with the jclouds filesystem backend and AWS v2/v4 authorization, so
 * wrong credentials are actually refused. Two instances stand for the two regions (DESIGN §11).
 */

export const S3PROXY_VERSION = '2.6.0';
export const TEST_S3_ACCESS_KEY_ID = 'rookery-test-identity';
export const TEST_S3_SECRET_ACCESS_KEY = 'rookery-test-credential-0123456789';
/** A bucket the global setup creates on both servers, for suites that need no bucket of their own. */
export const TEST_S3_BUCKET = 'rookery-test';

export type S3Region = 'primary' | 'secondary';

export interface S3ProxyOptions {
  /** Region name the clients sign with; S3Proxy accepts any. Default 'us-east-1'. */
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Loopback port; default a free one. */
  port?: number;
  /** Directory for the filesystem backend; default a fresh temp directory, removed on stop. */
  baseDir?: string;
  /** Buckets to create once the server answers. */
  buckets?: readonly string[];
  /**
   * Accept and ignore x-amz headers S3Proxy does not implement (server-side encryption, the SDK's
   * x-amz-checksum-mode and CRC32 trailers) instead of answering 501 NotImplemented. Default true:
   * production talks to AWS S3, which implements them all.
   */
  ignoreUnknownHeaders?: boolean;
  startTimeoutMs?: number;
}

export interface S3ProxyHandle {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Endpoint and credentials of a running server; what the global setup publishes. */
export type S3Endpoint = Omit<S3ProxyHandle, 'createBucket' | 'stop'>;

/** Path of the S3Proxy jar in the local Maven repository, fetching it with Maven when absent. */
export function ensureS3ProxyJar(version = S3PROXY_VERSION): string {
  const repository = join(homedir(), '.m2', 'repository');
  const jar = join(repository, 'org/gaul/s3proxy', version, `s3proxy-${version}-jar-with-dependencies.jar`);
  if (existsSync(jar)) return jar;
  const result = spawnSync(
    'mvn',
    [
      '-q',
      '-B',
      'dependency:get',
      `-Dartifact=org.gaul:s3proxy:${version}:jar:jar-with-dependencies`,
      '-Dtransitive=false',
      // Java's user.home need not be $HOME: name the repository so the jar lands where we look.
      `-Dmaven.repo.local=${repository}`,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 },
  );
  if (result.status !== 0 || !existsSync(jar)) {
    const tail = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-5).join(' | ');
    throw new Error(`could not fetch s3proxy ${version} with maven (exit ${result.status}): ${tail || result.error?.message}`);
  }
  return jar;
}

/**
 * A loopback port nothing listens on now and that this process has not handed out before: a caller
 * may hold a port without binding it yet (a test that first shows a service unreachable, then
 * starts it there), and the kernel can offer that same port again to the next caller.
 */
export async function freeLoopbackPort(): Promise<number> {
  for (;;) {
    const port = await unboundLoopbackPort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

const handedOut = new Set<number>();

function unboundLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startS3Proxy(options: S3ProxyOptions = {}): Promise<S3ProxyHandle> {
  const jar = ensureS3ProxyJar();
  const region = options.region ?? 'us-east-1';
  const accessKeyId = options.accessKeyId ?? TEST_S3_ACCESS_KEY_ID;
  const secretAccessKey = options.secretAccessKey ?? TEST_S3_SECRET_ACCESS_KEY;
  const port = options.port ?? (await freeLoopbackPort());
  const workDir = await mkdtemp(join(tmpdir(), 'rookery-s3proxy-'));
  const baseDir = options.baseDir ?? join(workDir, 'data');
  const endpoint = `http://127.0.0.1:${port}`;

  const properties = join(workDir, 's3proxy.conf');
  await writeFile(
    properties,
    [
      `s3proxy.endpoint=${endpoint}`,
      's3proxy.authorization=aws-v2-or-v4',
      `s3proxy.ignore-unknown-headers=${options.ignoreUnknownHeaders ?? true}`,
      `s3proxy.identity=${accessKeyId}`,
      `s3proxy.credential=${secretAccessKey}`,
      'jclouds.provider=filesystem',
      `jclouds.filesystem.basedir=${baseDir}`,
      'jclouds.identity=unused',
      'jclouds.credential=unused',
      '',
    ].join('\n'),
  );
  await mkdir(baseDir, { recursive: true });

  const child = spawn(
    'java',
    ['-XX:TieredStopAtLevel=1', '-Xshare:auto', '-XX:+UseSerialGC', '-Xmx512m', '-jar', jar, '--properties', properties],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  track(child);
  if (child.pid !== undefined) {
    // jest sandboxes never fire process exit hooks, and a killed run fires none at all: a watcher
    // process stops the JVM and removes its data once this process is gone.
    // Self-contained (no @rookery imports): the jest global setup loads this file without the
    // workspace's path mapping.
    startOrphanGuard(process.pid, child.pid, workDir);
  }
  let output = '';
  let spawnFailed = false;
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.on('error', (error) => {
    output += `\n${error.message} (is java 17 on PATH?)`;
    spawnFailed = true;
  });
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const stop = async () => {
    await killGroup(child, exited);
    await rm(workDir, { recursive: true, force: true });
  };

  try {
    await waitForHttp(
      endpoint,
      child,
      options.startTimeoutMs ?? 60_000,
      () => output,
      () => spawnFailed,
    );
  } catch (error) {
    await stop();
    throw error;
  }

  const handle: S3ProxyHandle = {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    createBucket: (name) => createBucketV2(endpoint, accessKeyId, secretAccessKey, name),
    stop,
  };
  try {
    for (const bucket of options.buckets ?? []) await handle.createBucket(bucket);
  } catch (error) {
    await stop();
    throw error;
  }
  return handle;
}

async function waitForHttp(
  endpoint: string,
  child: ChildProcess,
  timeoutMs: number,
  output: () => string,
  spawnFailed: () => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (spawnFailed() || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `s3proxy exited before answering on ${endpoint} (${child.exitCode ?? child.signalCode}): ${output().trim().slice(-800)}`,
      );
    }
    if (await answers(endpoint)) return;
    if (Date.now() > deadline) {
      throw new Error(`s3proxy did not answer on ${endpoint} within ${timeoutMs} ms: ${output().trim().slice(-800)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(`${endpoint}/`, { method: 'GET', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** PUT bucket signed with AWS signature v2 (S3Proxy accepts v2 or v4); no SDK in this lib. */
function createBucketV2(endpoint: string, accessKeyId: string, secretAccessKey: string, name: string): Promise<void> {
  const date = new Date().toUTCString();
  const signature = createHmac('sha1', secretAccessKey).update(`PUT\n\n\n${date}\n/${name}`).digest('base64');
  return new Promise((resolve, reject) => {
    const req = request(
      `${endpoint}/${name}`,
      { method: 'PUT', headers: { Date: date, Authorization: `AWS ${accessKeyId}:${signature}`, 'Content-Length': 0 } },
      (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => {
          const ok = (res.statusCode ?? 0) < 300 || body.includes('BucketAlreadyOwnedByYou');
          if (ok) resolve();
          else reject(new Error(`could not create bucket '${name}' on ${endpoint}: http ${res.statusCode} ${body.slice(0, 300)}`));
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A rookery store URL for a bucket and prefix on a test server (credentials stay out of it). */
export function s3StoreUrl(server: S3Endpoint, bucket: string = TEST_S3_BUCKET, prefix = ''): string {
  const query = new URLSearchParams({ region: server.region, endpoint: server.endpoint, forcePathStyle: 'true' });
  return `s3://${bucket}/${prefix}?${query.toString()}`;
}

const ENV_PREFIX = 'ROOKERY_TEST_S3';

function envKey(region: S3Region, field: string): string {
  return `${ENV_PREFIX}_${region.toUpperCase()}_${field}`;
}

/** Publishes a running server for the test workers (called by the jest global setup). */
export function publishSharedS3(region: S3Region, server: S3Endpoint): void {
  process.env[envKey(region, 'ENDPOINT')] = server.endpoint;
  process.env[envKey(region, 'REGION')] = server.region;
  process.env[envKey(region, 'ACCESS_KEY_ID')] = server.accessKeyId;
  process.env[envKey(region, 'SECRET_ACCESS_KEY')] = server.secretAccessKey;
}

export function isSharedS3Published(region: S3Region = 'primary'): boolean {
  return Boolean(process.env[envKey(region, 'ENDPOINT')]);
}

/**
 * The server the jest global setup started for `region`. Its lifetime is the whole run: `stop()`
 * does nothing here. Throws when the global setup did not run (single-project jest runs): use
 * `acquireS3` in suites that must work both ways.
 */
export function sharedS3(region: S3Region): S3ProxyHandle {
  const endpoint = process.env[envKey(region, 'ENDPOINT')];
  const accessKeyId = process.env[envKey(region, 'ACCESS_KEY_ID')];
  const secretAccessKey = process.env[envKey(region, 'SECRET_ACCESS_KEY')];
  if (!endpoint || !accessKeyId || !secretAccessKey) {
    throw new Error(`no shared s3 server published for region '${region}': run jest from the root config, or use acquireS3()`);
  }
  const regionName = process.env[envKey(region, 'REGION')] ?? 'us-east-1';
  return {
    endpoint,
    region: regionName,
    accessKeyId,
    secretAccessKey,
    createBucket: (name) => createBucketV2(endpoint, accessKeyId, secretAccessKey, name),
    stop: async () => undefined,
  };
}

/** The shared server when the global setup published one, else a server started for this suite. */
export async function acquireS3(region: S3Region = 'primary', options: S3ProxyOptions = {}): Promise<S3ProxyHandle> {
  if (isSharedS3Published(region)) return sharedS3(region);
  return startS3Proxy(options);
}
