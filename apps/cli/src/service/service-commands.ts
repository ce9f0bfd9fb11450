import { posix } from 'node:path';
import { ConfigError, LegalHold, TierName, parseRecoveryTarget } from '@rookery/core';
import type { ExpireResult } from '@rookery/engine';
import type { JobProgress, RestoreRecord, RestoreRequest, ServedBackupRecord } from '@rookery/service-kit';
import { ServiceCallError } from '../cli.errors';
import { BACKUP_COLUMNS, backupCells, describeBackup, formatBytes, table } from '../cli.output';
import { ServiceClient } from './service-client';
import { FollowedRecord, followJob } from './service-follow';

// The commands of `rookery --service URL`: the same operations as on the repository, carried out
// by the tier service through its REST API (docs: README "The rookery CLI", api-contract).

/** A restore as the service serves it: with its progress while it runs. */
type ServiceRestoreRecord = RestoreRecord & { progress?: JobProgress | null };

const path = (...segments: string[]) => `/${segments.map(encodeURIComponent).join('/')}`;

/** The tier the operator named is the tier the service serves: a service backs up and restores only its own. */
function assertTier(client: ServiceClient, expected: TierName, served: string): void {
  if (served !== expected)
    throw new ConfigError(`the service at ${client.name} serves tier ${served}, not ${expected}`, ['--tier', '--service'], {
      hint: `use --tier ${served}, or the URL of the ${expected} service`,
    });
}

/** `backup --tier T --service URL`: POST /backups, then its record to the end. Resolves only when it completed. */
export async function serviceBackup(client: ServiceClient, tier: TierName, options: { type: string; json?: boolean }): Promise<void> {
  // A service backs up its own tier whatever is asked: check the tier first where its catalog tells.
  const { backups } = await client.get<{ backups: ServedBackupRecord[] }>('/backups');
  if (backups.length) assertTier(client, tier, backups[0].tier);
  const started = await client.post<ServedBackupRecord>('/backups', { type: options.type });
  await followToEnd(client, tier, 'backups', started, options.json, describeBackup);
}

/** What following a job needs of its record besides its status. */
type ServiceJob = FollowedRecord & { tier: string; error: string | null };

/**
 * Follows a job the service started to its end (cancelling it at once if the service runs another
 * tier than asked), prints its record, and fails unless it completed.
 */
async function followToEnd<R extends ServiceJob>(
  client: ServiceClient,
  tier: TierName,
  jobs: 'backups' | 'restores',
  started: R,
  json: boolean | undefined,
  text: (record: R) => string,
): Promise<void> {
  const noun = jobs === 'backups' ? 'backup' : 'restore';
  const cancel = () => client.post(path(jobs, started.id, 'cancel'));
  if (started.tier !== tier) {
    await cancel().catch(() => undefined);
    assertTier(client, tier, started.tier);
  }
  if (!json) process.stderr.write(`rookery: ${noun} ${started.id} started on ${client.name}\n`);
  const record = await followJob({
    what: `${noun} ${started.id}`,
    operation: `${noun} ${tier}`,
    read: () => client.get<R>(path(jobs, started.id)),
    cancel,
    showProgress: !json,
  });
  process.stdout.write(json ? `${JSON.stringify(record, null, 2)}\n` : record.status === 'completed' ? text(record) : '');
  if (record.status !== 'completed')
    throw new ServiceCallError(`${noun} ${record.id} ${record.status} on the service: ${record.error ?? 'no reason given'}`);
}

export interface ServiceRestoreOptions {
  backup: string;
  to?: string;
  targetUrl?: string;
  clean?: boolean;
  table?: string;
  schema?: string;
  targetTime?: string;
  targetLsn?: string;
  targetXid?: string;
  targetName?: string;
  json?: boolean;
}

/**
 * The body of POST /restores: a logical restore into --target-url, or a physical one into --to on
 * the service's host. Checked here first, so a mistake costs no call.
 */
export function restoreRequest(options: ServiceRestoreOptions): RestoreRequest {
  const recoveryFlags = {
    targetTime: options.targetTime,
    targetLsn: options.targetLsn,
    targetXid: options.targetXid,
    targetName: options.targetName,
  };
  const recovering = Object.values(recoveryFlags).some((value) => value !== undefined);
  if (options.targetUrl) {
    if (options.to)
      throw new ConfigError('--to and --target-url exclude each other: a data directory or a database', ['--to', '--target-url']);
    if (recovering)
      throw new ConfigError('recovery targets need a physical backup and WAL; a logical backup restores to its own time', ['--target-*']);
    if (passwordOf(options.targetUrl))
      throw new ConfigError(
        '--target-url must not carry a password with --service: the service connects with its own credentials',
        ['--target-url'],
        {
          hint: "give the service's account access to the target (its PGPASSFILE or pg_hba), and the URL without the password",
        },
      );
    // Options not given stay undefined, and JSON leaves them out.
    return {
      backup: options.backup,
      target: { kind: 'logical', url: options.targetUrl, clean: options.clean, table: options.table, schema: options.schema },
    };
  }
  if (!options.to)
    throw new ConfigError('--to DIR (physical tiers) or --target-url URL (logical tiers) is required', ['--to', '--target-url']);
  if (!posix.isAbsolute(options.to))
    throw new ConfigError(
      `--to '${options.to}' must be an absolute path with --service: it names a directory on the service's host`,
      ['--to'],
      {
        hint: "under the service's restores.directoryRoot",
      },
    );
  for (const [flag, value] of [
    ['--clean', options.clean],
    ['--table', options.table],
    ['--schema', options.schema],
  ] as const)
    if (value !== undefined) throw new ConfigError(`${flag} goes with --target-url (a logical restore), not with --to`, [flag]);
  parseRecoveryTarget(recoveryFlags); // refuses two targets or a malformed one, as the local restore does
  const recoveryTarget = { time: options.targetTime, lsn: options.targetLsn, xid: options.targetXid, name: options.targetName };
  const target = { kind: 'physical' as const, directory: options.to, ...(recovering ? { recoveryTarget } : {}) };
  return { backup: options.backup, target };
}

