import { Command } from 'commander';
import { ReplicationRun, ReplicationStatus, TransitionReport } from '@rookery/engine';
import { replicationEvents } from '@rookery/events';
import { GlobalOptions, configFor, parseTier, parseTime, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { CommandOutcome, Incomplete, reporting } from '../cli.outcome';
import { formatBytes, formatDuration, table } from '../cli.output';

/** `rookery replicate --tier T [--verify]`: copies what each replica region lacks or holds damaged. */
export function replicateCommand(): Command {
  return new Command('replicate')
    .description(
      "copy the tier's backups and WAL to its replica regions (repositories[1..]); what is missing, short or (with --verify) damaged is copied again",
    )
    .requiredOption('--tier <tier>', 'tier to replicate')
    .option('--verify', 're-read every copy in each region and compare its sha256 (finds damaged copies)')
    .option('--json', 'print the run as JSON')
    .action(
      reporting(async (options: GlobalOptions & { verify?: boolean }, command: Command): Promise<CommandOutcome> => {
        const tier = parseTier(options.tier) ?? 'oltp';
        const run = await withEngine(command, (engine) => engine.replicate(tier, { verify: Boolean(options.verify) }));
        await publishCliEvents(configFor(command), replicationEvents(run, CLI_EVENT_SOURCE));
        process.stdout.write(options.json ? `${JSON.stringify(replicationRunJson(run), null, 2)}\n` : describeRun(run));
        return unreplicated(run);
      }),
    );
}

/** `rookery transition --tier T [--dry-run]`: moves old artifacts to colder storage classes per policy. */
export function transitionCommand(): Command {
  return new Command('transition')
    .description("move backup artifacts to colder storage classes by age, per the tier policy's transitions")
    .requiredOption('--tier <tier>', 'tier whose artifacts move')
    .option('--dry-run', 'print what would move, move nothing')
    .option('--json', 'print the report as JSON')
    .option('--now <time>', 'judge ages as of this ISO-8601 time instead of now (what would move next month)')
    .action(
      reporting(async (options: GlobalOptions & { dryRun?: boolean; now?: string }, command: Command): Promise<CommandOutcome> => {
        const tier = parseTier(options.tier) ?? 'oltp';
        const now = parseTime(options.now, '--now');
        const report = await withEngine(command, (engine) => engine.transition(tier, { dryRun: Boolean(options.dryRun), now }));
        process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : describeTransition(report));
        const failed = report.moves.filter((move) => move.done === false);
        if (failed.length === 0) return undefined;
        return new Incomplete(
          `transition of tier ${tier} in ${report.store}: ${failed.length} of ${report.moves.length} artifact(s) did not move, first ${failed[0].key}: ${failed[0].error?.message ?? 'failed'}`,
        );
      }),
    );
}

/** Incomplete when a copy this run should have made is missing: what failed, per region. */
function unreplicated(run: ReplicationRun): CommandOutcome {
  const regions = run.regions.flatMap((region) => {
    const backups = region.backups.filter((backup) => backup.outcome === 'failed').length;
    const wal = region.wal?.failed.length ?? 0;
    const failed = [
      backups && `${backups} backup copy(ies) failed`,
      wal && `${wal} WAL file copy(ies) failed`,
      region.error?.message,
    ].filter(Boolean);
    return failed.length ? [`region ${region.region}: ${failed.join(', ')}`] : [];
  });
  for (const region of run.unconfigured) regions.push(`region ${region}: no repository configured`);
  return regions.length ? new Incomplete(`replication of tier ${run.tier} incomplete: ${regions.join('; ')}`) : undefined;
}

export function replicationRunJson(run: ReplicationRun): Record<string, unknown> {
  return {
    ...run,
    regions: run.regions.map((region) => ({
      ...region,
      error: region.error && { code: region.error.code, message: region.error.message },
      backups: region.backups.map((backup) => ({
        ...backup,
        error: backup.error && { code: backup.error.code, message: backup.error.message },
      })),
      wal: region.wal && {
        ...region.wal,
        failed: region.wal.failed.map((file) => ({ key: file.key, code: file.error.code, message: file.error.message })),
      },
    })),
  };
}

