import { Inject, Injectable, Logger, OnApplicationShutdown, Optional } from '@nestjs/common';
import { EventLedger, LedgerEntry } from '@rookery/catalog';
import { RookeryConfig } from '@rookery/config';
import { TIER_NAMES, TierName, longestScheduleGapSeconds } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { WalStatus } from '@rookery/wal';
import { Gauge } from 'prom-client';
import { ROOKERY_CONFIG } from '../service-kit.constants';
import { BackupMetricsService } from './backup-metrics.service';

/** One scrape's figures of a tier, read from the repository, its server and the catalog's ledger. */
export interface TierObjectives {
  tier: TierName;
  rpoSeconds: number;
  rtoSeconds: number;
  /** Longest gap between two scheduled backups; null for a tier with only 'continuous'. */
  scheduleIntervalSeconds: number | null;
  lastSuccessAt: Date | null;
  rpoExposureSeconds: number | null;
  walLagSegments: number | null;
  walLagSeconds: number | null;
  lastValidation: { at: Date; ok: boolean } | null;
  lastDrill: { at: Date; ok: boolean; durationSeconds: number; withinRto: boolean } | null;
  replication: { region: string; lagSeconds: number; missing: number }[];
}

type Labels = 'tier' | 'region';

/**
 * The recovery objectives as Prometheus gauges (the figures of /status, /replication and the
 * ledger): RPO exposure, WAL archive lag, last validation, last drill against the RTO and
 * replication lag per region. Read from the repository and the catalog at each scrape, so a backup,
 * validation or drill made by another process (the CLI, the validator) counts the same as one of
 * this service. docker/prometheus/rookery-alerts.yml alerts on them.
 */
@Injectable()
export class ObjectiveMetricsService implements OnApplicationShutdown {
  private ledger: Promise<EventLedger> | null = null;
  /** Whether this service opened the ledger (and closes it), or uses the application's. */
  private readonly ownsLedger: boolean;
  private readonly gauges = new Map<string, Gauge<Labels>>();
  private readonly logger = new Logger(ObjectiveMetricsService.name);

  constructor(
    private readonly metrics: BackupMetricsService,
    /** None in a service without a repository (compliance-reporting on the ledger alone): ledger figures only. */
    @Optional() @Inject(RookeryEngine) private readonly engine: RookeryEngine | null,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
    /** The application's own ledger (compliance-reporting): read through it rather than a second connection to the catalog. */
    @Optional() @Inject(EventLedger) appLedger: EventLedger | null = null,
  ) {
    this.ownsLedger = !appLedger;
    if (appLedger) this.ledger = Promise.resolve(appLedger);
    for (const [name, help] of Object.entries(GAUGES)) {
      this.gauges.set(
        name,
        new Gauge<Labels>({
          name,
          help,
          labelNames: name.includes('replication') ? ['tier', 'region'] : ['tier'],
          registers: [metrics.registry],
        }),
      );
    }
  }

  /** Sets every gauge from the tiers' current figures; called before each scrape. */
  async refresh(): Promise<void> {
    const figures = await Promise.all(TIER_NAMES.map((tier) => this.tierObjectives(tier)));
    for (const gauge of this.gauges.values()) gauge.reset();
    for (const tier of figures) this.publish(tier);
  }

  async tierObjectives(tier: TierName): Promise<TierObjectives> {
    const policy = this.config.tiers[tier].policy;
    const engine = this.engine;
    const [listing, wal, ledger, replication] = await Promise.all([
      engine?.list(tier).catch(() => null) ?? null,
      // A logical tier archives no WAL: its recovery point is its newest backup.
      policy.method === 'physical' ? (engine?.walStatus(tier).catch(() => null) ?? null) : null,
      this.ledgerEntries(tier),
      engine?.replicationStatus(tier).catch(() => null) ?? null,
    ]);
    const lastSuccessAt = newest((listing?.backups ?? []).map((backup) => new Date(backup.finishedAt)));
    return {
      tier,
      rpoSeconds: policy.rpoSeconds,
      rtoSeconds: policy.rtoSeconds,
      scheduleIntervalSeconds: longestScheduleGapSeconds([policy.fullSchedule, policy.incrementalSchedule]),
      lastSuccessAt,
      rpoExposureSeconds: rpoExposure(wal, lastSuccessAt, new Date(), streamRecoveryPoint(ledger)),
      walLagSegments: wal?.server?.lagSegments ?? null,
      walLagSeconds: wal?.exposure?.seconds ?? null,
      lastValidation: lastValidation(ledger),
      lastDrill: lastDrill(ledger),
      replication: (replication?.regions ?? []).flatMap((region) =>
        region.wal ? [{ region: region.region, lagSeconds: region.wal.lagSeconds, missing: region.wal.missing }] : [],
      ),
    };
  }

