import { Command, Option } from 'commander';
import { BackupManifest, BackupType, ConfigError, makeBackupId } from '@rookery/core';
import { BackupRunFacts, backupCompletedEvent, backupFailedEvent, backupStartedEvent } from '@rookery/events';
import { GlobalOptions, configFor, parseTier, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { log } from '../cli.log';
import { backupJson, formatBytes, formatDuration } from '../cli.output';
import { progressReporter } from '../cli.progress';

export function backupCommand(): Command {
  return new Command('backup')
    .description('take a backup of a tier now')
    .requiredOption('--tier <tier>', 'tier to back up (oltp, content, queue, olap)')
    .addOption(new Option('--type <type>', 'backup type').choices(['full', 'incremental', 'snapshot']).default('full'))
    .option('--json', 'print the new backup as JSON')
    .action(async (options: GlobalOptions & { type: string }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const config = configFor(command);
      const progress = progressReporter(!options.json, `backup ${tier}`);
      const startedAt = new Date();
      let repository = '';
      const facts = (): BackupRunFacts => ({
        backupId: makeBackupId(tier, startedAt),
        tier,
        type: options.type as BackupType,
        method: config.tiers[tier].policy.method,
        startedAt: startedAt.toISOString(),
        actor: 'cli',
      });
      let manifest: BackupManifest;
      try {
        manifest = await withEngine(command, (engine) => {
          if (options.type !== 'full' && engine.context.config.tiers[tier].policy.method === 'physical') {
            throw new ConfigError(
              `backup type '${options.type}' is not available for tier '${tier}': physical tiers take full backups (WAL covers the rest)`,
              ['--type'],
            );
          }
          repository = engine.context.repository.store.description;
          return engine
            .backup({ tier, type: options.type as BackupType, onProgress: progress.listener, onWarning: log.warn })
            .finally(progress.stop);
        });
      } catch (error) {
        if (repository)
          await publishCliEvents(config, [
            backupStartedEvent(facts(), CLI_EVENT_SOURCE),
            backupFailedEvent(facts(), error, CLI_EVENT_SOURCE),
          ]);
        throw error;
      }
      const run = { ...facts(), backupId: manifest.id, startedAt: manifest.startedAt };
      await publishCliEvents(config, [
        backupStartedEvent(run, CLI_EVENT_SOURCE),
        backupCompletedEvent(manifest, { actor: 'cli', repository, source: CLI_EVENT_SOURCE }),
      ]);
      process.stdout.write(options.json ? `${JSON.stringify(backupJson(manifest), null, 2)}\n` : describe(manifest));
    });
}

function describe(manifest: BackupManifest): string {
  const ms = Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt);
  const rate = manifest.bytes / Math.max(ms / 1000, 0.001);
  return [
    `backup ${manifest.id} completed`,
    `  tier ${manifest.tier}, ${manifest.type} ${manifest.method}` +
      (manifest.method === 'physical'
        ? `, timeline ${manifest.timeline}, lsn ${manifest.startLsn}..${manifest.stopLsn}`
        : `, artifacts ${manifest.artifacts.map((artifact) => artifact.name).join(', ')}`),
    `  ${formatBytes(manifest.bytes)} → ${formatBytes(manifest.storedBytes)} stored (${(manifest.bytes / Math.max(manifest.storedBytes, 1)).toFixed(2)}x) in ${formatDuration(ms)}, ${formatBytes(rate)}/s`,
    '',
  ].join('\n');
}
