import 'reflect-metadata';
import { rookeryCommand, runService } from '@rookery/service-kit';
import { QueueWalModule } from './app/queue-wal.module';

runService({
  name: 'queue-wal',
  title: 'rookery queue-wal',
  description: 'Synchronous WAL stream (pg_receivewal) and daily physical base backups of the queue tier',
  // Restores through the service write recovery settings that run this checkout's CLI.
  module: (config) => QueueWalModule.forRoot({ config, selfCommand: rookeryCommand(config, __dirname) }),
});