  async onApplicationShutdown(): Promise<void> {
    if (!this.ownsLedger) return;
    const ledger = await this.ledger?.catch(() => null);
    await ledger?.close();
  }

  private publish(figures: TierObjectives): void {
    const { tier } = figures;
    this.set('rookery_rpo_objective_seconds', tier, figures.rpoSeconds);
    this.set('rookery_rto_objective_seconds', tier, figures.rtoSeconds);
    this.set('rookery_backup_schedule_interval_seconds', tier, figures.scheduleIntervalSeconds);
    this.set('rookery_rpo_exposure_seconds', tier, figures.rpoExposureSeconds);
    this.set('rookery_wal_archive_lag_segments', tier, figures.walLagSegments);
    this.set('rookery_wal_archive_lag_seconds', tier, figures.walLagSeconds);
    this.set('rookery_validation_last_timestamp_seconds', tier, seconds(figures.lastValidation?.at));
    this.set('rookery_validation_last_success', tier, flag(figures.lastValidation?.ok));
    this.set('rookery_drill_last_timestamp_seconds', tier, seconds(figures.lastDrill?.at));
    this.set('rookery_drill_last_success', tier, flag(figures.lastDrill?.ok));
    this.set('rookery_drill_last_duration_seconds', tier, figures.lastDrill?.durationSeconds ?? null);
    this.set('rookery_drill_last_within_rto', tier, flag(figures.lastDrill?.withinRto));
    if (figures.lastSuccessAt) this.metrics.lastSuccessFromRepository(tier, figures.lastSuccessAt);
    for (const region of figures.replication) {
      this.gauges.get('rookery_replication_wal_lag_seconds')?.set({ tier, region: region.region }, region.lagSeconds);
      this.gauges.get('rookery_replication_wal_missing_files')?.set({ tier, region: region.region }, region.missing);
    }
  }

  private set(name: keyof typeof GAUGES, tier: TierName, value: number | null): void {
    if (value !== null) this.gauges.get(name)?.set({ tier }, value);
  }

  /** The tier's validations and drills from the catalog's ledger; none when it cannot be read. */
  private async ledgerEntries(tier: TierName): Promise<LedgerEntry[]> {
    try {
      return await (await this.openLedger()).list({ subject: tier, types: [...LEDGER_TYPES] });
    } catch (error) {
      // The gauges of the ledger are left out of this scrape (absent, not zero), and the reason logged.
      this.logger.warn(`cannot read the compliance ledger for tier ${tier}: ${error instanceof Error ? error.message : String(error)}`);
      return [];
    }
  }

  /** The ledger, opened at the first scrape when the application has none; a failed open is tried again at the next. */
  private openLedger(): Promise<EventLedger> {
    this.ledger ??= EventLedger.open(this.config.catalog.url).catch((error: unknown) => {
      this.ledger = null;
      throw error;
    });
    return this.ledger;
  }
}

const GAUGES = {
  rookery_rpo_objective_seconds: "The tier policy's RPO (seconds)",
  rookery_rto_objective_seconds: "The tier policy's RTO (seconds)",
  rookery_backup_schedule_interval_seconds: 'Longest gap between two scheduled backups of the tier (seconds)',
  rookery_rpo_exposure_seconds:
    "What a loss of the tier's server now would cost: seconds since its recovery point (0 while a synchronous stream is in sync; else archived WAL, else the newest backup)",
  rookery_wal_archive_lag_segments: "Complete WAL segments the tier's server has not archived yet",
  rookery_wal_archive_lag_seconds:
    'Seconds since the newest archived WAL segment while WAL written after it is not archived (0 when current)',
  rookery_validation_last_timestamp_seconds: 'Time of the newest validation of a backup of the tier (unix seconds)',
  rookery_validation_last_success: 'Whether the newest validation of the tier passed (1) or failed (0)',
  rookery_drill_last_timestamp_seconds: 'Finish time of the newest restore drill of the tier (unix seconds)',
  rookery_drill_last_success: 'Whether the newest restore drill of the tier succeeded (1) or failed (0)',
  rookery_drill_last_duration_seconds:
    'Restore time of the newest drill of the tier (seconds), to compare with rookery_rto_objective_seconds',
  rookery_drill_last_within_rto: 'Whether the newest drill restored within the RTO (1) or not (0)',
  rookery_replication_wal_lag_seconds: "How far the region's WAL copy trails the primary repository (seconds)",
  rookery_replication_wal_missing_files: 'WAL files of the primary repository the region has no copy of',
} as const;

