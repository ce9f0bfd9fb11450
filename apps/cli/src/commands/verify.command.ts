import { Command } from 'commander';
import { ConfigError, IntegrityError, TierName, WalContinuityReport, WalGap } from '@rookery/core';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { progressReporter } from '../cli.progress';

export function verifyCommand(): Command {
  return new Command('verify')
    .description("re-read a backup's artifacts from the store and check checksums and archives")
    .requiredOption('--tier <tier>', 'tier of the backup')
    .option('--backup <id>', "backup id or 'latest'", 'latest')
    .option('--wal', 'check WAL continuity from each backup to the newest archived segment instead (gaps, conflicting copies)')
    .option(
      '--deep',
      'with --wal: also re-read every archived WAL file (the whole archive), decrypt it (with a key: authenticating its name and timeline) and check its sha256',
    )
    .option('--json', 'print the result as JSON')
    .action(async (options: GlobalOptions & { backup: string; wal?: boolean; deep?: boolean }, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      if (options.deep && !options.wal)
        throw new ConfigError('--deep goes with --wal', [], { hint: `rookery verify --tier ${tier} --wal --deep` });
      if (options.wal) return verifyWal(command, tier, { json: options.json === true, deep: options.deep === true });
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
        if (result.chain) {
          const links = result.chain.links.map((link) => `${link.id} (${link.type})`).join(' → ');
          process.stdout.write(
            result.chain.ok
              ? `ok      chain ${links}: every parent manifest present and trusted\n`
              : `FAILED  chain ${links}: ${result.chain.error?.message}\n`,
          );
        }
      }
      if (!result.ok) {
        const failed = result.artifacts.find((artifact) => !artifact.ok);
        const problem = failed ? failed.error?.message : result.chain?.error?.message;
        throw new IntegrityError(`backup '${result.backup}' failed verification: ${problem}`);
      }
    });
}

/**
 * `verify --wal`: one line per backup, every gap and conflict; with --deep, every archived file
 * that does not read back as itself (damaged, swapped, not encrypted). Exits non-zero when a gap
 * breaks a window or a file fails.
 */
async function verifyWal(command: Command, tier: TierName, options: { json: boolean; deep: boolean }): Promise<void> {
  const progress = progressReporter(options.deep && !options.json, `verify ${tier} WAL`);
  const { report, files } = await withEngine(command, async (engine) => ({
    report: await engine.walContinuity(tier),
    files: options.deep ? await engine.verifyWalArchive(tier, { onProgress: progress.listener }).finally(progress.stop) : null,
  }));
  const failed = files?.filter((file) => !file.ok) ?? [];
  if (options.json)
    process.stdout.write(`${JSON.stringify(files ? { ...report, ok: report.ok && failed.length === 0, files } : report, null, 2)}\n`);
  else {
    process.stdout.write(walReportText(report));
    if (files) {
      for (const file of failed) process.stdout.write(`FAILED   ${file.name}: ${file.problem}\n`);
      process.stdout.write(`${files.length - failed.length} of ${files.length} archived WAL files read back and verified\n`);
    }
  }
  if (failed.length > 0) {
    throw new IntegrityError(
      `${failed.length} archived WAL file(s) of tier '${tier}' failed verification, the first '${failed[0].name}': ${failed[0].problem}`,
      { hint: 'recovery cannot replay past a file that fails: take a new base backup after the newest failing file' },
    );
  }
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
