import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { BackupManifest, LegalHold, formatLsn, redactUrl } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { load } from '../cli.lazy';
import { backupJson, chainOf, formatBytes, formatDuration, table, tablespaceRows, tablespacesOf } from '../cli.output';

/** One step of a backup's restore chain: the full backup first, this backup last. */
interface ChainLink {
  id: string;
  /** Null: the parent is not in the repository (expired or damaged), so the chain cannot be restored. */
  type: string | null;
  finishedAt: string | null;
  /** What the link stores (a block incremental: its changed pages and block maps); null when missing. */
  storedBytes: number | null;
}

/** Where the archived WAL after a physical backup lets a restore reach. */
interface WalReach {
  endLsn: string;
  endTime: string;
  gapAt: string | null;
}

interface BackupCopy {
  region: string;
  store: string | null;
  status: string;
  error: string | null;
}

/** A validation or drill of the backup, as the compliance ledger recorded its event. */
interface BackupEvidence {
  kind: 'validation' | 'drill';
  ok: boolean;
  at: string;
  /** The checks that failed, or the reason it could not run. */
  detail: string;
}

/** Where the evidence was read, or why there is none to show (no catalog here, unreachable). */
type EvidenceSource = { catalog: string; records: BackupEvidence[] } | { unavailable: string };

const EVIDENCE_TYPES = [
  'dev.rookery.validation.passed',
  'dev.rookery.validation.failed',
  'dev.rookery.drill.completed',
  'dev.rookery.drill.failed',
];

/** What `info --backup ID` shows: the manifest and what the repository knows about the backup. */
export interface BackupDetail {
  manifest: BackupManifest;
  chain: ChainLink[];
  /** Physical backups: how far the archived WAL reaches from it (null: not usable for recovery). */
  walReach: WalReach | null;
  copies: BackupCopy[];
  hold: LegalHold | null;
  evidence: EvidenceSource;
}

export async function backupDetail(engine: RookeryEngine, manifest: BackupManifest): Promise<BackupDetail> {
  const { backups } = await engine.list(manifest.tier);
  const chain = chainOf(manifest, backups).map((id) => {
    const link = backups.find((backup) => backup.id === id);
    return { id, type: link?.type ?? null, finishedAt: link?.finishedAt ?? null, storedBytes: link?.storedBytes ?? null };
  });
  const replication = await engine.replicationStatus(manifest.tier);
  const copies = replication.regions.map((region) => {
    const entry = region.backups.find((backup) => backup.backupId === manifest.id);
    const error = entry?.error?.message ?? (entry?.brokenLink ? `chain broken: ${entry.brokenLink}` : null);
    return { region: region.region, store: region.store, status: entry?.status ?? 'missing', error };
  });
  const hold = (await engine.holds(manifest.tier)).find((entry) => entry.backupId === manifest.id) ?? null;
  return {
    manifest,
    chain,
    walReach: await walReachOf(engine, manifest),
    copies,
    hold,
    evidence: await evidenceOf(engine.config.catalog.url, manifest),
  };
}

/**
 * Validations and drills of the backup from the compliance ledger in the catalog (the repository
 * keeps no record of them). Read only from a catalog that exists: `info` never creates one.
 */
