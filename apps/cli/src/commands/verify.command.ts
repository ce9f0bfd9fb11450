import { Command } from 'commander';
import { IntegrityError, TierName, WalContinuityReport, WalGap } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { progressReporter } from '../cli.progress';

export function verifyCommand(): Command {
  return new Command('verify')
    .description("re-read a backup's artifacts from the store and check checksums and archives")
    .requiredOption('--tier <tier>', 'tier of the backup')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--wal', 'check WAL continuity from each backup to the newest archived segment instead (gaps, conflicting copies)')
    .option('--json', 'print the result as JSON')
    .action(async (options: GlobalOptions & { backup: string; wal?: boolean }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      if (options.wal) return verifyWal(command, tier, options.json === true);
      const progress = progressReporter(!options.json, `verify ${tier}`);
      const result = await withEngine(command, (engine) =>
        engine.verify(tier, options.backup, { onProgress: progress.listener }).finally(progress.stop),
      );
      if (options.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else {
        for (const artifact of result.artifacts) {
          process.stdout.write(
            artifact.ok
              ? `ok      ${artifact.name} (${artifact.entries} archive entries)\n`
              : `FAILED  ${artifact.name}: ${artifact.error?.message}\n`,
          );
        }
      }
      if (!result.ok) {
        const failed = result.artifacts.find((artifact) => !artifact.ok);
        throw new IntegrityError(`backup '${result.backup}' failed verification: ${failed?.error?.message}`);
      }
    });
}

/** `verify --wal`: one line per backup, every gap and conflict; exit non-zero when a gap breaks a window. */
async function verifyWal(command: Command, tier: TierName, json: boolean): Promise<void> {
  const report = await withEngine(command, (engine) => engine.walContinuity(tier));
  if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(walReportText(report));
  if (!report.ok) {
    const broken = report.backups.find((backup) => backup.gaps.some((gap) => gap.breaksWindow));
    const gap = broken?.gaps.find((candidate) => candidate.breaksWindow);
    throw new IntegrityError(
      broken && gap
        ? `WAL archive of tier '${tier}' has a gap (${gapText(gap)}) that cuts short the recovery window of backup '${broken.backup}'`
        : `WAL archive of tier '${tier}' holds conflicting copies of ${report.conflicts.map((conflict) => conflict.name).join(', ')}`,
      {
        hint: 'check archive_command on every server of the tier (pg_stat_archiver shows failures); take a new base backup to start a new unbroken window',
      },
    );
  }
}

function walReportText(report: WalContinuityReport): string {
  const lines: string[] = [];
  for (const backup of report.backups) {
    const range = backup.lastSegment ? `${backup.firstSegment}..${backup.lastSegment}` : `${backup.firstSegment}.. (nothing archived)`;
    const status = backup.gaps.some((gap) => gap.breaksWindow) ? 'GAP    ' : 'ok     ';
    lines.push(`${status} ${backup.backup}  timelines ${backup.timelines.join('>')}  ${range}  ${backup.segments} segments`);
    for (const gap of backup.gaps) {
      lines.push(`          missing ${gapText(gap)}${gap.breaksWindow ? '' : ' (inside the backup: covered by its own WAL)'}`);
    }
  }
  for (const conflict of report.conflicts) lines.push(`CONFLICT ${conflict.name}: ${conflict.sha256.length} different copies`);
  return `${lines.join('\n')}\n`;
}

function gapText(gap: WalGap): string {
  return gap.count === 1 ? gap.first : `${gap.first}..${gap.last} (${gap.count} segments)`;
}
