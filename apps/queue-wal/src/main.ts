import 'reflect-metadata';
import { runService } from '@rookery/service-kit';
import { QueueWalModule } from './app/queue-wal.module';

runService({
  name: 'queue-wal',
  title: 'rookery queue-wal',
  description: 'Synchronous WAL stream (pg_receivewal) and daily physical base backups of the queue tier',
  module: (config) => QueueWalModule.forRoot({ config }),
});
