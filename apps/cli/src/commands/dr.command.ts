import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, Option } from 'commander';
import { RookeryConfig, loadConfig } from '@rookery/config';
import { ConfigError, RookeryError, TIER_NAMES, TierName, parseRecoveryTarget } from '@rookery/core';
import { createEngine } from '@rookery/engine';
import type { DrMode, DrReport, DrRequest, ResolvedRegion, TierPlan } from '@rookery/validation';
import { collect, parseTier, selfCommand } from '../cli.context';
import { GlobalOptions } from '../cli.config';
import { load } from '../cli.lazy';
import { CommandOutcome, Incomplete, reporting } from '../cli.outcome';
import { formatDuration } from '../cli.output';

interface DrOptions extends Omit<GlobalOptions, 'tier'> {
  mode: DrMode;
  region?: string;
  tier?: string[];
  targetTime?: string;
  workdir?: string;
  targetUrl?: string;
  dryRun?: boolean;
  report?: string;
}

/**
 * `rookery dr --mode partial|complete`: the seed's disaster-recovery runbook as a program. Needs
 * only the configuration (or flags): no catalog database, no running service.
 */
export function drCommand(): Command {
  return new Command('dr')
    .description(
      "disaster recovery: restore tiers from one region's store alone (newest whole backups, PITR for physical tiers), check the data, report times against each tier's RTO",
    )
    .addOption(
      new Option(
        '--mode <mode>',
        'partial: the tiers named with --tier, from the primary by default; complete: every tier, from the secondary by default',
      )
        .choices(['partial', 'complete'])
        .makeOptionMandatory(),
    )
    .option(
      '--region <name>',
      "primary, secondary, or a region a tier's policy names (default: primary for partial, secondary for complete)",
    )
    .option('--tier <tier>', 'tier to restore, repeatable (partial mode needs at least one; default for complete: all)', collect)
    .option('--target-time <iso8601>', 'physical tiers recover to this time; logical tiers take their newest backup finished by then')
    .option(
      '--workdir <dir>',
      'physical tiers are restored into <dir>/<tier> (each started on its own port); logical tiers without --target-url go to a cluster started under <dir>/',
    )
    .option('--target-url <url>', 'PostgreSQL base URL for the logical tiers: one database per tier (the backed-up database name)')
    .option('--dry-run', 'print the plan (backup, target, destination, WAL range per tier) and restore nothing')
    .option('--report <file>', 'write the Markdown report here and the JSON next to it (<file>.json); default <workdir>/dr-report.md')
    .option('--json', 'print the plan or report as JSON')
    .action(
      reporting(async (options: DrOptions, command: Command): Promise<CommandOutcome> => {
        const started = new Date();
        const { DisasterRecovery, createValidationTools, describePlan, resolveRegion } = load.validation();
        const globals = command.optsWithGlobals<DrOptions>();
        const config = loadConfig({ configFile: globals.config, repositories: globals.repo });
        const tiers = requestedTiers(options);
        if (options.targetTime) parseRecoveryTarget({ targetTime: options.targetTime });
        const region = resolveRegion(
          options.region ?? (options.mode === 'complete' ? 'secondary' : 'primary'),
          tiers,
          (tier) => config.tiers[tier].policy.regions,
          config.repositories,
        );
        const regionConfig: RookeryConfig = { ...config, repositories: [region.storeUrl] };
        // A restored server's restore_command (wal-get) must read the region's store too.
        const self = [...withoutRepoFlags(selfCommand(command, config)), '--repo', region.storeUrl];
        const engine = await createEngine(regionConfig, { actor: 'cli dr', selfCommand: self });
        try {
          const dr = new DisasterRecovery(engine, createValidationTools(engine.toolkit, { workDirectory: options.workdir }));
          const request: DrRequest = {
            mode: options.mode,
            region,
            tiers,
            targetTime: options.targetTime,
            workdir: options.workdir && resolve(options.workdir),
            targetUrl: options.targetUrl,
          };
          await dr.checkReachable(region);
          const plans = await dr.plan(request);
          if (options.dryRun) {
            process.stdout.write(
              options.json
                ? `${JSON.stringify(dryRunReport(options.mode, region, engine.store.description, plans, started), null, 2)}\n`
                : describePlan(options.mode, region, engine.store.description, plans),
            );
            // A tier with nothing to restore fails the rehearsal too.
            return unrestored(
              `disaster recovery plan (${options.mode}) from region ${region.name}`,
              plans.map((plan) => [plan.tier, plan.problem]),
              'cannot be restored',
            );
          }
          requireDestinations(plans, request);
          if (!options.json) process.stdout.write(describePlan(options.mode, region, engine.store.description, plans));
          const report = await dr.run(request, plans, started);
          const written = await writeReport(report, options.report ?? resolve(request.workdir ?? '.', 'dr-report.md'));
          process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : resultText(report, written));
          return unrestored(
            `disaster recovery (${options.mode}) from region ${region.name}`,
            report.tiers.map((tier) => [tier.tier, tier.ok ? null : (tier.error?.message ?? tier.problem ?? 'failed')]),
            'not restored',
          );
        } finally {
          await engine.close();
        }
      }),
    );
}

