import { Command } from 'commander';
import { ConfigError } from '@rookery/core';
import { ExpireResult } from '@rookery/engine';
import { retentionExpiredEvent } from '@rookery/events';
import { GlobalOptions, configFor, parseTier, parseTime, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { CommandOutcome, Incomplete, reporting } from '../cli.outcome';
import { formatBytes } from '../cli.output';
import { serviceClientOf } from '../service/service-client';
import { serviceRetentionPlan } from '../service/service-commands';

export function expireCommand(): Command {
  return new Command('expire')
    .description(
      "delete what the tier's retention policy no longer keeps: old backups (never the newest full, a held one, or a parent of a kept one) and the WAL no kept backup needs",
    )
    .requiredOption('--tier <tier>', 'tier to expire')
    .option('--dry-run', 'print what would go and why; delete nothing')
    .option('--json', 'print the whole plan (every expired object, every kept backup and WAL range, with reasons) as JSON')
    .option('--now <time>', 'judge retention as of this ISO-8601 time instead of now (what would go next month)')
    .action(
      reporting(async (options: GlobalOptions & { dryRun?: boolean; now?: string }, command: Command): Promise<CommandOutcome> => {
        const tier = parseTier(options.tier) ?? 'oltp';
        const service = await serviceClientOf(command);
        if (service) {
          const plan = await serviceRetentionPlan(service, tier, options);
          process.stdout.write(options.json ? `${JSON.stringify(plan, null, 2)}\n` : expireText(plan));
          return undefined;
        }
        const now = requireNowNotAhead(parseTime(options.now, '--now'), options.dryRun === true, new Date());
        const result = await withEngine(command, (engine) => engine.expire({ tier, dryRun: options.dryRun === true, now }));
        if (!result.dryRun && (result.deleted.backups.length > 0 || result.deleted.objects > 0)) {
          await publishCliEvents(configFor(command), [retentionExpiredEvent(result, CLI_EVENT_SOURCE)]);
        }
        process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : expireText(result));
        return expireOutcome(result);
      }),
    );
}

/**
 * --now judges retention as of another time. Later than the clock it would delete what is still
 * inside retention today, so it only plans (--dry-run); an earlier time only keeps more.
 */
export function requireNowNotAhead(now: Date | undefined, dryRun: boolean, clock: Date): Date | undefined {
  if (!now || dryRun || now.getTime() <= clock.getTime()) return now;
  throw new ConfigError(
    `--now ${now.toISOString()} is later than the clock (${clock.toISOString()}); a future time is accepted only with --dry-run`,
    ['--now'],
    {
      hint: 'add --dry-run to see what would go then; expire deletes only what retention no longer keeps now',
    },
  );
}

/**
 * Incomplete when the run stopped before deleting all it planned: a backup placed under legal hold
 * during the run stops it (the held backup may need older WAL or parents), so the backups after it
 * and the WAL stay until the next run plans with the hold.
 */
export function expireOutcome(result: ExpireResult): CommandOutcome {
  const [held, ...rest] = result.skipped;
  if (!held) return undefined;
  return new Incomplete(
    `expire of tier ${result.tier} stopped: backup ${held.id} was ${held.reason}; ${rest.length} more backup(s) and ${result.plan.expire.wal.length} WAL file(s) were not expired this run: run expire again`,
  );
}

export function expireText(result: ExpireResult): string {
  const { plan } = result;
  const lines = [
    `expire of tier ${result.tier} as of ${plan.now}${result.dryRun ? ' (dry run: nothing deleted)' : ''}: ` +
      `${plan.expire.backups.length} backups, ${plan.expire.wal.length} WAL files, ${plan.expire.orphans.length} orphan folders, ${formatBytes(plan.bytesFreed)}`,
  ];
  for (const backup of plan.expire.backups) lines.push(`expire  ${backup.id}  ${backup.type}  ${backup.reason}`);
  for (const range of walRanges(plan.expire.wal))
    lines.push(`expire  WAL ${range.first}${range.count > 1 ? ` .. ${range.last} (${range.count} files)` : ''}  ${range.reason}`);
  for (const orphan of plan.expire.orphans) lines.push(`expire  ${orphan.folder} (${orphan.objects} objects)  ${orphan.reason}`);
  for (const backup of plan.keep.backups) lines.push(`keep    ${backup.id}  ${backup.type}  ${backup.reasons.join('; ')}`);
  for (const range of plan.keep.wal)
    lines.push(`keep    WAL ${range.first}${range.files > 1 ? ` .. ${range.last} (${range.files} files)` : ''}  ${range.reason}`);
  for (const orphan of plan.keep.orphans) lines.push(`keep    ${orphan.folder}  ${orphan.reason}`);
  lines.push(`local copies: ${plan.localCopies.note}`);
  lines.push(`object lock: ${result.objectLock.detail}`);
  for (const entry of result.damaged) lines.push(`warning: damaged manifest ${entry.key} is never expired: ${entry.problem}`);
  for (const entry of result.skipped) lines.push(`skipped ${entry.id}: ${entry.reason}`);
  if (!result.dryRun) {
    lines.push(
      `deleted ${result.deleted.backups.length} backups, ${result.deleted.walFiles} WAL files, ${result.deleted.orphanFolders} orphan folders: ${result.deleted.objects} objects, ${formatBytes(result.deleted.bytes)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Expired WAL in runs of the same reason (--json lists every file). */
function walRanges(files: ExpireResult['plan']['expire']['wal']): { first: string; last: string; count: number; reason: string }[] {
  const ranges: { first: string; last: string; count: number; reason: string }[] = [];
  for (const file of files) {
    const last = ranges.at(-1);
    if (last && last.reason === file.reason) {
      last.last = file.name;
      last.count++;
    } else ranges.push({ first: file.name, last: file.name, count: 1, reason: file.reason });
  }
  return ranges;
}
