import { BackupManifest, ConfigError, ObjectInfo, RookeryError, TierName } from '@rookery/core';

/**
 * The pure part of `rookery dr` (the seed's disaster-recovery runbook as a program): which store
 * a region is, which backup of a tier is the newest one that is whole, and the report. No I/O.
 */

export type DrMode = 'partial' | 'complete';

/** A region as the operator names it, resolved to a position in `repositories` (and policy.regions). */
export interface ResolvedRegion {
  /** The name asked for: 'primary', 'secondary' or a region a tier's policy names. */
  name: string;
  position: number;
  storeUrl: string;
  /**
   * The configuration lists a single repository and the region is a replica: that repository is
   * taken as the region's store (a DR-only configuration, the primary gone). Backups found there
   * must then record the region in their manifest, which copies do and the primary's do not.
   */
  loneRepository: boolean;
  /** Per tier, the region name its policy uses at that position ('secondary', 'archive', …). */
  tierRegions: Partial<Record<TierName, string>>;
}

/**
 * 'primary' is position 0 and 'secondary' position 1 for every tier (each tier names its own
 * replica: secondary, archive, analytics-archive); any other name is looked up in each requested
 * tier's policy.regions, and must sit at the same position for all of them (one store per run).
 */
export function resolveRegion(
  region: string,
  tiers: readonly TierName[],
  policyRegions: (tier: TierName) => readonly string[],
  repositories: readonly string[],
): ResolvedRegion {
  const positions = new Set<number>();
  for (const tier of tiers) positions.add(regionPosition(region, policyRegions(tier), tier));
  if (positions.size > 1) {
    throw new ConfigError(`region '${region}' is at different positions in the tiers' policies`, ['--region'], {
      hint: 'run rookery dr once per tier, or name the region primary or secondary',
    });
  }
  const [position = 0] = [...positions];
  const tierRegions: Partial<Record<TierName, string>> = {};
  for (const tier of tiers) tierRegions[tier] = policyRegions(tier)[position] ?? region;
  const configured = repositories[position];
  if (configured) return { name: region, position, storeUrl: configured, loneRepository: false, tierRegions };
  if (repositories.length === 1 && position > 0)
    return { name: region, position, storeUrl: repositories[0], loneRepository: true, tierRegions };
  throw new ConfigError(`no repository configured for region '${region}' (repositories[${position}])`, ['repositories', '--repo'], {
    hint: `list the region's store as repositories[${position}], or pass it alone with --repo URL`,
  });
}

function regionPosition(region: string, names: readonly string[], tier: TierName): number {
  if (region === 'primary') return 0;
  if (region === 'secondary') return 1;
  const position = names.indexOf(region);
  if (position < 0) {
    throw new ConfigError(`tier ${tier} has no region '${region}' (its policy names ${names.join(', ')})`, ['--region'], {
      hint: 'use primary, secondary or one of the names in the policy',
    });
  }
  return position;
}

/** Why a backup was passed over while looking for the newest one that is whole. */
export interface SkippedBackup {
  backupId: string;
  reason: string;
}

export interface BackupChoice {
  /** The backup to restore (an incremental's chain is restored by the engine from its parents). */
  backup: BackupManifest | null;
  /** Oldest first: the full and the incrementals leading to `backup`. */
  chain: BackupManifest[];
  skipped: SkippedBackup[];
}

export interface ChoiceRules {
  /** Backups finishing after this are not candidates (a recovery target in the past). */
  notAfter?: Date;
  /** The region the manifests must list (copies list it; a lone repository must prove it is the region). */
  requireRegion?: string;
}

/**
 * The newest backup, among the manifests that read and check (`backups`, oldest first), whose
 * artifacts are all present with their stored sizes, and the same for every parent of its chain.
 * `stats` holds what the store answered per artifact key (null: absent).
 */
export function chooseBackup(
  backups: readonly BackupManifest[],
  artifactKey: (manifest: BackupManifest, artifact: string) => string,
  stats: ReadonlyMap<string, ObjectInfo | null>,
  rules: ChoiceRules = {},
): BackupChoice {
  const skipped: SkippedBackup[] = [];
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  for (const candidate of [...backups].reverse()) {
    if (rules.notAfter && Date.parse(candidate.finishedAt) > rules.notAfter.getTime()) {
      skipped.push({ backupId: candidate.id, reason: `finished ${candidate.finishedAt}, after the target time` });
      continue;
    }
    const problem = chainProblem(candidate, byId, artifactKey, stats, rules.requireRegion);
    if (problem.reason) {
      skipped.push({ backupId: candidate.id, reason: problem.reason });
      continue;
    }
    return { backup: candidate, chain: problem.chain, skipped };
  }
  return { backup: null, chain: [], skipped };
}

function chainProblem(
  candidate: BackupManifest,
  byId: ReadonlyMap<string, BackupManifest>,
  artifactKey: (manifest: BackupManifest, artifact: string) => string,
  stats: ReadonlyMap<string, ObjectInfo | null>,
  requireRegion: string | undefined,
): { reason?: string; chain: BackupManifest[] } {
  const chain: BackupManifest[] = [];
  for (let current: BackupManifest | undefined = candidate; current; current = current.parent ? byId.get(current.parent) : undefined) {
    if (requireRegion && !current.regions.includes(requireRegion)) {
      return {
        reason: `manifest of ${current.id} does not list region '${requireRegion}' (regions ${current.regions.join(', ')}): not a copy made for it`,
        chain,
      };
    }
    for (const artifact of current.artifacts) {
      const stat = stats.get(artifactKey(current, artifact.name));
      if (!stat) return { reason: `artifact ${current.id}/${artifact.name} is missing`, chain };
      if (stat.size !== artifact.storedBytes)
        return {
          reason: `artifact ${current.id}/${artifact.name} holds ${stat.size} bytes, the manifest says ${artifact.storedBytes}`,
          chain,
        };
    }
    chain.unshift(current);
    if (current.parent && !byId.has(current.parent))
      return { reason: `parent ${current.parent} of ${current.id} has no intact manifest`, chain };
  }
  return { chain };
}

