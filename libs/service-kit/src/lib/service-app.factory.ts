import { DynamicModule, INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { ConfigError, isRookeryError } from '@rookery/core';
import { BEARER_SCHEME } from './auth/auth.decorator';
import { httpGate } from './auth/http-gate.middleware';
import { connectGrpc, grpcListenerOf } from './grpc/grpc-server';
import { ROOKERY_CONFIG } from './service-kit.constants';

export interface ServiceAppOptions {
  title: string;
  description: string;
  version?: string;
}

/**
 * Finishes a Nest application the way every tier service runs: pino as the Nest logger, the HTTP
 * gate (no foreign origins, JSON bodies only, service.bodyLimitBytes, 413 above), OpenAPI at /docs
 * (JSON at /docs-json) with the bearer scheme, shutdown hooks so SIGTERM stops running backups and
 * closes the engine, and the gRPC listener when service.grpc is set (started by
 * app.startAllMicroservices()). main.ts and the integration tests both call it, so tests exercise
 * the real setup.
 */
export function configureServiceApp(app: INestApplication, options: ServiceAppOptions): INestApplication {
  const config = app.get<RookeryConfig>(ROOKERY_CONFIG, { strict: false });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  // Before the body parsers Nest registers at init: a refused request is never parsed.
  app.use(httpGate(config.service));
  (app as NestExpressApplication).useBodyParser('json', { limit: config.service.bodyLimitBytes });
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(options.title)
      .setDescription(options.description)
      .setVersion(options.version ?? '0.1.0')
      .addBearerAuth(
        { type: 'http', scheme: 'bearer', description: 'a rookery token (rky_…) or a JWT from the configured issuer' },
        BEARER_SCHEME,
      )
      .build(),
  );
  SwaggerModule.setup('docs', app, document);
  // Its TLS files are read now: a bad one fails the start, naming it.
  connectGrpc(app, config.service.grpc);
  return app;
}

export interface RunServiceOptions extends ServiceAppOptions {
  /** The service's name, for the start line and the one-line failure on stderr. */
  name: string;
  /** The app's root module for the loaded configuration. */
  module: (config: RookeryConfig) => DynamicModule;
}

/**
 * A service's main(): load and validate the configuration, build the app, listen on
 * service.host and `--port`, else $PORT, else service.port. A failure to start is one line on
 * stderr and exit status 1: Nest neither aborts nor prints the error's stack from its log buffer.
 */
export function runService(options: RunServiceOptions, argv: readonly string[] = process.argv.slice(2)): void {
  const start = async () => {
    const config = loadConfig({ port: portFlag(argv) });
    const app = await NestFactory.create(options.module(config), { bufferLogs: true, abortOnError: false, autoFlushLogs: false });
    configureServiceApp(app, options);
    app.flushLogs();
    await app.init();
    await app.startAllMicroservices();
    await app.listen(config.service.port, config.service.host);
    const grpc = grpcListenerOf(app);
    const grpcLine = grpc
      ? `, gRPC on ${grpc.address} (${config.service.grpc?.tls ? 'TLS' : 'plaintext'}: ${grpc.services.join(', ')})`
      : '';
    app.get(Logger).log(`${options.name} listening on ${await app.getUrl()} (OpenAPI at /docs)${grpcLine}, config from ${config.source}`);
  };
  start().catch((error: unknown) => {
    console.error(`${options.name}: ${startFailure(error)}`);
    process.exit(1);
  });
}

/** The failure as one line: the message (and hint) of a RookeryError, else the first line of the message. */
export function startFailure(error: unknown): string {
  if (isRookeryError(error)) return `${error.message}${error.hint ? ` (${error.hint})` : ''}`.replace(/\s*\n\s*/g, ' ');
  return (error instanceof Error ? error.message : String(error)).split('\n')[0];
}

/** `--port N` or `--port=N` among a service's arguments; undefined without one. */
export function portFlag(argv: readonly string[]): number | undefined {
  const index = argv.findIndex((arg) => arg === '--port' || arg.startsWith('--port='));
  if (index < 0) return undefined;
  const value = argv[index].startsWith('--port=') ? argv[index].slice('--port='.length) : argv[index + 1];
  if (value === undefined || !/^\d{1,5}$/.test(value)) {
    throw new ConfigError(`--port: '${value ?? ''}' is not a port number (0-65535)`, ['--port'], {
      hint: 'pass --port 8081 or set PORT=8081',
    });
  }
  return Number(value);
}
