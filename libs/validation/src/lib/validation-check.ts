import { ArtifactKind, BackupWalContinuity, WalContinuityReport, WalGap } from '@rookery/core';
import { VerifyResult } from '@rookery/engine';

/**
 * One named check of a validation or a drill, as the validation.* and drill.completed events
 * carry it: `detail` says what was found (counts on success, the reason on failure) and names
 * the artifact, table or segment involved.
 */
export interface ValidationCheck {
  name: string;
  ok: boolean;
  detail?: string;
}

/** Check names, stable: dashboards and alerts match on them. */
export const CHECK = {
  manifest: 'manifest',
  sha256: (artifact: string) => `sha256 ${artifact}`,
  /** A physical backup restored into scratch space by the restore's own code (validation). */
  restoreExtraction: 'restore extraction',
  verifybackup: 'pg_verifybackup',
  restoreList: (artifact: string) => `pg_restore --list ${artifact}`,
  walContinuity: 'wal continuity',
  /** An incremental's parents: each manifest present and trusted, up to its full. */
  chain: 'chain',
  restore: 'restore',
  notInRecovery: 'not in recovery',
  tablesReadable: 'tables readable',
  dataPresent: 'data present',
  /** Only when a drill could not remove what it made (scratch directory, server). */
  cleanup: 'cleanup',
} as const;

export function allOk(checks: readonly ValidationCheck[]): boolean {
  return checks.length > 0 && checks.every((check) => check.ok);
}

/** The failed checks as one line: "sha256 base.tar.zst: checksum mismatch …; pg_verifybackup: …". */
export function failureSummary(checks: readonly ValidationCheck[]): string {
  return checks
    .filter((check) => !check.ok)
    .map((check) => (check.detail ? `${check.name}: ${check.detail}` : check.name))
    .join('; ');
}

/** What verify counted in an artifact, by kind (a tar's members, an incremental's files, an index's entries). */
const ENTRIES_OF: Partial<Record<ArtifactKind, string>> = {
  'base-tar': 'tar entries',
  'tablespace-tar': 'tar entries',
  'base-incremental': 'files in the incremental',
  'tablespace-incremental': 'files in the incremental',
  'page-index': 'files indexed',
  'pg-manifest': 'files listed',
};

/**
 * engine.verify's per-artifact result as checks: stored and logical sha256, and that the archive
 * reads; for an incremental, its chain of parent manifests too.
 */
export function checksumChecks(result: VerifyResult): ValidationCheck[] {
  const chain: ValidationCheck[] = result.chain
    ? [
        {
          name: CHECK.chain,
          ok: result.chain.ok,
          detail: result.chain.ok
            ? result.chain.links.map((link) => link.id).join(' → ')
            : (result.chain.error?.message ?? 'the chain is broken'),
        },
      ]
    : [];
  const artifacts = result.artifacts.map((artifact) => ({
    name: CHECK.sha256(artifact.name),
    ok: artifact.ok,
    detail: artifact.ok
      ? artifact.entries !== undefined && artifact.entries > 0
        ? `${artifact.storedBytes} stored bytes, ${artifact.entries} ${ENTRIES_OF[artifact.kind ?? 'base-tar'] ?? 'entries'}`
        : `${artifact.storedBytes} stored bytes`
      : `artifact '${artifact.name}': ${artifact.error?.message ?? 'unreadable'}`,
  }));
  return [...artifacts, ...chain];
}

/**
 * WAL continuity of one physical backup: every segment from the one holding its start LSN to the
 * newest archived one must be there (gaps between start and stop are covered by the WAL inside
 * the base backup), and no segment may be archived with two contents. A backup from which no
 * WAL at all is archived fails: its tier archives WAL by policy, so its point-in-time window
 * would end where the backup ends.
 */
export function walContinuityCheck(backupId: string, report: WalContinuityReport): ValidationCheck {
  const entry = report.backups.find((candidate) => candidate.backup === backupId);
  if (!entry) return { name: CHECK.walContinuity, ok: false, detail: `backup '${backupId}' has no start LSN and timeline to follow` };
  const problems: string[] = [];
  if (entry.lastSegment === null) problems.push(`no WAL archived from ${entry.firstSegment} on`);
  for (const gap of entry.gaps.filter((candidate) => candidate.breaksWindow)) problems.push(`missing ${gapText(gap)}`);
  const conflicts = report.conflicts.filter((conflict) => conflict.name.slice(8) >= entry.firstSegment.slice(8));
  for (const conflict of conflicts) problems.push(`${conflict.name} archived with ${conflict.sha256.length} different contents`);
  if (problems.length) return { name: CHECK.walContinuity, ok: false, detail: problems.join('; ') };
  return { name: CHECK.walContinuity, ok: true, detail: continuityText(entry) };
}

function continuityText(entry: BackupWalContinuity): string {
  return `${entry.firstSegment}..${entry.lastSegment} on timeline${entry.timelines.length > 1 ? 's' : ''} ${entry.timelines.join('>')}, ${entry.segments} segments`;
}

function gapText(gap: WalGap): string {
  return gap.count === 1 ? gap.first : `${gap.first}..${gap.last} (${gap.count} segments)`;
}
