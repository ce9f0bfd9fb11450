import { ConfigError, Secret } from '@rookery/core';
import { EventBus } from './event-bus';
import { EventSigningSettings, eventSigningKey, eventVerifyingKey } from './event-signature';
import { InProcessEventBus } from './in-process.bus';
import { KafkaBusOptions, KafkaEventBus, SaslMechanism } from './kafka.bus';

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
  /** TLS to the brokers: CA certificates (PEM), and a client certificate and key for mutual TLS. */
  tls?: { ca: readonly string[]; cert: string | null; key: Secret<string> | null; rejectUnauthorized: boolean } | null;
  sasl?: { mechanism: SaslMechanism; username: string; password: Secret<string> } | null;
  /** This service's key: every event it publishes to Kafka carries a proof under it. */
  signing?: EventSigningSettings | null;
  /** The producing services' keys a consumer accepts events from; `types` limits what a key may sign. */
  verifyKeys?: readonly (EventSigningSettings & { types?: readonly string[] | null })[];
  /**
   * Accept events without a proof (or under a key not in verifyKeys). Without it, a consumer on
   * Kafka needs verifyKeys, and dead-letters every event not signed by one of them.
   */
  allowUnsigned?: boolean;
}

export type EventBusLog = (level: 'error' | 'warn', message: string, extra: Record<string, unknown>) => void;

/** The bus the configuration names: Kafka when brokers are set, else in-process. */
export async function connectEventBus(settings: EventBusSettings, log?: EventBusLog): Promise<EventBus> {
  if (settings.brokers.length === 0 && settings.consumer && !settings.allowInProcess) throw new InProcessBusRefusedError(settings.consumer);
  if (settings.brokers.length === 0)
    return new InProcessEventBus((error, event) =>
      log?.('error', `event handler failed for ${event.type} ${event.id}`, { error: String(error) }),
    );
  // A consumer that would accept anything anyone can write to a topic must say so.
  if (settings.consumer && !settings.verifyKeys?.length && !settings.allowUnsigned) throw new UnverifiedConsumerError(settings.consumer);
  return KafkaEventBus.connect(kafkaBusOptions(settings, log));
}

/**
 * The Kafka bus options of the settings: connection security, this service's signing key, and the
 * verification every consumed event goes through (the producing services' keys; unsigned events
 * only with allowUnsigned).
 */
export function kafkaBusOptions(settings: EventBusSettings, log?: EventBusLog): KafkaBusOptions {
  const { tls, sasl, signing } = settings;
  return {
    brokers: settings.brokers,
    clientId: settings.clientId,
    partitions: settings.partitions,
    replicationFactor: settings.replicationFactor ?? undefined,
    log,
    ...(tls
      ? {
          tls: {
            ca: tls.ca,
            cert: tls.cert ?? undefined,
            key: tls.key ?? undefined,
            rejectUnauthorized: tls.rejectUnauthorized,
          },
        }
      : {}),
    ...(sasl ? { sasl } : {}),
    ...(signing ? { signing: eventSigningKey(signing) } : {}),
    verification: { keys: (settings.verifyKeys ?? []).map(eventVerifyingKey), allowUnsigned: settings.allowUnsigned ?? false },
  };
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

/** A consumer on Kafka with no producing service's key to check events against. */
export class UnverifiedConsumerError extends ConfigError {
  constructor(consumer: string) {
    super(
      `${consumer} consumes events from kafka but has no key to check them with: anyone who can write to a topic could forge them`,
      ['events.verifyKeys'],
      {
        hint: "list the producing services' keys in events.verifyKeys (keyId: {keyFile}), or set events.allowUnsigned: true to accept unsigned events",
      },
    );
  }
}
