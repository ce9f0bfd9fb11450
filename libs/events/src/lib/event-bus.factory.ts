import { ConfigError } from '@rookery/core';
import { EventBus } from './event-bus';
import { InProcessEventBus } from './in-process.bus';
import { KafkaEventBus } from './kafka.bus';

export interface EventBusSettings {
  /** Kafka bootstrap servers; none = the in-process bus (the embedded default). */
  brokers: readonly string[];
  clientId: string;
  partitions?: number;
  replicationFactor?: number | null;
  /**
   * The service whose job is to consume other processes' events (validator, compliance-reporting):
   * on the in-process bus it would see nothing of them, so that bus is refused for it unless
   * `allowInProcess` (an embedded single-process setup).
   */
  consumer?: string;
  allowInProcess?: boolean;
}

/** The bus the configuration names: Kafka when brokers are set, else in-process. */
export async function connectEventBus(
  settings: EventBusSettings,
  log?: (level: 'error' | 'warn', message: string, extra: Record<string, unknown>) => void,
): Promise<EventBus> {
  if (settings.brokers.length === 0 && settings.consumer && !settings.allowInProcess) throw new InProcessBusRefusedError(settings.consumer);
  if (settings.brokers.length === 0)
    return new InProcessEventBus((error, event) =>
      log?.('error', `event handler failed for ${event.type} ${event.id}`, { error: String(error) }),
    );
  return KafkaEventBus.connect({
    brokers: settings.brokers,
    clientId: settings.clientId,
    partitions: settings.partitions,
    replicationFactor: settings.replicationFactor ?? undefined,
    log,
  });
}

/** A consumer of other processes' events configured without Kafka. */
export class InProcessBusRefusedError extends ConfigError {
  constructor(consumer: string) {
    super(
      `${consumer} consumes the events of the other rookery services, but no Kafka brokers are configured: on the in-process bus it would see none of them`,
      ['events.brokers'],
      {
        hint: 'set events.brokers (or ROOKERY_KAFKA_BROKERS=host:port), or events.allowInProcess: true when every service runs in this one process',
      },
    );
  }
}
