import { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';

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
