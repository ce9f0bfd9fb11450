import { BackupManifest } from '@rookery/core';
import { WalStatus } from '@rookery/wal';

// Moved to cli.errors (the WAL commands' entry reports errors without loading the progress bars).
export { EXIT, errorLine, exitCodeFor } from './cli.errors';

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

/** What describeBackup prints: a manifest, or a finished record a service answered. */
export interface BackupSummary {
  id: string;
  tier: string;
  type: string;
  method: string;
  startedAt: string;
  finishedAt: string | null;
  bytes: number | null;
  storedBytes: number | null;
  artifacts: readonly { name: string }[];
  startLsn?: string | null;
  stopLsn?: string | null;
  /** A manifest's; a service record has none. */
  timeline?: number | null;
}

export function describeBackup(backup: BackupSummary): string {
  const ms = Date.parse(backup.finishedAt ?? backup.startedAt) - Date.parse(backup.startedAt);
  const bytes = backup.bytes ?? 0;
  const storedBytes = backup.storedBytes ?? 0;
  const rate = bytes / Math.max(ms / 1000, 0.001);
  return [
    `backup ${backup.id} completed`,
    `  tier ${backup.tier}, ${backup.type} ${backup.method}` +
      (backup.method === 'physical'
        ? `${backup.timeline === undefined ? '' : `, timeline ${backup.timeline}`}, lsn ${backup.startLsn}..${backup.stopLsn}`
        : `, artifacts ${backup.artifacts.map((artifact) => artifact.name).join(', ')}`),
    `  ${formatBytes(bytes)} → ${formatBytes(storedBytes)} stored (${(bytes / Math.max(storedBytes, 1)).toFixed(2)}x) in ${formatDuration(ms)}, ${formatBytes(rate)}/s`,
    '',
  ].join('\n');
}

/** A fixed-width text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

/** The columns of a backup listing (`info`, and `info --service` before its status column). */
export const BACKUP_COLUMNS = ['id', 'tier', 'type', 'method', 'finished', 'size', 'stored', 'ratio', 'lsn range'];

/** A backup's cells under BACKUP_COLUMNS; what a running or failed record does not have yet is '-'. */
export function backupCells(backup: BackupSummary): string[] {
  const { bytes, storedBytes } = backup;
  return [
    backup.id,
    backup.tier,
    backup.type,
    backup.method,
    backup.finishedAt ? backup.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-',
    bytes === null ? '-' : formatBytes(bytes),
    storedBytes === null ? '-' : formatBytes(storedBytes),
    bytes !== null && storedBytes ? `${(bytes / storedBytes).toFixed(2)}x` : '-',
    backup.startLsn ? `${backup.startLsn}..${backup.stopLsn}` : '-',
  ];
}

export function backupRows(backups: BackupManifest[]): string {
  return table(
    [...BACKUP_COLUMNS, 'parent'],
    backups.map((backup) => [...backupCells(backup), backup.parent ?? '-']),
  );
}

/** A user tablespace of a physical backup as `info` shows it: its artifact (tablespace-tar) and size. */
export interface TablespaceListing {
  oid: number;
  name: string;
  /** Its directory on the backed-up server. */
  location: string;
  bytes: number;
  storedBytes: number;
  artifact: string;
}

/** The backup's user tablespaces, one per tablespace-tar (or tablespace-incremental) artifact, in the manifest's order. */
export function tablespacesOf(backup: BackupManifest): TablespaceListing[] {
  return backup.artifacts.flatMap((artifact) =>
    (artifact.kind === 'tablespace-tar' || artifact.kind === 'tablespace-incremental') && artifact.tablespace
      ? [{ ...artifact.tablespace, bytes: artifact.bytes, storedBytes: artifact.storedBytes, artifact: artifact.name }]
      : [],
  );
}

