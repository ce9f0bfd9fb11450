import { readFileSync } from 'node:fs';
import type * as Grpc from '@grpc/grpc-js';
import type { MethodDefinition, PackageDefinition } from '@grpc/proto-loader';
import { TIER_NAMES, TierName } from '@rookery/core';
import type { AuthFixture } from './service-auth.harness';
import type { TestCertificate } from './test-certificates';

// grpc-js, proto-loader and the contracts are required when a helper runs, not with this module
// (the CLI loads the harness index for `rookery demo`).

/** What a gRPC call ended with: OK and its messages, or the status a server refused it with. */
export interface GrpcOutcome<Response = Record<string, unknown>> {
  code: Grpc.status;
  details: string;
  /** The answer of a unary call; every message of a server stream. */
  messages: Response[];
  /** rookery-code of the trailing metadata (the error's code), when sent. */
  rookeryCode?: string;
}

/** One rpc of a rookery.v1 service, as the loaded package definition declares it. */
export interface RookeryMethod {
  service: string;
  method: string;
  path: string;
  definition: MethodDefinition<object, object>;
  /** The request message's fields (snake_case, as in the proto). */
  requestFields: string[];
}

/** How a test client reaches the server: plaintext, or TLS trusting `caFile`, optionally with a client certificate. */
export interface GrpcClientOptions {
  caFile?: string;
  clientCertificate?: TestCertificate;
}

export interface GrpcTestClient {
  /** Calls `path` (unary or server stream) with `request`, and `token` as the bearer. */
  call<Response = Record<string, unknown>>(method: RookeryMethod, request: object, token?: string): Promise<GrpcOutcome<Response>>;
  /** Calls rookery.v1.<service>/<method>. */
  rpc<Response = Record<string, unknown>>(service: string, method: string, request: object, token?: string): Promise<GrpcOutcome<Response>>;
  /** grpc.health.v1.Health/Check of `service` ('' for the server), without a token: its status name or the error. */
  health(service?: string): Promise<string>;
  /** The services server reflection lists. */
  reflectedServices(): Promise<string[]>;
  close(): void;
}

function grpc(): typeof Grpc {
  return require('@grpc/grpc-js') as typeof Grpc;
}

/** The rookery.v1 package definition, loaded as servers load it. */
export function rookeryPackageDefinition(): PackageDefinition {
  const { loadSync } = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const contracts = require('@rookery/contracts') as typeof import('@rookery/contracts');
  return loadSync([...contracts.ROOKERY_PROTO_FILES], contracts.PROTO_LOADER_OPTIONS);
}

/** Every rpc of the given rookery.v1 services ('rookery.v1.BackupService'), from the package definition. */
export function rookeryMethods(services: readonly string[]): RookeryMethod[] {
  const definition = rookeryPackageDefinition();
  return services.flatMap((service) => {
    const methods = definition[service] as Record<string, MethodDefinition<object, object>> | undefined;
    if (!methods || 'format' in methods) throw new Error(`${service} is not a service of the rookery.v1 protos`);
    return Object.entries(methods).map(([method, methodDefinition]) => ({
      service,
      method,
      path: methodDefinition.path,
      definition: methodDefinition,
      requestFields: ((methodDefinition.requestType.type as { field?: { name: string }[] }).field ?? []).map((field) => field.name),
    }));
  });
}

/** What the checks read of a service's gRPC listener (service-kit's grpcListenerOf(app)). */
export interface GrpcListenerView {
  /** host:port once started. */
  address: string | null;
  /** The rookery.v1 services served ('rookery.v1.BackupService'). */
  services: readonly string[];
}

/** The address of a started listener; throws when there is none. */
export function grpcAddress(listener: GrpcListenerView | null): string {
  if (!listener?.address) throw new Error('no started gRPC listener: set service.grpc and call app.startAllMicroservices()');
  return listener.address;
}