/** Incomplete when any tier was (or, planned, would be) left unrestored: which, and why. */
function unrestored(run: string, tiers: [TierName, string | null][], verdict: string): CommandOutcome {
  const failed = tiers.filter(([, problem]) => problem);
  if (failed.length === 0) return undefined;
  return new Incomplete(
    `${run}: ${failed.length} of ${tiers.length} tier(s) ${verdict}: ${failed.map(([tier, problem]) => `${tier} (${problem})`).join(', ')}`,
  );
}

function requestedTiers(options: DrOptions): TierName[] {
  const named = (options.tier ?? []).map((tier) => parseTier(tier) as TierName);
  if (options.mode === 'partial' && named.length === 0) {
    throw new ConfigError('partial disaster recovery needs the tiers to restore', ['--tier'], {
      hint: 'name each with --tier T; --mode complete restores every tier',
    });
  }
  return named.length ? [...new Set(named)] : [...TIER_NAMES];
}

/** Physical tiers need a workdir; logical tiers need a target URL or the workdir for their cluster. */
function requireDestinations(plans: readonly TierPlan[], request: DrRequest): void {
  const needsWorkdir = plans.some((plan) => !plan.problem && (plan.method === 'physical' || !request.targetUrl));
  if (needsWorkdir && !request.workdir) {
    throw new ConfigError(
      '--workdir DIR is needed: physical tiers are restored under it (and logical tiers without --target-url)',
      ['--workdir'],
      {
        hint: 'pick an empty directory on a volume large enough for the restored clusters',
      },
    );
  }
}

function withoutRepoFlags(argv: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--repo') i++;
    else kept.push(argv[i]);
  }
  return kept;
}

function dryRunReport(
  mode: DrMode,
  region: ResolvedRegion,
  store: string,
  plans: readonly TierPlan[],
  started: Date,
): Record<string, unknown> {
  return {
    mode,
    region: region.name,
    store,
    loneRepository: region.loneRepository,
    dryRun: true,
    startedAt: started.toISOString(),
    tiers: plans,
  };
}

/** The Markdown report at `path` and the JSON at `path`.json; returns both paths. */
async function writeReport(report: DrReport, path: string): Promise<string[]> {
  const jsonPath = path.replace(/\.md$/, '') + '.json';
  try {
    await writeFile(path, load.validation().reportMarkdown(report));
    await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  } catch (error) {
    throw new RookeryError(
      'REPORT_NOT_WRITTEN',
      'config',
      `the disaster recovery report could not be written to ${path}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
  return [path, jsonPath];
}

function resultText(report: DrReport, written: string[]): string {
  const lines = report.tiers.map((tier) => {
    if (!tier.ok) return `FAILED  ${tier.tier}: ${tier.error?.message ?? tier.problem ?? 'not restored'}`;
    const rows = tier.tables.reduce((sum, table) => sum + table.rows, 0);
    return `ok      ${tier.tier}: ${tier.backupId} → ${tier.url} in ${formatDuration(tier.restoreMs ?? 0)} (${tier.withinRto ? 'within' : 'MISSED'} RTO ${tier.rtoSeconds} s); ${tier.tables.length} tables, ${rows} rows; ${tier.restoredTo}`;
  });
  lines.push(`report: ${written.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
