import { Command } from 'commander';
import { TIER_NAMES, redactUrl } from '@rookery/core';
import { tierPolicies } from '@rookery/config';
import { GlobalOptions, parseTier, withEngine } from '../cli.context';
import { load } from '../cli.lazy';
import { CommandOutcome, Incomplete, reporting } from '../cli.outcome';

interface TierRebuild {
  tier: string;
  indexed: number;
  removed: number;
  damaged: { key: string; problem: string }[];
  backups: string[];
  /** Backups recorded into the compliance ledger from their manifests (see ComplianceLedgerService.backfill). */
  ledger: { recorded: number; alreadyRecorded: number };
}

/**
 * `rookery catalog rebuild`: the catalog is an index of the repository (DESIGN §4), so it can be
 * recreated from the manifests at any time — into an empty or missing database (created and
 * migrated), or over a stale one (records of backups gone from the repository are removed;
 * running and failed runs, which only the catalog knows, are left alone). The compliance ledger in
 * the same database is backfilled from the same manifests, so backups taken without events (before
 * Kafka was configured, by the CLI without a bus) count as evidence; running it again adds nothing.
 */
export function catalogCommand(): Command {
  const catalog = new Command('catalog').description('the catalog database (an index of the repository)');
  catalog.addCommand(
    new Command('rebuild')
      .description('recreate the catalog from the repository: every manifest indexed, records of vanished backups removed')
      .option('--tier <tier>', 'only this tier')
      .option('--json', 'print what was indexed as JSON')
      .action(
        reporting(async (options: GlobalOptions, command: Command): Promise<CommandOutcome> => {
          const only = parseTier(options.tier);
          const { url, tiers, repository } = await withEngine(command, async (engine) => {
            const catalogUrl = engine.config.catalog.url;
            const repository = engine.store.description;
            const index = await load.catalog().BackupCatalog.open(catalogUrl);
            const ledger = await load.catalog().EventLedger.open(catalogUrl);
            const compliance = new (load.compliance().ComplianceLedgerService)(ledger, tierPolicies(engine.config));
            try {
              const results: TierRebuild[] = [];
              for (const tier of only ? [only] : TIER_NAMES) {
                const { backups, damaged } = await engine.list(tier);
                const result = await index.reindex(backups, { tier });
                const recorded = await compliance.backfill(backups, { repository });
                results.push({ tier, ...result, damaged, backups: backups.map((backup) => backup.id), ledger: recorded });
              }
              return { url: redactUrl(catalogUrl), tiers: results, repository };
            } finally {
              await ledger.close();
              await index.close();
            }
          });
          if (options.json) {
            process.stdout.write(`${JSON.stringify({ catalog: url, repository, tiers }, null, 2)}\n`);
            return rebuildOutcome(tiers);
          }
          const lines = [`catalog ${url} rebuilt from ${repository}`];
          for (const tier of tiers) {
            lines.push(
              `  ${tier.tier.padEnd(8)} ${tier.indexed} backups indexed, ${tier.removed} stale records removed${tier.damaged.length ? `, ${tier.damaged.length} damaged manifests skipped` : ''}; ` +
                `compliance ledger: ${tier.ledger.recorded} backups recorded, ${tier.ledger.alreadyRecorded} already there`,
            );
            for (const entry of tier.damaged) lines.push(`    damaged: ${entry.key}: ${entry.problem}`);
          }
          process.stdout.write(`${lines.join('\n')}\n`);
          return rebuildOutcome(tiers);
        }),
      )
      .exitOverride(),
  );
  return catalog;
}

/** Incomplete when a manifest could not be indexed: the catalog then lacks a backup the repository may hold. */
function rebuildOutcome(tiers: readonly TierRebuild[]): CommandOutcome {
  const damaged = tiers.flatMap((tier) => tier.damaged);
  if (damaged.length === 0) return undefined;
  return new Incomplete(
    `catalog rebuild skipped ${damaged.length} damaged manifest(s), first ${damaged[0].key}: ${damaged[0].problem} (check the backup with rookery verify, then repair or remove it)`,
  );
}
