import { Command, Option } from 'commander';
import type { BackupLifecycleSink } from '@rookery/engine';
import { CloudEvent } from '@rookery/events';
import { GlobalOptions, configFor, parseTier, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { log } from '../cli.log';
import { backupJson, describeBackup } from '../cli.output';
import { progressReporter } from '../cli.progress';
import { serviceClientOf } from '../service/service-client';
import { serviceBackup } from '../service/service-commands';

export function backupCommand(): Command {
  return new Command('backup')
    .description('take a backup of a tier now')
    .requiredOption('--tier <tier>', 'tier to back up (oltp, content, queue, olap)')
    .addOption(
      new Option(
        '--type <type>',
        "backup type: incremental stores what changed since the tier's previous backup (oltp: changed pages; content: changed rows)",
      )
        .choices(['full', 'incremental', 'snapshot'])
        .default('full'),
    )
    .option('--json', 'print the new backup as JSON')
    .action(async (options: GlobalOptions & { type: string }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const service = await serviceClientOf(command);
      if (service) return serviceBackup(service, tier, options);
      const config = configFor(command);
      const progress = progressReporter(!options.json, `backup ${tier}`);
      // The run's lifecycle events are published once the command is done, whatever its outcome.
      const events: CloudEvent[] = [];
      const lifecycle: BackupLifecycleSink = {
        source: CLI_EVENT_SOURCE,
        started: async (event) => void events.push(event),
        completed: async (event) => void events.push(event),
        failed: async (event) => void events.push(event),
      };
      const manifest = await withEngine(command, async (engine) => {
        try {
          const run = engine.backupRun({ tier, type: options.type, actor: 'cli' }, lifecycle);
          await run.start();
          return await run.finish({ onProgress: progress.listener, onWarning: log.warn });
        } finally {
          progress.stop();
        }
      }).finally(() => publishCliEvents(config, events));
      process.stdout.write(options.json ? `${JSON.stringify(backupJson(manifest), null, 2)}\n` : describeBackup(manifest));
    });
}
