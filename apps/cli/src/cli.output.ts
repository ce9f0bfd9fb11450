import { MultiBar, Presets, SingleBar } from 'cli-progress';
import { BackupManifest } from '@rookery/core';
import { ProgressEvent, ProgressListener, WalStatus } from '@rookery/engine';

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

/** A fixed-width text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column].length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

export function backupRows(backups: BackupManifest[]): string {
  return table(
    ['id', 'tier', 'type', 'method', 'finished', 'size', 'stored', 'ratio', 'lsn range'],
    backups.map((backup) => [
      backup.id,
      backup.tier,
      backup.type,
      backup.method,
      backup.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
      formatBytes(backup.bytes),
      formatBytes(backup.storedBytes),
      backup.storedBytes ? `${(backup.bytes / backup.storedBytes).toFixed(2)}x` : '-',
      backup.startLsn ? `${backup.startLsn}..${backup.stopLsn}` : '-',
    ]),
  );
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
    bytes: backup.bytes,
    storedBytes: backup.storedBytes,
    retentionUntil: backup.retentionUntil,
    storageClass: backup.storageClass,
    regions: backup.regions,
    postgres: backup.postgres,
    artifacts: backup.artifacts.map((artifact) => ({
      name: artifact.name,
      bytes: artifact.bytes,
      storedBytes: artifact.storedBytes,
      sha256: artifact.sha256,
      compression: artifact.compression,
      encryption: artifact.encryption.algorithm,
    })),
  };
}

/**
 * Progress bars on stderr when it is a terminal; silence otherwise (logs and pipes stay clean).
 * Returns the listener and a stop function.
 */
export function progressBars(enabled: boolean): { listener: ProgressListener; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { listener: () => undefined, stop: () => undefined };
  const multi = new MultiBar(
    {
      format: ' {phase} {artifact} |{bar}| {percentage}% {done}/{total} {speed}',
      hideCursor: true,
      clearOnComplete: false,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  const bars = new Map<string, { bar: SingleBar; started: number }>();
  const listener = (event: ProgressEvent) => {
    const key = `${event.phase}:${event.artifact ?? ''}`;
    let entry = bars.get(key);
    const total = event.totalBytes ?? Math.max(event.bytes, 1);
    if (!entry) {
      entry = { bar: multi.create(total, 0), started: Date.now() };
      bars.set(key, entry);
    }
    entry.bar.setTotal(Math.max(total, event.bytes));
    const seconds = Math.max((Date.now() - entry.started) / 1000, 0.001);
    entry.bar.update(event.bytes, {
      phase: event.phase.padEnd(8),
      artifact: event.artifact ?? '',
      done: formatBytes(event.bytes),
      total: event.totalBytes ? formatBytes(event.totalBytes) : '?',
      speed: `${formatBytes(event.bytes / seconds)}/s`,
    });
  };
  return { listener, stop: () => multi.stop() };
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
  lines.push(`  server          archive_mode=${server.archiveMode}, timeline ${server.timeline}, at ${server.currentLsn || '(in recovery)'}`);
  lines.push(`  archive lag     ${server.lagSegments === null ? '-' : `${server.lagSegments} segment(s)`}, last archived by the server ${server.archiver.lastArchivedWal ?? 'none'}`);
  if (server.archiver.failedCount > 0) {
    lines.push(`  failures        ${server.archiver.failedCount}, last on ${server.archiver.lastFailedWal} at ${server.archiver.lastFailedAt}`);
  }
  if (status.exposure) {
    lines.push(`  rpo exposure    ${formatBytes(status.exposure.bytes)} of WAL not in the repository, ${formatDuration(Math.round(status.exposure.seconds * 1000))}`);
  }
  return lines.join('\n');
}
