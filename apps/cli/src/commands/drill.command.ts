import { Command } from 'commander';
import type { DrillReport } from '@rookery/validation';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { load } from '../cli.lazy';
import { formatDuration } from '../cli.output';

export function drillCommand(): Command {
  return new Command('drill')
    .description("restore drill: restore the tier's latest backup into a scratch cluster, check the data, time it against the tier's RTO, clean up")
    .requiredOption('--tier <tier>', 'tier to drill')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--json', 'print the figures as JSON')
    .action(async (options: GlobalOptions & { backup: string }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const { DrillFailedError, RestoreDrill, createValidationTools } = load.validation();
      const report = await withEngine(command, async (engine) => new RestoreDrill(engine, await createValidationTools(engine.context.config)).run(tier, { backup: options.backup }));
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : drillText(report));
      // A missed RTO is reported, not failed: the restore worked, it was too slow.
      if (!report.ok) throw new DrillFailedError(report);
    });
}

function drillText(report: DrillReport): string {
  const rto = report.ok
    ? `${report.withinRto ? 'RTO met' : 'RTO MISSED'}: restore ${formatDuration(report.restoreMs)} against ${report.rtoSeconds} s`
    : `drill FAILED after ${formatDuration(report.restoreMs)} (RTO ${report.rtoSeconds} s not met)`;
  const lines = [`drill of ${report.tier} backup ${report.backupId} (${report.method}, ${report.recovery}): ${rto}; whole drill ${formatDuration(report.totalMs)}`];
  for (const check of report.checks) lines.push(`${check.ok ? 'ok     ' : 'FAILED '} ${check.name}${check.detail ? `: ${check.detail}` : ''}`);
  return `${lines.join('\n')}\n`;
}