/** A table of the tablespaces of these backups (with `withBackup`, a column naming each one's backup). */
export function tablespaceRows(backups: readonly BackupManifest[], withBackup: boolean): string {
  const rows = backups.flatMap((backup) =>
    tablespacesOf(backup).map((tablespace) => [
      ...(withBackup ? [backup.id] : []),
      String(tablespace.oid),
      tablespace.name,
      tablespace.location,
      formatBytes(tablespace.bytes),
      formatBytes(tablespace.storedBytes),
      tablespace.artifact,
    ]),
  );
  return table([...(withBackup ? ['backup'] : []), 'oid', 'name', 'original location', 'size', 'stored', 'artifact'], rows);
}

/** The `info --json` shape (DESIGN §10): stable keys scripts rely on. */
export function backupJson(backup: BackupManifest): Record<string, unknown> {
  return {
    id: backup.id,
    tier: backup.tier,
    type: backup.type,
    method: backup.method,
    status: 'completed',
    database: backup.database,
    startedAt: backup.startedAt,
    finishedAt: backup.finishedAt,
    timeline: backup.timeline,
    startLsn: backup.startLsn,
    stopLsn: backup.stopLsn,
    walRange: backup.walRange,
    parent: backup.parent,
    bytes: backup.bytes,
    storedBytes: backup.storedBytes,
    retentionUntil: backup.retentionUntil,
    storageClass: backup.storageClass,
    regions: backup.regions,
    postgres: backup.postgres,
    tablespaces: tablespacesOf(backup),
    artifacts: backup.artifacts.map((artifact) => ({
      name: artifact.name,
      kind: artifact.kind,
      ...(artifact.tablespace ? { tablespace: artifact.tablespace } : {}),
      bytes: artifact.bytes,
      storedBytes: artifact.storedBytes,
      sha256: artifact.sha256,
      compression: artifact.compression,
      encryption: artifact.encryption.algorithm,
    })),
  };
}

/**
 * What a restore of `backup` applies, oldest first: the full backup, then each incremental up to
 * this one. A parent missing from `backups` (expired, damaged) ends the walk: the chain then
 * starts with that parent's id, which no listed backup has.
 */
export function chainOf(backup: BackupManifest, backups: readonly BackupManifest[]): string[] {
  const chain = [backup.id];
  const seen = new Set(chain);
  for (let parent = backup.parent; parent && !seen.has(parent); ) {
    chain.unshift(parent);
    seen.add(parent);
    parent = backups.find((candidate) => candidate.id === parent)?.parent ?? null;
  }
  return chain;
}

/** The "WAL archive" section of `rookery info`. */
export function walStatusLines(status: WalStatus): string {
  const lines = [`WAL archive (${status.tier})`];
  const last = status.lastArchived;
  lines.push(`  last archived   ${last ? `${last.name} (timeline ${last.timeline}) at ${last.archivedAt}` : 'none'}`);
  lines.push(`  archived files  ${status.archivedFiles}`);
  if (!status.server) {
    lines.push(`  server          not checked: ${status.serverProblem}`);
    return lines.join('\n');
  }
  const { server } = status;
  lines.push(
    `  server          archive_mode=${server.archiveMode}, timeline ${server.timeline}, at ${server.currentLsn || '(in recovery)'}`,
  );
  lines.push(
    `  archive lag     ${server.lagSegments === null ? '-' : `${server.lagSegments} segment(s)`}, last archived by the server ${server.archiver.lastArchivedWal ?? 'none'}`,
  );
  if (server.archiver.failedCount > 0) {
    lines.push(
      `  failures        ${server.archiver.failedCount}, last on ${server.archiver.lastFailedWal} at ${server.archiver.lastFailedAt}`,
    );
  }
  if (status.exposure) {
    lines.push(
      `  rpo exposure    ${formatBytes(status.exposure.bytes)} of WAL not in the repository, ${formatDuration(Math.round(status.exposure.seconds * 1000))}`,
    );
  }
  return lines.join('\n');
}
