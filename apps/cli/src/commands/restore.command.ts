import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, RecoveryTargetFlags, TierName, isRookeryError, parseRecoveryTarget, redactUrl } from '@rookery/core';
import { createEvent } from '@rookery/events';
import { PhysicalRestoreResult, describeNeutralised } from '@rookery/engine';
import { GlobalOptions, configFor, parseTier, withEngine } from '../cli.context';
import { CLI_EVENT_SOURCE, publishCliEvents } from '../cli.events';
import { formatBytes } from '../cli.output';
import { progressReporter } from '../cli.progress';
import { serviceClientOf } from '../service/service-client';
import { serviceRestore } from '../service/service-commands';
import { LogicalRestoreOptions, restoreLogical } from './restore-logical';

interface RestoreOptions extends GlobalOptions, RecoveryTargetFlags, LogicalRestoreOptions {
  backup: string;
  to?: string;
  delta?: boolean;
  start?: boolean;
  port?: number;
  targetUrl?: string;
  archiveMode?: 'keep' | 'off';
  keepSettings?: boolean;
  tablespaceMap?: Record<string, string>;
  tablespaceMapAll?: string;
}

export function restoreCommand(): Command {
  return new Command('restore')
    .description('restore a backup into a new, empty data directory, to the end of the archived WAL or to a recovery target')
    .requiredOption('--tier <tier>', 'tier to restore')
    .option('--backup <id>', "backup id or 'latest' (with a target: the newest backup that can reach it)", 'latest')
    .option('--to <dir>', 'data directory to create (physical tiers); must be absent or empty (unless --delta)')
    .option(
      '--delta',
      'with --to: DIR is an existing, stopped data directory of the same database system (a broken replica, a copy to roll back); only what differs from the backup is rewritten, what it lacks removed',
    )
    .option('--target-time <iso8601>', 'recover to this time (ISO 8601 with an offset or Z, e.g. 2026-11-26T02:00:00Z); inclusive')
    .option('--target-lsn <lsn>', 'recover to this WAL location (e.g. 0/3000148); inclusive')
    .option('--target-xid <xid>', 'recover up to and including the commit of this transaction')
    .option('--target-name <name>', 'recover to the restore point created by pg_create_restore_point(name)')
    .addOption(
      new Option(
        '--archive-mode <mode>',
        "the restored server's archiving: keep (archives its new timeline like the source) or off (drills, test copies)",
      )
        .choices(['keep', 'off'])
        .default('keep'),
    )
    .option(
      '--keep-settings',
      "DANGEROUS: keep the backup's archive_command, recovery_end_command, ssl_passphrase_command, preload libraries, … (by default rookery comments them out and reports it): a tampered backup's commands then run on this host",
    )
    .option(
      '--tablespace-map <old=new>',
      'restore a tablespace (named by its original directory, name or OID) into NEW instead of its original directory; repeatable',
      collectTablespaceMap,
    )
    .option('--tablespace-map-all <dir>', 'restore every tablespace not named by --tablespace-map under DIR/<oid>')
    .option('--start', 'start the restored server and wait until recovery has finished and it is promoted')
    .option('--port <n>', 'port for --start', parsePort)
    .option('--target-url <url>', 'database to restore into (logical tiers): created when absent, else it must have no user tables')
    .option('--clean', 'with --target-url: replace what is there (a whole restore recreates the database)')
    .option('--table <[schema.]name>', 'with --target-url: restore only this table (definition and rows)')
    .option('--schema <name>', 'with --target-url: restore only this schema')
    .option(
      '--jobs <n>',
      'with --target-url: parallel pg_restore workers (fetches each artifact to a verified local file first)',
      parseJobs,
    )
    .option('--json', 'print the result as JSON')
    .action(async (options: RestoreOptions, command: Command) => {
      const tier = parseTier(options.tier) ?? 'oltp';
      const service = await serviceClientOf(command);
      if (service) {
        refuseLocalOnlyOptions(command);
        return serviceRestore(service, tier, options);
      }
      await withRestoreEvents(command, tier, options, async () => {
        if (options.delta && (options.targetUrl || !options.to)) {
          throw new ConfigError('--delta goes with --to DIR: it rewrites an existing data directory', ['--delta'], {
            hint: `use: rookery restore --tier ${tier} --delta --to DIR`,
          });
        }
        if (options.targetUrl) return restoreLogical(command, tier, options);
        return restorePhysical(command, tier, options);
      });
    });
}

