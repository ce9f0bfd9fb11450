import { writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { tierPolicies } from '@rookery/config';
import type { EventLedger } from '@rookery/catalog';
import { ConfigError, redactUrl } from '@rookery/core';
import { GlobalOptions, configFor, parseTier } from '../cli.context';
import { load } from '../cli.lazy';

interface ReportOptions extends GlobalOptions {
  format: 'md' | 'csv' | 'json';
  since?: string;
  until?: string;
  out?: string;
}

/**
 * `rookery report`: the compliance evidence (GDPR/SOX) from the ledger the compliance-reporting
 * service keeps in the catalog database (catalog.url / ROOKERY_CATALOG_URL), as Markdown, CSV or JSON.
 */
export function reportCommand(): Command {
  return new Command('report')
    .description('export the compliance report (RPO/RTO/retention evidence per tier) from the event ledger')
    .option('--tier <tier>', 'only this tier')
    .addOption(new Option('--format <format>', 'md, csv or json').choices(['md', 'csv', 'json']).default('md'))
    .option('--since <time>', 'only events from this ISO-8601 time')
    .option('--until <time>', 'only events until this ISO-8601 time')
    .option('--out <file>', 'write the report to this file instead of stdout')
    .action(async (options: ReportOptions, command: Command) => {
      const config = configFor(command);
      const tier = parseTier(options.tier);
      const period = { since: isoTime(options.since, '--since'), until: isoTime(options.until, '--until') };
      const { ComplianceLedgerService, renderCsv, renderMarkdown } = load.compliance();
      const ledger = await load.catalog().EventLedger.open(config.catalog.url);
      try {
        await requireEvidence(ledger, config.catalog.url);
        const tiers = await new ComplianceLedgerService(ledger, tierPolicies(config)).tiers({
          query: period,
          tiers: tier ? [tier] : undefined,
        });
        const text =
          options.format === 'csv'
            ? renderCsv(tiers)
            : options.format === 'json'
              ? `${JSON.stringify({ generatedAt: new Date().toISOString(), period, tiers }, null, 2)}\n`
              : renderMarkdown(tiers, { period });
        if (options.out) await writeFile(options.out, text);
        else process.stdout.write(text);
      } finally {
        await ledger.close();
      }
    });
}

/** A report from an empty ledger would show every tier without evidence: say why instead. */
async function requireEvidence(ledger: EventLedger, url: string): Promise<void> {
  if ((await ledger.count()) > 0) return;
  throw new ConfigError(`the compliance ledger in ${redactUrl(url)} holds no events: nothing to report`, ['catalog.url'], {
    hint: "point catalog.url (ROOKERY_CATALOG_URL) at the database compliance-reporting writes, or record the repository's backups with rookery catalog rebuild",
  });
}

function isoTime(value: string | undefined, flag: string): string | undefined {
  if (value === undefined) return undefined;
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw new ConfigError(`${flag} must be an ISO-8601 time, got '${value}'`, [flag]);
  return new Date(time).toISOString();
}
