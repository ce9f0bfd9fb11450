import 'reflect-metadata';
import { rookeryCommand, runService } from '@rookery/service-kit';
import { OltpBackupModule } from './app/oltp-backup.module';

runService({
  name: 'oltp-backup',
  title: 'rookery oltp-backup',
  description: 'Scheduled and on-demand physical base backups of the OLTP tier',
  // Restores through the service write recovery settings that run this checkout's CLI.
  module: (config) => OltpBackupModule.forRoot({ config, selfCommand: rookeryCommand(config, __dirname) }),
});
