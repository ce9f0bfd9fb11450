import { appendFile, chown, writeFile } from 'node:fs/promises';
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
  /** 'keep' leaves the backed-up server's archive settings; 'off' for drills and test copies. */
  archiveMode: 'keep' | 'off';
  /**
   * wal-get --prefetch: segments the restore_command's prefetcher fetches ahead while the server
   * replays (0: off). Default DEFAULT_PREFETCH_SEGMENTS.
   */
  prefetchSegments?: number;
}

/** Queue depth of archive-get prefetch in the restore_command rookery restore writes. */
export const DEFAULT_PREFETCH_SEGMENTS = 32;

/**
 * The restore_command: `<self…> wal-get %f %p --tier T [--prefetch N]`, each argument quoted for
 * the shell. With prefetch, when self is `node …/rookery.js`, the same arguments go to the shell
 * fast path beside it (bin/rookery-wal-get, which serves prefetched segments without starting
 * node) with ROOKERY_NODE naming the node binary.
 */
export function restoreCommand(selfCommand: readonly string[], tier: TierName, prefetchSegments = 0): string {
  const getArgs = ['wal-get', '%f', '%p', '--tier', tier];
  if (prefetchSegments <= 0) return [...selfCommand.map(commandArgument), ...getArgs].join(' ');
  getArgs.push('--prefetch', String(prefetchSegments));
  const [node, script, ...globals] = selfCommand;
  if (script && basename(script) === 'rookery.js') {
    const fastPath = join(dirname(script), 'rookery-wal-get');
    return [`ROOKERY_NODE=${commandArgument(node)}`, commandArgument(fastPath), ...globals.map(commandArgument), ...getArgs].join(' ');
  }
  return [...selfCommand.map(commandArgument), ...getArgs].join(' ');
}

/** The settings, in postgresql.conf syntax. */
export function recoverySettingsLines(request: RecoverySettingsRequest): string[] {
  const settings: [string, string][] = [
    ['restore_command', restoreCommand(request.selfCommand, request.tier, request.prefetchSegments ?? DEFAULT_PREFETCH_SEGMENTS)],
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

/** Writes recovery.signal and appends the settings, owned by the server's account. */
export async function writeRecoverySettings(
  dataDirectory: string,
  request: RecoverySettingsRequest,
  owner: { uid: number; gid: number } | null,
): Promise<void> {
  const autoConf = join(dataDirectory, 'postgresql.auto.conf');
  const signal = join(dataDirectory, 'recovery.signal');
  await appendFile(autoConf, `\n${recoverySettingsLines(request).join('\n')}\n`, { mode: 0o600 });
  await writeFile(signal, '', { mode: 0o600 });
  if (owner) {
    await chown(autoConf, owner.uid, owner.gid);
    await chown(signal, owner.uid, owner.gid);
  }
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
