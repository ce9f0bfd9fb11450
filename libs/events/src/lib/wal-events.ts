import { TierName, parseWalFileName } from '@rookery/core';
import { CloudEvent, createEvent } from './cloud-event';

export interface ArchivedWalFile {
  tier: TierName;
  name: string;
  sha256: string;
  bytes: number;
  archivedAt: string;
}

/**
 * WAL archived events go out in batches (DESIGN §7: "wal archived, batched"): a busy primary
 * archives many segments a minute, and one event per segment would swamp the topic. Files are
 * collected and flushed as one dev.rookery.wal.archived event per tier and timeline when `maxFiles`
 * are waiting or `maxDelayMs` after the first, whichever comes first, and on close.
 */
export class WalArchivedBatcher {
  private pending: ArchivedWalFile[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly emit: (events: CloudEvent[]) => Promise<void>,
    private readonly options: { source: string; maxFiles?: number; maxDelayMs?: number; onError?: (error: unknown) => void },
  ) {}

  add(file: ArchivedWalFile): void {
    this.pending.push(file);
    if (this.pending.length >= (this.options.maxFiles ?? 64)) {
      void this.flush();
      return;
    }
    this.timer ??= setTimeout(() => void this.flush(), this.options.maxDelayMs ?? 2_000);
    this.timer.unref?.();
  }

  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const files = this.pending;
    this.pending = [];
    if (files.length === 0) return;
    try {
      await this.emit(walArchivedEvents(files, this.options.source));
    } catch (error) {
      this.options.onError?.(error);
    }
  }
}

/** One event per tier and timeline, files oldest first. */
export function walArchivedEvents(files: readonly ArchivedWalFile[], source: string): CloudEvent<'dev.rookery.wal.archived'>[] {
  const groups = new Map<string, ArchivedWalFile[]>();
  for (const file of files) {
    const timeline = parseWalFileName(file.name)?.timeline ?? 1;
    const key = `${file.tier}/${timeline}`;
    groups.set(key, [...(groups.get(key) ?? []), file]);
  }
  return [...groups.entries()].map(([key, group]) => {
    const [tier, timeline] = key.split('/');
    const sorted = [...group].sort((a, b) => a.name.localeCompare(b.name));
    return createEvent(
      'dev.rookery.wal.archived',
      tier,
      {
        tier: tier as TierName,
        timeline: Number(timeline),
        segments: sorted.map((file) => ({ name: file.name, sha256: file.sha256, bytes: file.bytes, archivedAt: file.archivedAt })),
        lastLsn: null,
      },
      { source, time: new Date(sorted.at(-1)?.archivedAt ?? Date.now()) },
    );
  });
}