/** Restore options a service does not take (its restores never start the server; the service host decides the rest). */
const LOCAL_ONLY_RESTORE_OPTIONS = ['delta', 'start', 'port', 'keepSettings', 'tablespaceMap', 'tablespaceMapAll', 'jobs', 'archiveMode'];

function refuseLocalOnlyOptions(command: Command): void {
  const given = command.options.filter(
    (option) =>
      LOCAL_ONLY_RESTORE_OPTIONS.includes(option.attributeName()) && command.getOptionValueSource(option.attributeName()) === 'cli',
  );
  if (given.length)
    throw new ConfigError(
      `${given.map((option) => option.long).join(', ')} cannot go with --service: a restore through a service takes --backup, --to or --target-url (with --clean, --table, --schema) and a recovery target`,
      given.map((option) => option.long ?? option.flags),
    );
}

/**
 * dev.rookery.restore.completed / .failed for every restore run from the CLI (published when
 * Kafka is configured; see cli.events). The destination is a directory or a database URL with
 * any password removed.
 */
async function withRestoreEvents(
  command: Command,
  tier: TierName,
  options: RestoreOptions,
  work: () => Promise<string | void>,
): Promise<void> {
  const started = Date.now();
  const base = {
    backupId: options.backup,
    tier,
    target: options.targetTime ?? options.targetLsn ?? options.targetXid ?? options.targetName ?? 'latest',
    destination: options.targetUrl ? redactUrl(options.targetUrl) : String(options.to ?? ''),
    actor: 'cli',
  };
  const config = configFor(command);
  try {
    const backupId = await work();
    const event = createEvent(
      'dev.rookery.restore.completed',
      tier,
      { ...base, backupId: backupId || options.backup, at: new Date().toISOString(), durationMs: Date.now() - started },
      { source: CLI_EVENT_SOURCE },
    );
    await publishCliEvents(config, [event]);
  } catch (error) {
    const failure = {
      code: isRookeryError(error) ? error.code : 'UNEXPECTED',
      message: (error instanceof Error ? error.message : String(error)).slice(0, 2000),
      retryable: isRookeryError(error) && error.retryable,
    };
    await publishCliEvents(config, [
      createEvent(
        'dev.rookery.restore.failed',
        tier,
        { ...base, at: new Date().toISOString(), durationMs: Date.now() - started, error: failure },
        { source: CLI_EVENT_SOURCE },
      ),
    ]);
    throw error;
  }
}

async function restorePhysical(command: Command, tier: TierName, options: RestoreOptions): Promise<string> {
  const target = parseRecoveryTarget({
    targetTime: options.targetTime,
    targetLsn: options.targetLsn,
    targetXid: options.targetXid,
    targetName: options.targetName,
  });
  // A logical tier's backups are dumps: they restore into a database, never a data directory.
  if (configFor(command).tiers[tier].policy.method !== 'physical') {
    throw new ConfigError(
      `tier '${tier}' takes logical backups (dumps): they restore into a database, not a data directory`,
      ['--to', '--target-url'],
      {
        hint: `use: rookery restore --tier ${tier} --target-url postgres://…/database`,
      },
    );
  }
  if (!options.to) throw new ConfigError('--to DIR is required to restore a physical backup', ['--to']);
  const progress = progressReporter(!options.json, `restore ${tier}`);
  const result = await withEngine(command, (engine) =>
    engine
      .restore({
        tier,
        backup: options.backup,
        to: options.to as string,
        delta: options.delta,
        start: options.start,
        port: options.port,
        target,
        archiveMode: options.archiveMode,
        keepSettings: options.keepSettings,
        tablespaces: { map: options.tablespaceMap, all: options.tablespaceMapAll },
        onProgress: progress.listener,
      })
      .finally(progress.stop),
  );
  if (options.json) process.stdout.write(`${JSON.stringify(restoreJson(result, tier), null, 2)}\n`);
  else process.stdout.write(restoreText(result));
  return result.manifest.id;
}