/** What the plan says about a tier, printed by --dry-run and kept in the report. */
export interface TierPlan {
  tier: TierName;
  method: 'physical' | 'logical';
  region: string;
  backupId: string | null;
  backupFinishedAt: string | null;
  chain: string[];
  /** 'latest' (end of the archived WAL), the target time, or the backup's own time (logical). */
  target: string;
  /** Logical tiers: the database restored into (one per tier). */
  database: string | null;
  /** A data directory (physical) or a database URL without password (logical). */
  destination: string;
  /** Physical: the WAL a restore replays, from the backup's first segment to the last one archived. */
  walRange: { start: string; end: string | null } | null;
  rtoSeconds: number;
  skipped: SkippedBackup[];
  /** Why the tier cannot be restored at all (no whole backup in the region). */
  problem: string | null;
}

export interface TierOutcome extends TierPlan {
  ok: boolean;
  restoreMs: number | null;
  withinRto: boolean;
  /** Where recovery ended: PostgreSQL's stop line or end LSN and last transaction (physical), the backup's time (logical). */
  restoredTo: string | null;
  /** How to reach the restored data (no password). */
  url: string | null;
  tables: { database: string; table: string; rows: number }[];
  error: { code: string; message: string } | null;
}

export interface DrReport {
  mode: DrMode;
  region: string;
  store: string;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  ok: boolean;
  tiers: TierOutcome[];
}

/** The plan as printed by --dry-run and before a run. */
export function describePlan(mode: DrMode, region: ResolvedRegion, store: string, tiers: readonly TierPlan[]): string {
  const lines = [
    `disaster recovery (${mode}) from region ${region.name}: ${store}${region.loneRepository ? ' (the only repository configured)' : ''}`,
  ];
  for (const plan of tiers) {
    lines.push(`  ${plan.tier} (${plan.method}, RTO ${plan.rtoSeconds} s):`);
    if (plan.problem) {
      lines.push(`    CANNOT RESTORE: ${plan.problem}`);
    } else {
      lines.push(
        `    backup ${plan.backupId} (finished ${plan.backupFinishedAt})${plan.chain.length > 1 ? `, chain ${plan.chain.join(' → ')}` : ''}`,
      );
      lines.push(`    target ${plan.target} → ${plan.destination}`);
      if (plan.walRange)
        lines.push(`    WAL ${plan.walRange.start} … ${plan.walRange.end ?? '(none archived after the backup: recovers to its end)'}`);
    }
    for (const skip of plan.skipped) lines.push(`    passed over ${skip.backupId}: ${skip.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The report as Markdown: one row per tier with its time against its RTO, then the details. */
export function reportMarkdown(report: DrReport): string {
  const lines = [
    `# Disaster recovery report (${report.mode})`,
    '',
    `Region **${report.region}** (${report.store}), ${report.startedAt} → ${report.finishedAt}: **${report.ok ? 'all tiers restored' : 'FAILED'}**${report.dryRun ? ' (dry run: nothing restored)' : ''}`,
    '',
    '| tier | method | backup | restored to | destination | restore time | RTO | result |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const tier of report.tiers) {
    const time = tier.restoreMs === null ? '–' : `${(tier.restoreMs / 1000).toFixed(1)} s`;
    const result = tier.ok
      ? tier.withinRto
        ? 'ok, within RTO'
        : 'ok, RTO MISSED'
      : `FAILED: ${tier.error?.message ?? tier.problem ?? 'not restored'}`;
    lines.push(
      `| ${tier.tier} | ${tier.method} | ${tier.backupId ?? '–'} | ${tier.restoredTo ?? tier.target} | ${tier.url ?? tier.destination} | ${time} | ${tier.rtoSeconds} s | ${escapeCell(result)} |`,
    );
  }
  for (const tier of report.tiers) {
    lines.push('', `## ${tier.tier}`, '');
    if (tier.walRange) lines.push(`- WAL replayed: ${tier.walRange.start} … ${tier.walRange.end ?? 'backup end'}`);
    if (tier.chain.length > 1) lines.push(`- chain: ${tier.chain.join(' → ')}`);
    for (const skip of tier.skipped) lines.push(`- passed over ${skip.backupId}: ${skip.reason}`);
    const rows = tier.tables.reduce((sum, table) => sum + table.rows, 0);
    if (tier.tables.length)
      lines.push(`- ${tier.tables.length} tables readable, ${rows} rows:`, '', '| database | table | rows |', '| --- | --- | --- |');
    for (const table of tier.tables) lines.push(`| ${table.database} | ${table.table} | ${table.rows} |`);
  }
  return `${lines.join('\n')}\n`;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The error a tier failed with, as the report keeps it. */
export function errorRecord(error: unknown): { code: string; message: string } {
  if (error instanceof RookeryError) return { code: error.code, message: error.message };
  return { code: 'UNEXPECTED', message: error instanceof Error ? error.message : String(error) };
}