function describeRun(run: ReplicationRun): string {
  const lines: string[] = [];
  for (const region of run.regions) {
    const copied = region.backups.filter((backup) => backup.outcome === 'copied');
    const failed = region.backups.filter((backup) => backup.outcome === 'failed');
    const repaired = region.backups.flatMap((backup) => backup.repaired);
    const bytes =
      copied.reduce((sum, backup) => sum + backup.bytes, 0) + (region.wal?.copied.reduce((sum, file) => sum + file.bytes, 0) ?? 0);
    lines.push(`region ${region.region} (${region.store}):`);
    if (region.error) lines.push(`  failed: ${region.error.message}`);
    const unchecked = region.unchecked ? `, ${region.unchecked} not checked (copied before; the region could not be reached)` : '';
    lines.push(
      `  backups: ${copied.length} copied, ${failed.length} failed, ${region.backups.length - copied.length - failed.length} current${unchecked}; ${repaired.length} damaged artifact(s) re-copied`,
    );
    for (const backup of failed) lines.push(`    ${backup.backupId}: ${backup.error?.message ?? 'failed'}`);
    if (region.wal) {
      lines.push(
        `  wal: ${region.wal.copied.length} copied (${region.wal.repaired.length} re-copied), ${region.wal.failed.length} failed, ${region.wal.checked} checked`,
      );
    } else if (region.error) lines.push('  wal: not copied (the region failed, see above)');
    lines.push(`  ${formatBytes(bytes)} in ${formatDuration(Date.parse(run.finishedAt) - Date.parse(run.startedAt))}`);
  }
  for (const region of run.unconfigured)
    lines.push(`region ${region}: no repository configured (the policy names it; add repositories[i])`);
  if (lines.length === 0) lines.push(`tier ${run.tier} has no replica regions in its policy`);
  return `${lines.join('\n')}\n`;
}

function describeTransition(report: TransitionReport): string {
  if (report.unsupported) return `${report.unsupported}\n`;
  if (report.moves.length === 0) return `nothing to move in ${report.store}\n`;
  const rows = report.moves.map((move) => [
    move.backupId,
    move.artifact,
    `${move.ageDays} d`,
    move.from,
    move.to,
    report.dryRun ? 'would move' : move.done ? 'moved' : `failed: ${move.error?.message ?? ''}`,
  ]);
  return `${table(['backup', 'artifact', 'age', 'from', 'to', 'status'], rows)}\n`;
}

/** The replication part of `rookery info`: per region, copies per backup and the WAL lag. */
export function replicationLines(status: ReplicationStatus): string {
  const lines: string[] = [];
  for (const region of status.regions) {
    const counts = { copied: 0, failed: 0, missing: 0 };
    for (const backup of region.backups) counts[backup.status] += 1;
    lines.push(
      `replication ${status.tier} → ${region.region}${region.store ? ` (${region.store})` : ': no repository configured'}: ${counts.copied} copied, ${counts.failed} failed, ${counts.missing} missing`,
    );
    for (const backup of region.backups.filter((entry) => entry.status !== 'copied')) {
      lines.push(`  ${backup.backupId}: ${backup.status}${backup.error ? ` (${backup.error.message}, at ${backup.at})` : ''}`);
    }
    for (const backup of region.backups.filter((entry) => entry.brokenLink)) {
      lines.push(`  ${backup.backupId}: copied, but CHAIN BROKEN: ${backup.brokenLink}`);
    }
    if (region.wal) {
      lines.push(
        `  wal: ${region.wal.missing} of ${region.wal.primaryFiles} file(s) missing, lag ${formatDuration(region.wal.lagSeconds * 1000)}, newest copied ${region.wal.newest ?? 'none'}`,
      );
    }
    if (region.error) lines.push(`  wal: unknown (${region.error.message})`);
  }
  return lines.join('\n');
}
