import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { BackupCatalog, OutboxItem } from '@rookery/catalog';
import type { RookeryConfig } from '@rookery/config';
import { CloudEvent, EventBus, OutboxRelay, connectEventBus, outboxPayload } from '@rookery/events';
import { ROOKERY_CONFIG, ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';

const RELAY_INTERVAL_MS = 1_000;
const SHUTDOWN_RELAY_MS = 5_000;

/**
 * A service's events (DESIGN §7): they are stored in the catalog's outbox in the same transaction
 * as the change they report (callers pass `outboxItems(...)` to the catalog's record* methods) and
 * relayed to the bus in the background. The bus is connected lazily and reconnected after a
 * failure, so a service starts and records its work while Kafka is down; the events wait.
 */
@Injectable()
export class ServiceEventsService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(ServiceEventsService.name);
  private bus: EventBus | null = null;
  private connecting: Promise<EventBus> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private relaying: Promise<void> | null = null;
  private lastFailure = '';

  constructor(
    private readonly catalog: BackupCatalog,
    @Inject(ROOKERY_CONFIG) private readonly config: RookeryConfig,
    @Inject(SERVICE_KIT_OPTIONS) private readonly options: ResolvedServiceKitOptions,
  ) {}

  /** The CloudEvents source of this service's events. */
  get source(): string {
    return `rookery/${this.options.serviceName}`;
  }

  /** Serialized events for the catalog's record* methods (stored in their transaction). */
  outboxItems(...events: CloudEvent[]): OutboxItem[] {
    return events.map((event) => ({ eventId: event.id, payload: outboxPayload(event) }));
  }

  /** Stores events that have no catalog change of their own (audit), then relays soon. */
  async publish(...events: CloudEvent[]): Promise<void> {
    await this.catalog.outbox.enqueue(this.outboxItems(...events));
    this.nudge();
  }

  /** Relays pending events now rather than at the next tick (after a change was recorded). */
  nudge(): void {
    void this.relay();
  }

  onApplicationBootstrap(): void {
    const tick = async () => {
      await this.relay();
      if (this.timer) this.timer = setTimeout(tick, RELAY_INTERVAL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  /** Stops relaying after a last attempt (bounded), before the catalog closes; the rest waits for the next start. */
  async beforeApplicationShutdown(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await Promise.race([this.relay(), new Promise((resolve) => setTimeout(resolve, SHUTDOWN_RELAY_MS).unref())]);
    await this.bus?.close().catch(() => undefined);
    this.bus = null;
  }

  /** The bus events are relayed to, connected on first use. */
  async connectedBus(): Promise<EventBus> {
    if (this.bus) return this.bus;
    this.connecting ??= connectEventBus(this.config.events, (level, message) =>
      this.logger[level === 'error' ? 'error' : 'warn'](message),
    ).finally(() => (this.connecting = null));
    this.bus = await this.connecting;
    return this.bus;
  }

  private relay(): Promise<void> {
    this.relaying ??= this.relayPending().finally(() => (this.relaying = null));
    return this.relaying;
  }

  private async relayPending(): Promise<void> {
    try {
      const bus = await this.connectedBus();
      await new OutboxRelay(this.catalog.outbox, bus).relayOnce();
      this.lastFailure = '';
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // Once per distinct failure: an outage must not flood the log every second.
      if (message !== this.lastFailure) this.logger.warn(`events wait in the outbox: ${message}`);
      this.lastFailure = message;
      if (this.bus?.kind === 'kafka') {
        await this.bus.close().catch(() => undefined);
        this.bus = null;
      }
    }
  }
}
