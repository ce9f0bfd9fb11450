import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { RookeryEngine } from '@rookery/engine';
import { WalStreamStatus, WalStreamSupervisor, createWalStreamSupervisor, walStreamReport } from '@rookery/wal';
import { WalArchivedBatcher, createEvent } from '@rookery/events';
import { BackupMetricsService, ServiceEventsService } from '@rookery/service-kit';

export interface WalStreamServiceOptions {
  sweepIntervalMs?: number;
  /** How often the stream's state is published as dev.rookery.wal.streamed; default 30 s. */
  reportIntervalMs?: number;
}

const DEFAULT_REPORT_INTERVAL_MS = 30_000;

/**
 * The WAL stream's life in the service: started once the app is up, stopped before the engine
 * closes (BeforeApplicationShutdown), so the stop pushes the partial segment through a live engine.
 */
@Injectable()
export class WalStreamService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  static readonly OPTIONS = Symbol('WAL_STREAM_OPTIONS');
  private readonly logger = new Logger('WalStream');
  private supervisor: WalStreamSupervisor | null = null;
  private readonly archived: WalArchivedBatcher;
  private reportTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly engine: RookeryEngine,
    private readonly metrics: BackupMetricsService,
    private readonly events: ServiceEventsService,
    @Inject(WalStreamService.OPTIONS) private readonly options: WalStreamServiceOptions,
  ) {
    // Archived files become dev.rookery.wal.archived events in batches, through the outbox.
    this.archived = new WalArchivedBatcher((batch) => events.publish(...batch), {
      source: events.source,
      onError: (error) => this.logger.error(`cannot store wal.archived events: ${String(error)}`),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    const supervisor = await createWalStreamSupervisor(this.engine.walStreamSource(), {
      sweepIntervalMs: this.options.sweepIntervalMs,
      onPushed: (tier, result) => {
        if (result.status === 'archived') {
          this.archived.add({ tier, name: result.name, sha256: result.sha256, bytes: result.bytes, archivedAt: new Date().toISOString() });
        }
      },
      log: (level, message) => (level === 'info' ? this.logger.log(message) : this.logger[level](message)),
    });
    this.registerMetrics(supervisor);
    await supervisor.start();
    this.supervisor = supervisor;
    const interval = this.options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS;
    this.reportTimer = setInterval(() => void this.report(interval), interval);
    void this.report(interval);
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.reportTimer) clearInterval(this.reportTimer);
    await this.supervisor?.stop();
    // The stream has stopped: say so, so the RPO exposure counts from now rather than when a report goes stale.
    await this.report(this.options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS);
    await this.archived.flush();
  }

  status(): Promise<WalStreamStatus> {
    if (!this.supervisor) throw new Error('the wal stream has not started');
    return this.supervisor.status();
  }

  /**
   * Publishes where the stream stands (dev.rookery.wal.streamed): the compliance ledger measures
   * the tier's RPO exposure from it (0 while in sync). A report holds for two intervals, so one
   * lost report does not count as exposure but a stopped service does.
   */
  private async report(intervalMs: number): Promise<void> {
    if (!this.supervisor) return;
    try {
      const data = walStreamReport(await this.supervisor.status(), { at: new Date(), validForSeconds: (2 * intervalMs) / 1000 });
      await this.events.publish(createEvent('dev.rookery.wal.streamed', data.tier, data, { source: this.events.source }));
    } catch (error) {
      this.logger.error(`cannot store the wal.streamed report: ${String(error)}`);
    }
  }

  private registerMetrics(supervisor: WalStreamSupervisor): void {
    const registers = [this.metrics.registry];
    const tier = this.engine.config.walStream.tier;
    const gauge = (name: string, help: string, read: (snapshot: ReturnType<WalStreamSupervisor['snapshot']>) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ['tier'] as const,
        registers,
        collect() {
          const value = read(supervisor.snapshot());
          if (value !== null) this.set({ tier }, value);
        },
      });
    gauge('rookery_wal_stream_up', 'pg_receivewal is running (1) or not (0)', (snapshot) => (snapshot.receiver.running ? 1 : 0));
    gauge(
      'rookery_wal_stream_restarts',
      'Times pg_receivewal was started again since the service started',
      (snapshot) => snapshot.receiver.restarts,
    );
    gauge(
      'rookery_wal_stream_upload_failures',
      'WAL pushes that failed (the file stays in the spool and is retried)',
      (snapshot) => snapshot.uploads.failures,
    );
    gauge(
      'rookery_wal_stream_last_upload_timestamp_seconds',
      'When the newest completed segment reached the repository (unix seconds)',
      (snapshot) => (snapshot.uploads.lastUploaded ? Date.parse(snapshot.uploads.lastUploaded.at) / 1000 : null),
    );
  }
}