export function grpcTestClient(address: string, options: GrpcClientOptions = {}): GrpcTestClient {
  const { Client, Metadata, credentials, status } = grpc();
  const channelCredentials = options.caFile
    ? credentials.createSsl(
        readFileSync(options.caFile),
        options.clientCertificate ? readFileSync(options.clientCertificate.keyFile) : null,
        options.clientCertificate ? readFileSync(options.clientCertificate.certFile) : null,
      )
    : credentials.createInsecure();
  const client = new Client(address, channelCredentials);
  const metadataFor = (token?: string) => {
    const metadata = new Metadata();
    if (token) metadata.set('authorization', `Bearer ${token}`);
    return metadata;
  };
  const failed = (error: Grpc.ServiceError, messages: unknown[]): GrpcOutcome<never> => ({
    code: error.code,
    details: error.details,
    messages: messages as never[],
    rookeryCode: error.metadata?.get('rookery-code')[0]?.toString(),
  });
  const call = <Response>(method: RookeryMethod, request: object, token?: string): Promise<GrpcOutcome<Response>> => {
    const { definition } = method;
    if (definition.responseStream) {
      return new Promise((resolve) => {
        const messages: Response[] = [];
        const stream = client.makeServerStreamRequest(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          request,
          metadataFor(token),
        );
        stream.on('data', (message: Response) => messages.push(message));
        stream.on('error', (error: Grpc.ServiceError) => resolve(failed(error, messages)));
        stream.on('end', () => resolve({ code: status.OK, details: '', messages }));
      });
    }
    return new Promise((resolve) =>
      client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        metadataFor(token),
        (error: Grpc.ServiceError | null, response?: object) =>
          resolve(error ? failed(error, []) : { code: status.OK, details: '', messages: [response as Response] }),
      ),
    );
  };
  return {
    call,
    rpc: <Response>(service: string, method: string, request: object, token?: string) => {
      const [found] = rookeryMethods([`rookery.v1.${service}`]).filter((candidate) => candidate.method === method);
      if (!found) throw new Error(`rookery.v1.${service} has no rpc ${method}`);
      return call<Response>(found, request, token);
    },
    health: (service = '') =>
      new Promise((resolve) =>
        client.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          (value: { service: string }) => encodeHealthRequest(value.service),
          (bytes: Buffer) => decodeHealthStatus(bytes),
          { service },
          new Metadata(),
          (error: Grpc.ServiceError | null, answer?: string) =>
            resolve(error ? `error ${status[error.code]}: ${error.details}` : String(answer)),
        ),
      ),
    reflectedServices: () => reflectedServices(client),
    close: () => client.close(),
  };
}

const HEALTH_STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** HealthCheckRequest { string service = 1; } */
function encodeHealthRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  return name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, name.length]), name]);
}

/** HealthCheckResponse { ServingStatus status = 1; } (absent: UNKNOWN). */
function decodeHealthStatus(bytes: Buffer): string {
  return HEALTH_STATUSES[bytes.length >= 2 && bytes[0] === 0x08 ? bytes[1] : 0] ?? `status ${bytes[1]}`;
}

/** grpc.reflection.v1 ServerReflectionInfo with list_services. */
async function reflectedServices(client: Grpc.Client): Promise<string[]> {
  const { loadSync } = require('@grpc/proto-loader') as typeof import('@grpc/proto-loader');
  const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
  const definition = loadSync(reflectionProto, { keepCase: false, defaults: true, oneofs: true });
  const method = (definition['grpc.reflection.v1.ServerReflection'] as Record<string, MethodDefinition<object, object>>)[
    'ServerReflectionInfo'
  ];
  const { Metadata } = grpc();
  return new Promise((resolve, reject) => {
    const stream = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, new Metadata());
    stream.on('data', (response: { listServicesResponse?: { service: { name: string }[] }; errorResponse?: { errorMessage: string } }) => {
      stream.end();
      if (response.listServicesResponse) resolve(response.listServicesResponse.service.map((service) => service.name).sort());
      else reject(new Error(`reflection answered ${JSON.stringify(response)}`));
    });
    stream.on('error', reject);
    stream.write({ listServices: '' });
  });
}

/** Reads: they never change anything, so an auditor may call them (Get…, List…, Watch…, Plan…). */
export function isReadMethod(method: RookeryMethod): boolean {
  return /^(Get|List|Watch|Plan)/.test(method.method);
}

export interface GrpcAuthCheckOptions {
  /** The app's gRPC listener: `() => grpcListenerOf(app)` (service-kit). */
  listener: () => GrpcListenerView | null;
  auth: () => AuthFixture;
  /** The tier requests act on: the service's own, or any one (in the request's `tier`) on a fleet-wide service. */
  tier: TierName;
  /** Methods that act on every tier (no `tier` field): a principal scoped to one tier is refused there ('GetReport'). */
  fleetMethods?: readonly string[];
}

type Check = [string, () => Promise<void>];

/**
 * The authentication checks of an app's gRPC listener, over every rpc of every rookery.v1
 * service it serves (from the package definition), as [name, run] rows for `it.each`: the gRPC
 * twin of serviceAuthChecks. A failing row names each method that answered wrong and how.
 */
