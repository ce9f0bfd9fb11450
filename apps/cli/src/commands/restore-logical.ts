import { Command } from 'commander';
import { ConfigError, TierName } from '@rookery/core';
import { LogicalRestoreResult } from '@rookery/engine';
import { withEngine } from '../cli.context';
import { formatBytes } from '../cli.output';
import { progressReporter } from '../cli.progress';

export interface LogicalRestoreOptions {
  backup: string;
  targetUrl?: string;
  clean?: boolean;
  table?: string;
  schema?: string;
  jobs?: number;
  json?: boolean;
  to?: string;
  targetTime?: string;
  targetLsn?: string;
  targetXid?: string;
  targetName?: string;
}

/** `rookery restore --tier content|olap --target-url postgres://…`: a logical restore into a database. */
export async function restoreLogical(command: Command, tier: TierName, options: LogicalRestoreOptions): Promise<string> {
  if (options.to)
    throw new ConfigError('--to and --target-url exclude each other: a data directory or a database', ['--to', '--target-url']);
  if (options.targetTime || options.targetLsn || options.targetXid || options.targetName) {
    throw new ConfigError('recovery targets need a physical backup and WAL; a logical backup restores to its own time', ['--target-*']);
  }
  const progress = progressReporter(!options.json, `restore ${tier}`);
  const result = await withEngine(command, (engine) =>
    engine
      .restore({
        tier,
        backup: options.backup,
        targetUrl: options.targetUrl as string,
        clean: options.clean,
        table: options.table,
        schema: options.schema,
        jobs: options.jobs,
        onProgress: progress.listener,
      })
      .finally(progress.stop),
  );
  process.stdout.write(options.json ? `${JSON.stringify(logicalJson(result, tier), null, 2)}\n` : logicalText(result));
  return result.manifest.id;
}

function logicalJson(result: LogicalRestoreResult, tier: TierName): Record<string, unknown> {
  return {
    backup: result.manifest.id,
    tier,
    target: result.target,
    chain: result.chain,
    createdDatabase: result.createdDatabase,
    bytes: result.bytes,
    steps: result.steps,
    refreshedMaterializedViews: result.refreshedMaterializedViews,
  };
}

function logicalText(result: LogicalRestoreResult): string {
  const lines = [
    `restored backup ${result.manifest.id} (${formatBytes(result.bytes)}) into ${result.target}${result.createdDatabase ? ' (database created)' : ''}`,
    ...(result.chain.length > 1 ? [`  chain: ${result.chain.join(' → ')}`] : []),
    ...result.steps.map(
      (step) =>
        `  ${step.backup}/${step.artifact}: ${step.sections.join(', ')} (${step.mode}${step.jobs > 1 ? `, ${step.jobs} jobs` : ''})`,
    ),
  ];
  if (result.refreshedMaterializedViews.length) lines.push(`refreshed materialized views: ${result.refreshedMaterializedViews.join(', ')}`);
  return `${lines.join('\n')}\n`;
}
