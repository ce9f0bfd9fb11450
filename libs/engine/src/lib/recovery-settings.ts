import { appendFile, chmod, chown, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { RecoveryTarget, TierName, formatLsn } from '@rookery/core';

/**
 * The recovery settings a restore writes into the data directory (DESIGN §6): recovery.signal
 * and lines appended to postgresql.auto.conf, which PostgreSQL reads last, so they win over the
 * backed-up server's own configuration without editing it.
 */
export interface RecoverySettingsRequest {
  /** argv running this rookery (EngineOptions.selfCommand). */
  selfCommand: readonly string[];
  tier: TierName;
  target: RecoveryTarget;
  /** 'keep': archives with rookery's own archive_command (wal-push); 'off' for drills and test copies. */
  archiveMode: 'keep' | 'off';
  /**
   * wal-get --prefetch: segments the restore_command's prefetcher fetches ahead while the server
   * replays (0: off). Default DEFAULT_PREFETCH_SEGMENTS.
   */
  prefetchSegments?: number;
  /**
   * A file (0600, the server's account's) holding the environment the restore_command and
   * archive_command need (store credentials, the encryption key): passed as --env-file=PATH so
   * no secret sits in the server's own environment.
   */
  envFile?: string;
}

/** Queue depth of archive-get prefetch in the restore_command rookery restore writes. */
export const DEFAULT_PREFETCH_SEGMENTS = 32;

/**
 * The restore_command: `<self…> wal-get %f %p --tier T [--prefetch N]`, each argument quoted for
 * the shell. With prefetch, when self is `node …/rookery.js`, the same arguments go to the shell
 * fast path beside it (bin/rookery-wal-get, which serves prefetched segments without starting
 * node) with ROOKERY_NODE naming the node binary.
 */
export function restoreCommand(selfCommand: readonly string[], tier: TierName, prefetchSegments = 0, envFile?: string): string {
  const getArgs = ['wal-get', '%f', '%p', '--tier', tier];
  if (envFile) selfCommand = [...selfCommand, envFileArgument(envFile)];
  if (prefetchSegments <= 0) return [...selfCommand.map(commandArgument), ...getArgs].join(' ');
  getArgs.push('--prefetch', String(prefetchSegments));
  const [node, script, ...globals] = selfCommand;
  if (script && basename(script) === 'rookery.js') {
    const fastPath = join(dirname(script), 'rookery-wal-get');
    return [`ROOKERY_NODE=${commandArgument(node)}`, commandArgument(fastPath), ...globals.map(commandArgument), ...getArgs].join(' ');
  }
  return [...selfCommand.map(commandArgument), ...getArgs].join(' ');
}

/** The archive_command rookery writes for a restored server that keeps archiving: `<self…> wal-push %p --tier T`. */
export function archiveCommand(selfCommand: readonly string[], tier: TierName, envFile?: string): string {
  const self = envFile ? [...selfCommand, envFileArgument(envFile)] : selfCommand;
  return [...self.map(commandArgument), 'wal-push', '%p', '--tier', tier].join(' ');
}

/** bin/rookery.js reads (and removes from argv) this one argument before anything else. */
function envFileArgument(path: string): string {
  return `--env-file=${path}`;
}

/**
 * rookery's own values for the settings it neutralised or never lets a backup choose (see
 * settings-guard): no command but its own archive_command (when the restore keeps archiving and
 * knows how to run itself), and for each library setting that was neutralised the value the backup
 * recorded (empty when it recorded none).
 */
export function guardedSettings(
  request: RecoverySettingsRequest | null,
  neutralisedLibraries: readonly string[],
  recordedLibraries: Readonly<Record<string, string>> = {},
): [string, string][] {
  const archive = request?.archiveMode === 'keep' ? archiveCommand(request.selfCommand, request.tier, request.envFile) : '';
  const settings: [string, string][] = [
    ['archive_command', archive],
    ['archive_library', ''],
    ['recovery_end_command', ''],
    ['archive_cleanup_command', ''],
    ['ssl_passphrase_command', ''],
  ];
  if (!request) settings.push(['restore_command', '']);
  // A neutralised library setting falls back to what the backup recorded, not to what an earlier
  // line of the restored configuration says.
  for (const name of new Set(neutralisedLibraries)) settings.push([name, recordedLibraries[name] ?? '']);
  return settings;
}

/** The settings, in postgresql.conf syntax. */
export function recoverySettingsLines(request: RecoverySettingsRequest): string[] {
  const settings: [string, string][] = [
    [
      'restore_command',
      restoreCommand(request.selfCommand, request.tier, request.prefetchSegments ?? DEFAULT_PREFETCH_SEGMENTS, request.envFile),
    ],
    // Follow promotions archived after the backup (a restore of a restore).
    ['recovery_target_timeline', 'latest'],
  ];
  const target = request.target;
  switch (target.kind) {
    case 'latest':
      break;
    case 'time':
      settings.push(['recovery_target_time', target.time.text]);
      break;
    case 'lsn':
      settings.push(['recovery_target_lsn', formatLsn(target.lsn)]);
      break;
    case 'xid':
      // recovery_target_xid takes the 32-bit id PostgreSQL prints (txid_current() % 2^32).
      settings.push(['recovery_target_xid', String(target.xid & 0xffffffffn)]);
      break;
    case 'name':
      settings.push(['recovery_target_name', target.name]);
      break;
  }
  if (target.kind !== 'latest') {
    // Inclusive (the default) keeps the target transaction; promote opens the server for writes.
    settings.push(['recovery_target_inclusive', 'on'], ['recovery_target_action', 'promote']);
  }
  if (request.archiveMode === 'off') settings.push(['archive_mode', 'off']);
  return [
    `# added by rookery restore (${new Date().toISOString()}): recovery to ${target.kind}`,
    ...settings.map(([name, value]) => `${name} = ${configString(value)}`),
  ];
}

/**
 * Appends the settings (recovery ones, then `guarded`: rookery's values for the guarded settings,
 * or null with --keep-settings) and writes recovery.signal when there is a request, all owned by
 * the server's account.
 */
export async function writeRecoverySettings(
  dataDirectory: string,
  request: RecoverySettingsRequest | null,
  owner: { uid: number; gid: number } | null,
  guarded: readonly [string, string][] | null = null,
): Promise<void> {
  const autoConf = join(dataDirectory, 'postgresql.auto.conf');
  const lines = request ? recoverySettingsLines(request) : [];
  if (guarded)
    lines.push(
      `# added by rookery restore: its own values for settings a backup may not choose`,
      ...guarded.map(([name, value]) => `${name} = ${configString(value)}`),
    );
  if (lines.length === 0) return;
  await appendFile(autoConf, `\n${lines.join('\n')}\n`, { mode: 0o600 });
  if (owner) await chown(autoConf, owner.uid, owner.gid);
  if (!request) return;
  const signal = join(dataDirectory, 'recovery.signal');
  await writeFile(signal, '', { mode: 0o600 });
  if (owner) await chown(signal, owner.uid, owner.gid);
}

/** Writes the environment file (JSON, 0600, the server's account's) a RecoverySettingsRequest.envFile names. */
export async function writeEnvironmentFile(
  path: string,
  env: Readonly<Record<string, string>>,
  owner: { uid: number; gid: number } | null,
): Promise<void> {
  await writeFile(path, JSON.stringify(env), { mode: 0o600 });
  await chmod(path, 0o600);
  if (owner) await chown(path, owner.uid, owner.gid);
}

/** A postgresql.conf string literal: quotes doubled, backslashes escaped (the parser reads C escapes). */
export function configString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/**
 * One argument of the restore_command: PostgreSQL replaces %f/%p/%r/%% before the shell runs
 * it, so a literal % (URL-encoded endpoints) is doubled; anything beyond a safe set is single-quoted.
 */
function commandArgument(argument: string): string {
  const escaped = argument.replace(/%/g, '%%');
  if (/^[A-Za-z0-9_\-./:=@%+,]+$/.test(escaped)) return escaped;
  return `'${escaped.replace(/'/g, "'\\''")}'`;
}
