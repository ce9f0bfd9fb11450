import 'reflect-metadata';
import { runService } from '@rookery/service-kit';
import { ContentBackupModule } from './app/content-backup.module';

runService({
  name: 'content-backup',
  title: 'rookery content-backup',
  description: 'Scheduled and on-demand logical backups (full and incremental) of the content tier',
  module: (config) => ContentBackupModule.forRoot({ config }),
});
