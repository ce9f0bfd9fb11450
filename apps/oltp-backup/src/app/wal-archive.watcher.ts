import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { DEFAULT_WAL_SEGMENT_SIZE, TierName } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { ArchivedWalFile, WalArchivedBatcher } from '@rookery/events';
import { WalObject } from '@rookery/repository';
import { ServiceEventsService } from '@rookery/service-kit';
import { OLTP_TIER } from './oltp.tier';

export const WAL_WATCH_INTERVAL_MS = Symbol('WAL_WATCH_INTERVAL_MS');

/** Files archived this recently when the service starts are reported (a restart's catch-up). */
const CATCH_UP_MS = 60 * 60_000;

/**
 * The OLTP tier archives WAL through archive_command (`rookery wal-push`), a short process per
 * segment that publishes nothing. This watcher turns the repository's WAL listing into batched
 * dev.rookery.wal.archived events, so the compliance view sees the tier's recovery point move:
 * every interval it reports files it has not reported before. At start it reports the last hour
 * (files archived while the service was down); older ones are history. A file reported twice
 * across restarts is harmless (the recovery point is the newest file).
 */
@Injectable()
export class WalArchiveWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(WalArchiveWatcher.name);
  private readonly reported = new Set<string>();
  private readonly batcher: WalArchivedBatcher;
  private timer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;

  constructor(
    private readonly engine: RookeryEngine,
    events: ServiceEventsService,
    @Optional() @Inject(WAL_WATCH_INTERVAL_MS) private readonly intervalMs = 30_000,
  ) {
    this.batcher = new WalArchivedBatcher((batch) => events.publish(...batch), {
      source: events.source,
      maxDelayMs: 0,
      onError: (error) => this.logger.error(`cannot store wal.archived events: ${String(error)}`),
    });
  }

  onApplicationBootstrap(): void {
    const tick = async () => {
      await this.scan();
      if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
    };
    this.timer = setTimeout(tick, 0);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.scanning;
    await this.batcher.flush();
  }

  /** One pass: report what the repository holds that was not reported yet. */
  scan(): Promise<void> {
    this.scanning ??= this.scanOnce().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async scanOnce(): Promise<void> {
    try {
      const listing = await this.engine.wal.archive.list(OLTP_TIER);
      const first = this.reported.size === 0;
      for (const file of newlyArchived(listing, this.reported, first ? new Date(Date.now() - CATCH_UP_MS) : null)) this.batcher.add(file);
      await this.batcher.flush();
    } catch (error) {
      this.logger.warn(`cannot list the WAL archive of tier '${OLTP_TIER}': ${String(error)}`);
    }
  }
}

/**
 * Files of `listing` not in `reported` (which it updates), as wal.archived entries. With
 * `reportSince`, older files are only marked as reported (history at start-up).
 */
export function newlyArchived(listing: readonly WalObject[], reported: Set<string>, reportSince: Date | null): ArchivedWalFile[] {
  const fresh: ArchivedWalFile[] = [];
  for (const object of listing) {
    if (reported.has(object.key)) continue;
    reported.add(object.key);
    if (reportSince && object.archivedAt < reportSince) continue;
    fresh.push({
      tier: object.tier as TierName,
      name: object.file.name,
      sha256: object.sha256,
      // Segments are a full segment of WAL; other files are small: their stored size stands in.
      bytes: object.file.kind === 'segment' ? DEFAULT_WAL_SEGMENT_SIZE : object.storedBytes,
      archivedAt: object.archivedAt.toISOString(),
    });
  }
  return fresh;
}
