import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { INestApplication } from '@nestjs/common';
import { ServerGrpc } from '@nestjs/microservices';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { PackageDefinition, loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { ServiceGrpcConfig } from '@rookery/config';
import { PROTO_LOADER_OPTIONS, ROOKERY_PROTO_FILES, ROOKERY_PROTO_PACKAGE } from '@rookery/contracts';
import { ConfigError } from '@rookery/core';

const HEALTH_SERVICE = 'grpc.health.v1.Health';

/**
 * The gRPC listener of a service (Nest's gRPC transport on @grpc/grpc-js) serving the rookery.v1
 * services the app has handlers for, and nothing else: a service with no handler here is not
 * added, so reflection and clients see what this app really offers. Beside them grpc.health.v1
 * (SERVING from start until shutdown; no token: probes call it) and server reflection.
 */
export class RookeryGrpcServer extends ServerGrpc {
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING' });
  private readonly definition: PackageDefinition;
  private boundPort: number | null = null;
  private servedNames: string[] = [];

  constructor(
    private readonly listener: ServiceGrpcConfig,
    private readonly serverCredentials: ServerCredentials,
  ) {
    const definition = loadSync([...ROOKERY_PROTO_FILES], PROTO_LOADER_OPTIONS);
    super({ package: ROOKERY_PROTO_PACKAGE, packageDefinition: definition, url: hostPort(listener.host, listener.port) });
    this.definition = definition;
  }

  /** host:port the listener is bound to (the port the system chose for port 0); null before start. */
  get address(): string | null {
    return this.boundPort === null ? null : hostPort(this.listener.host, this.boundPort);
  }

  /** Fully qualified names of the rookery.v1 services served ('rookery.v1.BackupService'). */
  get services(): readonly string[] {
    return this.servedNames;
  }

  /** Nest's own, but keeping the port bound (Nest drops it) and with the credentials from the files. */
  override async createClient(): Promise<Server> {
    const server = new Server();
    this.boundPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(hostPort(this.listener.host, this.listener.port), this.serverCredentials, (error, port) =>
        error
          ? reject(new Error(`cannot listen for gRPC on ${hostPort(this.listener.host, this.listener.port)}: ${error.message}`))
          : resolve(port),
      ),
    );
    return server;
  }

  /** Only the services this app has a handler for. */
  override getServiceNames(grpcPkg: unknown): { name: string; service: unknown }[] {
    const handled = new Set([...this.messageHandlers.keys()].map(grpcServiceOf));
    const offered = super.getServiceNames(grpcPkg).filter((definition) => handled.has(definition.name));
    this.servedNames = offered.map((definition) => `${ROOKERY_PROTO_PACKAGE}.${definition.name}`);
    return offered;
  }

  /** Adds the handled services (Nest), then reflection and health, which says SERVING from now on. */
  override async start(callback?: () => void): Promise<void> {
    await this.bindEvents();
    const health = loadSync(healthProtoPath, { keepCase: true });
    new ReflectionService({ ...this.definition, ...health }, { services: [...this.servedNames, HEALTH_SERVICE] }).addToServer(
      this.grpcClient,
    );
    this.health.addToServer(this.grpcClient);
    for (const name of ['', ...this.servedNames]) this.health.setStatus(name, 'SERVING');
    callback?.();
  }

  override async close(): Promise<void> {
    for (const name of ['', ...this.servedNames]) this.health.setStatus(name, 'NOT_SERVING');
    await super.close();
  }
}

/**
 * The server's credentials from service.grpc.tls: its certificate and key, and with clientCaFile
 * the CA client certificates are checked against (required with requireClientCert). The files are
 * read and checked now, so a missing, unreadable or mismatched one fails the start naming it.
 * Plaintext only when no tls is configured.
 */
export function grpcServerCredentials(listener: ServiceGrpcConfig): ServerCredentials {
  const { tls } = listener;
  if (!tls) return ServerCredentials.createInsecure();
  const cert = readPem(tls.certFile, 'certFile');
  const key = readPem(tls.keyFile, 'keyFile');
  const ca = tls.clientCaFile ? readPem(tls.clientCaFile, 'clientCaFile') : null;
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (error) {
    throw new ConfigError(
      `service.grpc.tls: ${tls.certFile}, ${tls.keyFile}${ca ? ` or ${tls.clientCaFile}` : ''} is not usable: ${(error as Error).message}`,
      ['service.grpc.tls'],
      { hint: 'certFile and keyFile must be PEM and belong together, clientCaFile a PEM certificate' },
    );
  }
  return ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], tls.requireClientCert);
}

function readPem(file: string, field: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`service.grpc.tls.${field}: cannot read ${file}: ${reason}`, [`service.grpc.tls.${field}`]);
  }
}

/** The service a @GrpcMethod pattern ('{"service":"BackupService","rpc":…}') names; null for another pattern. */
function grpcServiceOf(pattern: string): string | null {
  try {
    const parsed = JSON.parse(pattern) as { service?: unknown };
    return typeof parsed.service === 'string' ? parsed.service : null;
  } catch {
    return null;
  }
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const listeners = new WeakMap<INestApplication, RookeryGrpcServer>();

/**
 * Adds the gRPC listener service.grpc describes to the app (nothing without one); it starts with
 * app.startAllMicroservices(). Global guards, interceptors and filters apply to it as to REST.
 */
export function connectGrpc(app: INestApplication, listener: ServiceGrpcConfig | null): RookeryGrpcServer | null {
  if (!listener) return null;
  const server = new RookeryGrpcServer(listener, grpcServerCredentials(listener));
  app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
  listeners.set(app, server);
  return server;
}

/** The app's gRPC listener (connectGrpc), or null when it has none. */
export function grpcListenerOf(app: INestApplication): RookeryGrpcServer | null {
  return listeners.get(app) ?? null;
}