export function grpcAuthChecks(options: GrpcAuthCheckOptions): Check[] {
  const { tier } = options;
  const other = TIER_NAMES.find((candidate) => candidate !== tier) as TierName;
  const { status } = grpc();
  // One client per check, closed after it: rows may run alone (jest -t).
  let client: GrpcTestClient | undefined;
  const connected = () => (client ??= grpcTestClient(grpcAddress(options.listener())));
  const closing = (run: () => Promise<void>) => () =>
    run().finally(() => {
      client?.close();
      client = undefined;
    });
  const served = () => options.listener()?.services ?? [];
  const methods = () => rookeryMethods(served());
  const fleet = (method: RookeryMethod) => (options.fleetMethods ?? []).includes(method.method);
  const request = (method: RookeryMethod) => (method.requestFields.includes('tier') ? { tier } : {});
  const expectAll = async (what: string, subset: RookeryMethod[], token: string | undefined, expected: (code: Grpc.status) => boolean) => {
    const wrong: string[] = [];
    for (const method of subset) {
      const outcome = await connected().call(method, request(method), token);
      if (!expected(outcome.code)) wrong.push(`${method.path}: ${status[outcome.code]} ${outcome.details}`);
    }
    if (wrong.length) throw new Error(`${what}:\n${wrong.join('\n')}`);
  };
  const refused = (code: Grpc.status) => (answered: Grpc.status) => answered === code;
  const passed = (answered: Grpc.status) => answered !== status.UNAUTHENTICATED && answered !== status.PERMISSION_DENIED;
  const auth = () => options.auth();

  const checks: Check[] = [
    [
      'serves rookery.v1 services with methods',
      async () => {
        if (methods().length === 0) throw new Error(`no rookery.v1 methods served: ${JSON.stringify(served())}`);
      },
    ],
    [
      'answers grpc.health.v1 Check SERVING without a token',
      async () => {
        const answers = [await connected().health(''), ...(await Promise.all(served().map((name) => connected().health(name))))];
        if (answers.some((answer) => answer !== 'SERVING')) throw new Error(`health: ${answers.join(', ')}`);
      },
    ],
    [
      'lists the served services, health and reflection through server reflection',
      async () => {
        const listed = await connected().reflectedServices();
        const expected = [...served(), 'grpc.health.v1.Health'].sort();
        if (JSON.stringify(listed.filter((name) => !name.startsWith('grpc.reflection.'))) !== JSON.stringify(expected))
          throw new Error(`reflection lists ${listed.join(', ')}; expected ${expected.join(', ')}`);
      },
    ],
    [
      'refuses every method without a token: UNAUTHENTICATED',
      () => expectAll('methods taking a call without a token', methods(), undefined, refused(status.UNAUTHENTICATED)),
    ],
    [
      'refuses an expired JWT on every method: UNAUTHENTICATED',
      () =>
        expectAll(
          'methods taking an expired JWT',
          methods(),
          auth().jwt('alice', ['operator'], { exp: Math.floor(Date.now() / 1000) - 3600 }),
          refused(status.UNAUTHENTICATED),
        ),
    ],
    [
      'refuses a JWT signed by an untrusted key on every method: UNAUTHENTICATED',
      () => expectAll('methods taking a forged JWT', methods(), auth().forged('mallory', ['operator']), refused(status.UNAUTHENTICATED)),
    ],
    [
      'refuses an unknown static token on every method: UNAUTHENTICATED',
      () => {
        const known = auth().tokens['operator'];
        const unknown = `${known.slice(0, -4)}${known.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
        return expectAll('methods taking an unknown static token', methods(), unknown, refused(status.UNAUTHENTICATED));
      },
    ],
    [
      'refuses a valid token without a rookery role on every method: PERMISSION_DENIED',
      () => expectAll('methods taking a token without a role', methods(), auth().jwt('bob', ['viewer']), refused(status.PERMISSION_DENIED)),
    ],
    [
      'refuses an auditor on every write method (PERMISSION_DENIED) and lets it call every read',
      async () => {
        const all = methods();
        await expectAll(
          'write methods taking an auditor',
          all.filter((method) => !isReadMethod(method)),
          auth().tokens['auditor'],
          refused(status.PERMISSION_DENIED),
        );
        await expectAll('read methods refusing an auditor', all.filter(isReadMethod), auth().tokens['auditor'], passed);
      },
    ],
    [
      `refuses an operator and an auditor scoped to another tier (${other}) on every method: PERMISSION_DENIED`,
      async () => {
        await expectAll(
          'methods taking an operator of another tier',
          methods(),
          auth().tokens[`operator-${other}`],
          refused(status.PERMISSION_DENIED),
        );
        await expectAll(
          'methods taking an auditor of another tier',
          methods(),
          auth().tokens[`auditor-${other}`],
          refused(status.PERMISSION_DENIED),
        );
        const scopedJwt = auth().jwt('carol', ['operator'], { rookery_tiers: [other] });
        await expectAll('methods taking a JWT operator of another tier', methods(), scopedJwt, refused(status.PERMISSION_DENIED));
      },
    ],
    [
      `lets an auditor scoped to the tier (${tier}) and a service token call every read that acts on it`,
      async () => {
        const reads = methods().filter(isReadMethod);
        await expectAll(
          'reads refusing a tier auditor',
          reads.filter((method) => !fleet(method)),
          auth().tokens[`auditor-${tier}`],
          passed,
        );
        await expectAll(
          'fleet-wide reads taking a tier auditor',
          reads.filter(fleet),
          auth().tokens[`auditor-${tier}`],
          refused(status.PERMISSION_DENIED),
        );
        await expectAll('reads refusing a service token', reads, auth().tokens['service'], passed);
      },
    ],
  ];
  return checks.map(([name, run]) => [name, closing(run)]);
}