function restoreJson(result: PhysicalRestoreResult, tier: string): Record<string, unknown> {
  return {
    backup: result.manifest.id,
    tier,
    dataDirectory: result.dataDirectory,
    tablespaces: result.tablespaces,
    bytes: result.bytes,
    directBytes: result.directBytes,
    delta: result.delta ?? null,
    startedOnPort: result.startedOnPort ?? null,
    settings: result.settings
      ? { kept: false, neutralised: result.settings.neutralised, uninspected: result.settings.uninspected }
      : { kept: true, neutralised: [], uninspected: [] },
    timings: result.timings,
    recovery: result.recovery
      ? { target: result.recovery.description, kind: result.recovery.target.kind, reached: result.recovery.outcome ?? null }
      : null,
    prefetch: result.prefetch ?? null,
  };
}

function restoreText(result: PhysicalRestoreResult): string {
  const lines = [
    `restored backup ${result.manifest.id} (${formatBytes(result.bytes)}, ${formatBytes(result.directBytes)} of it written with O_DIRECT) into ${result.dataDirectory}`,
    ...result.tablespaces.map(
      (tablespace) =>
        `tablespace ${tablespace.name} (${tablespace.oid}) into ${tablespace.restoredTo}${tablespace.restoredTo === tablespace.location ? ' (its original directory)' : ` (was ${tablespace.location})`}`,
    ),
  ];
  if (result.delta) {
    const delta = result.delta;
    lines.push(
      `delta: ${delta.filesKept} files kept, ${delta.filesRewritten} rewritten (${delta.pagesRewritten} pages), ${delta.filesCreated} created, ${delta.entriesRemoved} entries removed; ${formatBytes(delta.bytesWritten)} written`,
    );
  }
  if (result.settings) {
    lines.push(
      ...result.settings.neutralised.map(describeNeutralised),
      ...result.settings.uninspected.map((include) => `not inspected: ${include.file}: ${include.reason}`),
    );
  } else {
    lines.push("settings: the backup's command and library settings were kept (--keep-settings)");
  }
  if (result.recovery) lines.push(`recovery target: ${result.recovery.description}`);
  const outcome = result.recovery?.outcome;
  if (outcome) {
    lines.push(
      `recovered to: timeline ${outcome.timeline ?? '?'}, end of recovery at LSN ${outcome.endLsn ?? '?'}` +
        (outcome.lastTransactionTime ? `, last replayed transaction committed at ${outcome.lastTransactionTime}` : ''),
    );
    if (outcome.stoppedAt) lines.push(`postgres: ${outcome.stoppedAt}`);
  }
  if (result.startedOnPort) {
    lines.push(`server ${result.recovery ? 'promoted and ' : ''}accepting connections on port ${result.startedOnPort}`);
  } else if (result.recovery) {
    lines.push('start it with pg_ctl: it replays the archived WAL to the target and promotes');
  }
  const { planMs, extractMs, syncMs, startMs } = result.timings;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  lines.push(
    `timings: plan ${seconds(planMs)}, fetch+verify+extract ${seconds(extractMs)}, sync ${seconds(syncMs)}` +
      (startMs === undefined ? '' : `, start+recovery ${seconds(startMs)}`),
  );
  return `${lines.join('\n')}\n`;
}

/** --tablespace-map OLD=NEW, repeatable: the first '=' splits (OLD is a directory, name or OID; NEW may hold '='). */
export function collectTablespaceMap(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const split = value.indexOf('=');
  const old = value.slice(0, split);
  const next = value.slice(split + 1);
  if (split <= 0 || next === '') throw new InvalidArgumentError("must be OLD=NEW (OLD: the tablespace's original directory, name or OID)");
  if (previous && old in previous) throw new InvalidArgumentError(`names '${old}' twice`);
  return { ...(previous ?? {}), [old]: next };
}

function parseJobs(value: string): number {
  const jobs = Number(value);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) throw new InvalidArgumentError('must be a number of workers 1-64');
  return jobs;
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidArgumentError('must be a port number 1-65535');
  return port;
}
