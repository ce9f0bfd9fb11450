import 'reflect-metadata';
import { runService } from '@rookery/service-kit';
import { OlapSnapshotModule } from './app/olap-snapshot.module';

runService({
  name: 'olap-snapshot',
  title: 'rookery olap-snapshot',
  description: 'Scheduled and on-demand logical backups (daily full, weekly snapshot kept 365 days) of the OLAP tier',
  module: (config) => OlapSnapshotModule.forRoot({ config }),
});
