import 'reflect-metadata';
import { rookeryCommand, runService } from '@rookery/service-kit';
import { ValidatorModule } from './app/validator.module';

runService({
  name: 'validator',
  title: 'rookery validator',
  description:
    'validates every backup as it lands (checksums, pg_verifybackup / pg_restore --list, WAL continuity) and runs restore drills against each tier’s RTO',
  module: (config) => ValidatorModule.forRoot({ config, selfCommand: rookeryCommand(config, __dirname) }),
});
