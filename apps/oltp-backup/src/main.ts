import 'reflect-metadata';
import { runService } from '@rookery/service-kit';
import { OltpBackupModule } from './app/oltp-backup.module';

runService({
  name: 'oltp-backup',
  title: 'rookery oltp-backup',
  description: 'Scheduled and on-demand physical base backups of the OLTP tier',
  module: (config) => OltpBackupModule.forRoot({ config }),
});
