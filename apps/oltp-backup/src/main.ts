import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { loadConfig } from '@rookery/config';
import { isRookeryError } from '@rookery/core';
import { configureServiceApp } from '@rookery/service-kit';
import { OltpBackupModule } from './app/oltp-backup.module';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await NestFactory.create(OltpBackupModule.forRoot({ config }), { bufferLogs: true });
  configureServiceApp(app, {
    title: 'rookery oltp-backup',
    description: 'Scheduled and on-demand physical base backups of the OLTP tier',
  });
  await app.listen(config.service.port, config.service.host);
  app.get(Logger).log(`oltp-backup listening on ${await app.getUrl()} (OpenAPI at /docs), config from ${config.source}`);
}

bootstrap().catch((error: unknown) => {
  const line = isRookeryError(error)
    ? `oltp-backup: ${error.message}${error.hint ? ` (${error.hint})` : ''}`
    : `oltp-backup: ${error instanceof Error ? error.message : String(error)}`;
  console.error(line);
  process.exit(1);
});
