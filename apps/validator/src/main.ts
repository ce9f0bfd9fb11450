import 'reflect-metadata';
import { resolve } from 'node:path';
import { RookeryConfig } from '@rookery/config';
import { runService } from '@rookery/service-kit';
import { ValidatorModule } from './app/validator.module';

/**
 * How a drill's restored server runs rookery for its restore_command: this node and the CLI of
 * this checkout (dist/apps/validator/src/main.js → bin/rookery.js), with the same configuration.
 */
function selfCommand(config: RookeryConfig): string[] {
  const argv = [process.execPath, resolve(__dirname, '..', '..', '..', '..', 'bin', 'rookery.js')];
  if (config.source !== 'built-in defaults') argv.push('--config', resolve(config.source));
  else for (const url of config.repositories) argv.push('--repo', url);
  return argv;
}

runService({
  name: 'validator',
  title: 'rookery validator',
  description:
    'validates every backup as it lands (checksums, pg_verifybackup / pg_restore --list, WAL continuity) and runs restore drills against each tier’s RTO',
  module: (config) => ValidatorModule.forRoot({ config, selfCommand: selfCommand(config) }),
});