/** `restore --service URL`: POST /restores, then its record to the end; fails unless it completed. */
export async function serviceRestore(client: ServiceClient, tier: TierName, options: ServiceRestoreOptions): Promise<void> {
  const started = await client.post<ServiceRestoreRecord>('/restores', restoreRequest(options));
  await followToEnd(client, tier, 'restores', started, options.json, restoreText);
}

function restoreText(record: ServiceRestoreRecord): string {
  const lines = [
    `restored backup ${record.backupId ?? record.backup} (${formatBytes(record.bytes ?? 0)}) into ${record.target} on the service's host (restore ${record.id})`,
  ];
  if (record.backupsApplied && record.backupsApplied.length > 1) lines.push(`  chain: ${record.backupsApplied.join(' → ')}`);
  return `${lines.join('\n')}\n`;
}

/** `info --service URL`: the service's backups (its catalog: running and failed ones too), newest last. */
export async function serviceInfo(
  client: ServiceClient,
  tier: TierName | undefined,
  options: { backup?: string; json?: boolean },
): Promise<void> {
  if (options.backup) {
    const record = await client.get<ServedBackupRecord>(path('backups', options.backup));
    if (tier) assertTier(client, tier, record.tier);
    process.stdout.write(options.json ? `${JSON.stringify(record, null, 2)}\n` : recordText(record));
    return;
  }
  const { backups } = await client.get<{ backups: ServedBackupRecord[] }>('/backups');
  if (tier && backups.length) assertTier(client, tier, backups[0].tier);
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ backups }, null, 2)}\n`);
    return;
  }
  process.stdout.write(backups.length ? `${recordRows(backups)}\n` : `no backups on ${client.name}\n`);
}

function recordText(record: ServedBackupRecord): string {
  if (record.status === 'completed') return describeBackup(record);
  return `backup ${record.id} ${record.status}${record.error ? `: ${record.error}` : ''}\n`;
}

/** The local `info` table, with the status the catalog adds (a service lists running and failed runs). */
export function recordRows(records: readonly ServedBackupRecord[]): string {
  return table(
    [...BACKUP_COLUMNS, 'status'],
    records.map((record) => [...backupCells(record), record.status]),
  );
}

/** `hold --service URL`: place (POST /holds), release (DELETE /holds/:backup) or list (GET /holds). */
export async function serviceHold(
  client: ServiceClient,
  tier: TierName,
  options: { backup?: string; reason?: string; release?: boolean; list?: boolean },
): Promise<LegalHold | LegalHold[]> {
  if (options.list) {
    const { holds } = await client.get<{ holds: LegalHold[] }>('/holds');
    for (const hold of holds) assertTier(client, tier, hold.tier);
    return holds;
  }
  const backup = options.backup as string;
  const hold = options.release
    ? await client.delete<LegalHold>(path('holds', backup))
    : await client.post<LegalHold>('/holds', { backup, reason: options.reason ?? 'no reason given' });
  assertTier(client, tier, hold.tier);
  return hold;
}

/**
 * `expire --dry-run --service URL`: the service's retention plan (GET /retention/plan). Expire
 * itself is not offered through a service: deleting backups stays a deliberate act on a host that
 * holds the repository's credentials (or the service's own schedule).
 */
export async function serviceRetentionPlan(
  client: ServiceClient,
  tier: TierName,
  options: { dryRun?: boolean; now?: string },
): Promise<ExpireResult> {
  if (!options.dryRun)
    throw new ConfigError(
      'expire deletes backups and is not offered through a service: only expire --dry-run (the plan) is',
      ['--service'],
      {
        hint: "run expire where the repository's credentials are (without --service), or let the service's expire schedule do it",
      },
    );
  if (options.now) throw new ConfigError('--now cannot go with --service: the service plans as of its clock', ['--now']);
  const result = await client.get<ExpireResult>('/retention/plan');
  assertTier(client, tier, result.tier);
  return result;
}

function passwordOf(url: string): string {
  try {
    return new URL(url).password;
  } catch {
    throw new ConfigError('--target-url is not a URL', ['--target-url'], { hint: 'e.g. postgres://restorer@db.internal:5432/copy' });
  }
}