const LEDGER_TYPES = [
  'dev.rookery.validation.passed',
  'dev.rookery.validation.failed',
  'dev.rookery.drill.completed',
  'dev.rookery.drill.failed',
  'dev.rookery.wal.streamed',
] as const;

/**
 * What a loss of the server now would cost, in seconds: 0 while a synchronous stream confirms every
 * commit flushed (`stream` is now), the time since it last did when that is later than anything
 * archived; else archived WAL measured against the server when it answers; else the time since
 * the newest recovery point known.
 */
export function rpoExposure(
  wal: WalStatus | null,
  lastSuccessAt: Date | null,
  now = new Date(),
  stream: Date | null = null,
): number | null {
  const archived = wal?.lastArchived ? new Date(wal.lastArchived.archivedAt) : null;
  const streamed = stream && (!archived || stream > archived) ? Math.max(0, (now.getTime() - stream.getTime()) / 1000) : null;
  if (wal?.exposure && wal.lastArchived) return streamed === null ? wal.exposure.seconds : Math.min(streamed, wal.exposure.seconds);
  if (streamed !== null) return streamed;
  const recoveryPoint = newest([lastSuccessAt, archived]);
  return recoveryPoint ? Math.max(0, (now.getTime() - recoveryPoint.getTime()) / 1000) : null;
}

/**
 * The recovery point the synchronous WAL stream vouches for (dev.rookery.wal.streamed, as the
 * compliance ledger reads it): now while its newest report says in sync and is not older than it
 * says it stays valid, else the time of the newest report that was in sync; null without reports.
 */
export function streamRecoveryPoint(entries: readonly LedgerEntry[], now = new Date()): Date | null {
  const reports = entries.filter((entry) => entry.type === 'dev.rookery.wal.streamed').sort((a, b) => a.time.localeCompare(b.time));
  const reportedAt = (entry: LedgerEntry) => new Date(String(entry.data['at'] ?? entry.time));
  const last = reports.at(-1);
  if (!last) return null;
  const validMs = Number(last.data['validForSeconds'] ?? 0) * 1000;
  if (last.data['inSync'] === true && now.getTime() - reportedAt(last).getTime() <= validMs) return now;
  const inSync = reports.filter((entry) => entry.data['inSync'] === true).at(-1);
  return inSync ? reportedAt(inSync) : null;
}

export function lastValidation(entries: readonly LedgerEntry[]): TierObjectives['lastValidation'] {
  const entry = newestOf(entries, 'dev.rookery.validation.');
  return entry ? { at: new Date(String(entry.data['validatedAt'] ?? entry.time)), ok: entry.type.endsWith('.passed') } : null;
}

export function lastDrill(entries: readonly LedgerEntry[]): TierObjectives['lastDrill'] {
  const entry = newestOf(entries, 'dev.rookery.drill.');
  if (!entry) return null;
  const completed = entry.type.endsWith('.completed');
  const durationMs = Number(completed ? entry.data['restoreMs'] : entry.data['durationMs']) || 0;
  return {
    at: new Date(String(entry.data['finishedAt'] ?? entry.data['failedAt'] ?? entry.time)),
    ok: completed && entry.data['ok'] === true,
    durationSeconds: durationMs / 1000,
    withinRto: completed && entry.data['withinRto'] === true,
  };
}

function newestOf(entries: readonly LedgerEntry[], prefix: string): LedgerEntry | undefined {
  return entries
    .filter((entry) => entry.type.startsWith(prefix))
    .sort((a, b) => a.time.localeCompare(b.time))
    .at(-1);
}

function newest(dates: readonly (Date | null)[]): Date | null {
  return dates.reduce<Date | null>((latest, date) => (date && (!latest || date > latest) ? date : latest), null);
}

function seconds(date: Date | undefined): number | null {
  return date ? date.getTime() / 1000 : null;
}

function flag(value: boolean | undefined): number | null {
  return value === undefined ? null : value ? 1 : 0;
}
