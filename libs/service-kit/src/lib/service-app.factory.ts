import { DynamicModule, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { isRookeryError } from '@rookery/core';

export interface ServiceAppOptions {
  title: string;
  description: string;
  version?: string;
}

/**
 * Finishes a Nest application the way every tier service runs: pino as the Nest logger, OpenAPI at
 * /docs (JSON at /docs-json), shutdown hooks so SIGTERM stops running backups and closes the engine.
 * main.ts and the integration tests both call it, so tests exercise the real setup.
 */
export function configureServiceApp(app: INestApplication, options: ServiceAppOptions): INestApplication {
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder().setTitle(options.title).setDescription(options.description).setVersion(options.version ?? '0.1.0').build(),
  );
  SwaggerModule.setup('docs', app, document);
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
 * service.host:service.port. A failure to start is one line on stderr and exit status 1.
 */
export function runService(options: RunServiceOptions): void {
  const start = async () => {
    const config = loadConfig();
    const app = await NestFactory.create(options.module(config), { bufferLogs: true });
    configureServiceApp(app, options);
    await app.listen(config.service.port, config.service.host);
    app.get(Logger).log(`${options.name} listening on ${await app.getUrl()} (OpenAPI at /docs), config from ${config.source}`);
  };
  start().catch((error: unknown) => {
    const detail = isRookeryError(error)
      ? `${error.message}${error.hint ? ` (${error.hint})` : ''}`
      : error instanceof Error
        ? error.message
        : String(error);
    console.error(`${options.name}: ${detail}`);
    process.exit(1);
  });
}
