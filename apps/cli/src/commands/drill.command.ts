import { Command } from 'commander';
import type { DrillReport } from '@rookery/validation';
import { GlobalOptions, configFor, parseTier, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { load } from '../cli.lazy';
import { formatDuration } from '../cli.output';

export function drillCommand(): Command {
  return new Command('drill')
    .description(
      "restore drill: restore the tier's latest backup into a scratch cluster, check the data, time it against the tier's RTO, clean up",
    )
    .requiredOption('--tier <tier>', 'tier to drill')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--json', 'print the figures as JSON')
    .action(async (options: GlobalOptions & { backup: string }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const { RestoreDrill, createValidationTools, runRecordedDrill } = load.validation();
      const outcome = await withEngine(command, async (engine) =>
        runRecordedDrill(
          new RestoreDrill(engine, createValidationTools(engine.toolkit)),
          tier,
          { backup: options.backup },
          CLI_EVENT_SOURCE,
        ),
      );
      // As the validator's drills: drill.completed, or drill.failed with the reason, before the command fails.
      await publishCliEvents(configFor(command), [outcome.event]);
      if (outcome.report) process.stdout.write(options.json ? `${JSON.stringify(outcome.report, null, 2)}\n` : drillText(outcome.report));
      // A missed RTO is reported, not failed: the restore worked, it was too slow.
      if (!outcome.ok) throw outcome.error;
    });
}

function drillText(report: DrillReport): string {
  const rto = report.ok
    ? `${report.withinRto ? 'RTO met' : 'RTO MISSED'}: restore ${formatDuration(report.restoreMs)} against ${report.rtoSeconds} s`
    : `drill FAILED after ${formatDuration(report.restoreMs)} (RTO ${report.rtoSeconds} s not met)`;
  const lines = [
    `drill of ${report.tier} backup ${report.backupId} (${report.method}, ${report.recovery}): ${rto}; whole drill ${formatDuration(report.totalMs)}`,
  ];
  for (const check of report.checks)
    lines.push(`${check.ok ? 'ok     ' : 'FAILED '} ${check.name}${check.detail ? `: ${check.detail}` : ''}`);
  return `${lines.join('\n')}\n`;
}
