import { EventBus } from './event-bus';
import { InProcessEventBus } from './in-process.bus';
import { KafkaEventBus } from './kafka.bus';

export interface EventBusSettings {
  /** Kafka bootstrap servers; none = the in-process bus (the embedded default). */
  brokers: readonly string[];
  clientId: string;
  partitions?: number;
  replicationFactor?: number | null;
}

/** The bus the configuration names: Kafka when brokers are set, else in-process. */
export async function connectEventBus(
  settings: EventBusSettings,
  log?: (level: 'error' | 'warn', message: string, extra: Record<string, unknown>) => void,
): Promise<EventBus> {
  if (settings.brokers.length === 0) return new InProcessEventBus((error, event) => log?.('error', `event handler failed for ${event.type} ${event.id}`, { error: String(error) }));
  return KafkaEventBus.connect({
    brokers: settings.brokers,
    clientId: settings.clientId,
    partitions: settings.partitions,
    replicationFactor: settings.replicationFactor ?? undefined,
    log,
  });
}