async function evidenceOf(url: string, manifest: BackupManifest): Promise<EvidenceSource> {
  const missing = missingCatalog(url);
  if (missing) return { unavailable: missing };
  try {
    const ledger = await load.catalog().EventLedger.open(url);
    try {
      const entries = await ledger.list({ subject: manifest.tier, types: EVIDENCE_TYPES });
      const records = entries
        .filter((entry) => entry.data['backupId'] === manifest.id)
        .map(evidenceFrom)
        .sort((a, b) => a.at.localeCompare(b.at));
      return { catalog: redactUrl(url), records };
    } finally {
      await ledger.close();
    }
  } catch (error) {
    return { unavailable: `the catalog could not be read: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
}

/** Why a sqlite catalog cannot hold any evidence here (the file is not there), else null. */
function missingCatalog(url: string): string | null {
  if (!url.startsWith('sqlite://')) return null;
  const path = decodeURIComponent(url.slice('sqlite://'.length));
  if (path === ':memory:') return 'the catalog is in memory (nothing recorded)';
  return existsSync(resolve(path)) ? null : `no catalog at ${resolve(path)}`;
}

function evidenceFrom(entry: { type: string; time: string; data: Record<string, unknown> }): BackupEvidence {
  const kind = entry.type.includes('.drill.') ? 'drill' : 'validation';
  const ok = entry.type.endsWith('.passed') || (entry.type.endsWith('.completed') && entry.data['ok'] === true);
  const checks = Array.isArray(entry.data['checks']) ? (entry.data['checks'] as { name: string; ok: boolean }[]) : [];
  const failed = checks.filter((check) => !check.ok).map((check) => check.name);
  const error = (entry.data['error'] as { message?: string } | undefined)?.message;
  const at = String(entry.data['validatedAt'] ?? entry.data['finishedAt'] ?? entry.data['failedAt'] ?? entry.time);
  return { kind, ok, at, detail: error ?? (failed.length ? `failed: ${failed.join(', ')}` : `${checks.length} check(s) passed`) };
}

async function walReachOf(engine: RookeryEngine, manifest: BackupManifest): Promise<WalReach | null> {
  if (manifest.method !== 'physical') return null;
  const window = await engine.recoveryWindow(manifest.tier);
  const reach = window.reaches.find((entry) => entry.backup.id === manifest.id);
  return reach ? { endLsn: formatLsn(reach.endLsn), endTime: reach.endTime.toISOString(), gapAt: reach.gapAt } : null;
}

export function detailJson(detail: BackupDetail): Record<string, unknown> {
  return {
    ...backupJson(detail.manifest),
    chain: detail.chain,
    walReach: detail.walReach,
    copies: detail.copies,
    hold: detail.hold,
    evidence: detail.evidence,
    tool: detail.manifest.tool,
    manifestChecksum: detail.manifest.checksum,
  };
}

export function detailText(detail: BackupDetail): string {
  const { manifest } = detail;
  const took = Date.parse(manifest.finishedAt) - Date.parse(manifest.startedAt);
  const lines = [
    `backup ${manifest.id}`,
    `  tier            ${manifest.tier} (${manifest.type} ${manifest.method}) of database ${manifest.database}`,
    `  taken           ${manifest.startedAt} .. ${manifest.finishedAt} (${formatDuration(took)}) by rookery ${manifest.tool.version}`,
    `  postgres        ${manifest.postgres.version}, system ${manifest.postgres.systemIdentifier}`,
    `  size            ${formatBytes(manifest.bytes)} → ${formatBytes(manifest.storedBytes)} stored`,
    `  retention       until ${manifest.retentionUntil}, storage class ${manifest.storageClass}${detail.hold ? `, LEGAL HOLD: ${detail.hold.reason} (by ${detail.hold.heldBy})` : ''}`,
    ...chainLines(detail.chain),
  ];
  if (manifest.method === 'physical') {
    lines.push(
      `  wal             timeline ${manifest.timeline}, lsn ${manifest.startLsn}..${manifest.stopLsn}, needs segments ${manifest.walRange ? `${manifest.walRange.start}..${manifest.walRange.stop}` : '-'}`,
    );
    const reach = detail.walReach;
    lines.push(
      `  recoverable to  ${reach ? `lsn ${reach.endLsn} (${reach.endTime})${reach.gapAt ? `, gap at ${reach.gapAt}` : ''}` : 'not usable for recovery (see rookery verify --wal)'}`,
    );
  }
  lines.push(
    `  copies          ${detail.copies.length ? detail.copies.map((copy) => `${copy.region}: ${copy.status}${copy.store ? '' : ' (no repository configured for the region)'}${copy.error ? ` (${copy.error})` : ''}`).join(', ') : 'no replica regions configured'}`,
  );
  lines.push(`  checksum        manifest sha256 ${manifest.checksum}`);
  lines.push(...evidenceLines(detail.evidence), '', 'artifacts');
  const rows = manifest.artifacts.map((artifact) => [
    artifact.name,
    artifact.kind,
    formatBytes(artifact.bytes),
    formatBytes(artifact.storedBytes),
    `${artifact.compression.codec}${artifact.compression.codec === 'none' ? '' : `:${artifact.compression.level}`}`,
    artifact.encryption.algorithm,
    artifact.sha256,
  ]);
  lines.push(table(['name', 'kind', 'size', 'stored', 'compression', 'encryption', 'sha256 (stored bytes)'], rows).replace(/^/gm, '  '));
  // pg_tblspc/<oid> pointed at each original location; a restore puts it there or where --tablespace-map says.
  if (tablespacesOf(manifest).length) lines.push('', 'tablespaces', tablespaceRows([manifest], false).replace(/^/gm, '  '));
  return `${lines.join('\n')}\n`;
}

function chainLinkText(link: ChainLink): string {
  if (!link.type) return `${link.id} (MISSING: the chain cannot be restored)`;
  return link.storedBytes === null ? `${link.id} (${link.type})` : `${link.id} (${link.type}, ${formatBytes(link.storedBytes)} stored)`;
}

/** One line for a full; an incremental's chain one link a line (hourly chains are long), full first. */
function chainLines(chain: readonly ChainLink[]): string[] {
  if (chain.length < 2) return [`  chain           ${chain.map(chainLinkText).join(' → ')}`];
  const complete = chain.every((link) => link.storedBytes !== null);
  const total = chain.reduce((sum, link) => sum + (link.storedBytes ?? 0), 0);
  return [
    `  chain           ${chain.length} backups${complete ? `, ${formatBytes(total)} stored: what restoring this one reads` : ', BROKEN'}`,
    ...chain.map((link, index) => `    ${index === 0 ? '  ' : '→ '}${chainLinkText(link)}`),
  ];
}

function evidenceLines(evidence: EvidenceSource): string[] {
  if ('unavailable' in evidence) return [`  validations     not known here: ${evidence.unavailable}`];
  const lines = evidence.records.map(
    (record) => `  ${record.kind.padEnd(15)} ${record.ok ? 'passed' : 'FAILED'} at ${record.at}: ${record.detail}`,
  );
  return lines.length ? lines : [`  validations     none recorded (nor drills) in ${evidence.catalog}`];
}
