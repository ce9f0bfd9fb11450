import type { Consumer, Kafka, KafkaConfig, LogEntry, Producer, RetryOptions } from 'kafkajs';
import { EventBusUnavailableError, Secret, SigningKey } from '@rookery/core';
import { CloudEvent, parseEventJson, topicOf, validateEvent } from './cloud-event';
import { EventBus, EventHandler, SubscribeOptions, Subscription } from './event-bus';
import { EventVerification, signEvent, verifyEventProof, withoutProof } from './event-signature';
import { ALL_TOPICS, DEAD_LETTER_TOPIC } from './event-types';

const HEARTBEAT_MS = 3_000;

export interface KafkaBusOptions {
  brokers: readonly string[];
  clientId: string;
  /** Partitions of topics this bus creates (existing topics are left as they are). */
  partitions?: number;
  replicationFactor?: number;
  /** Where kafkajs's own log lines go (warnings and errors only). */
  log?: (level: 'error' | 'warn', message: string, extra: Record<string, unknown>) => void;
  /** How long a publish may retry before it fails (ms, default 30 s). */
  publishTimeoutMs?: number;
  /** Retries of each request (connect included) before failing (default 8; short-lived processes use fewer). */
  retries?: number;
  /**
   * Retries of a publish (default 8), whatever `retries` is: a partition's leader moving or not yet
   * known just after a broker started is answered with a retriable error the producer must outlast,
   * not a broker that is down (the connect, bounded by `retries`, finds that).
   */
  publishRetries?: number;
  /** TLS to the brokers: the CAs to trust (PEM; none: the system's), and a client certificate for mutual TLS. */
  tls?: KafkaTls;
  /** SASL authentication (over TLS in any real deployment: PLAIN sends the password as it is). */
  sasl?: KafkaSasl;
  /** Signs every published event with this service's key (event-signature.ts); none: published unsigned. */
  signing?: SigningKey;
  /**
   * Checks every consumed event's proof before a handler sees it; one that fails is dead-lettered
   * with the reason. None: events are accepted without a proof check (a bus that only publishes).
   */
  verification?: EventVerification;
}

export interface KafkaTls {
  ca?: readonly string[];
  cert?: string;
  key?: Secret<string>;
  /** Refuse a broker whose certificate the CAs do not vouch for (default true). */
  rejectUnauthorized?: boolean;
}

export type SaslMechanism = 'scram-sha-512' | 'scram-sha-256' | 'plain';

export interface KafkaSasl {
  mechanism: SaslMechanism;
  username: string;
  password: Secret<string>;
}

/**
 * Events on Apache Kafka (DESIGN §7): topics per family created with the admin client, keyed by
 * tier (the CloudEvents subject) so a tier's events stay ordered, structured-mode CloudEvents JSON
 * values, an idempotent producer waiting for every in-sync replica, and consumer groups that
 * validate every message and skip (and report) what is not a valid rookery event.
 */
export class KafkaEventBus implements EventBus {
  readonly kind = 'kafka' as const;
  private readonly consumers = new Set<Consumer>();

  private constructor(
    private readonly kafka: Kafka,
    private readonly producer: Producer,
    private readonly options: KafkaBusOptions,
  ) {}

  static async connect(options: KafkaBusOptions): Promise<KafkaEventBus> {
    // Loaded on first connect, not with the library: the event builders are used by every CLI
    // command, and kafkajs only by those that reach a broker.
    const { Kafka, logLevel } = require('kafkajs') as typeof import('kafkajs');
    const kafka = new Kafka({
      clientId: options.clientId,
      brokers: [...options.brokers],
      logLevel: logLevel.WARN,
      logCreator: () => (entry: LogEntry) =>
        options.log?.(entry.level === logLevel.ERROR ? 'error' : 'warn', entry.log.message, { ...entry.log }),
      retry: retryOptions(options.retries, options),
      ...connectionSecurity(options),
    });
    const admin = kafka.admin();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: retryOptions(options.publishRetries, options),
    });
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = [...ALL_TOPICS, DEAD_LETTER_TOPIC].filter((topic) => !existing.has(topic));
      if (missing.length > 0) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: missing.map((topic) => ({
            topic,
            numPartitions: options.partitions ?? 4,
            replicationFactor: options.replicationFactor ?? -1,
          })),
        });
      }
      await producer.connect();
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw unavailable(connectFailure(options, error), error);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    return new KafkaEventBus(kafka, producer, options);
  }

  async publish(events: CloudEvent | readonly CloudEvent[]): Promise<void> {
    const list = (Array.isArray(events) ? events : [events]) as readonly CloudEvent[];
    const byTopic = new Map<string, { key: string; value: Buffer; headers: Record<string, string> }[]>();
    for (const event of list.map((item) => validateEvent(item))) {
      const messages = byTopic.get(topicOf(event)) ?? [];
      messages.push({
        key: event.subject,
        value: Buffer.from(JSON.stringify(this.options.signing ? signEvent(event, this.options.signing) : withoutProof(event))),
        headers: { 'content-type': 'application/cloudevents+json; charset=utf-8', ce_id: event.id, ce_type: event.type },
      });
      byTopic.set(topicOf(event), messages);
    }
    try {
      await this.producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
    } catch (error) {
      throw unavailable(`publishing ${list.length} event(s) to kafka failed`, error);
    }
  }

  async subscribe(options: SubscribeOptions, handler: EventHandler): Promise<Subscription> {
    const consumer = this.kafka.consumer({ groupId: options.group, allowAutoTopicCreation: false });
    this.consumers.add(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [...options.topics], fromBeginning: options.fromBeginning ?? true });
    await consumer.run({
      // One message at a time per partition; the offset is committed only after the handler
      // resolved, so a crash means redelivery (at least once), never a skipped event.
      eachMessage: async ({ topic, partition, message, heartbeat }) => {
        let event: CloudEvent;
        try {
          event = this.accept(message.value ?? Buffer.alloc(0));
        } catch (error) {
          this.options.log?.('warn', `dead-lettered a message of ${topic}/${partition}/${message.offset}: ${(error as Error).message}`, {
            group: options.group,
          });
          // Set aside with the reason, so the partition keeps moving and nothing is silently dropped.
          await this.deadLetter(
            options.group,
            { topic, partition, offset: message.offset, key: message.key, value: message.value },
            error as Error,
          );
          options.onInvalid?.(error as Error, message.value);
          return;
        }
        // A long handler (validating a large backup) keeps the group membership alive, so the
        // broker does not rebalance and redeliver the message while it is being handled.
        const beat = setInterval(() => void heartbeat().catch(() => undefined), HEARTBEAT_MS);
        try {
          await handler(event);
        } finally {
          clearInterval(beat);
        }
      },
    });
    return {
      close: async () => {
        this.consumers.delete(consumer);
        await consumer.disconnect();
      },
    };
  }

  /**
   * A message's event, as handlers get it: valid JSON, a valid rookery event, and — where this bus
   * verifies — proven to come from a producing service's key. The proof is checked on the JSON as
   * received; the handler gets the validated event without it.
   */
  private accept(bytes: Buffer): CloudEvent {
    const raw = parseEventJson(bytes);
    const event = validateEvent(raw);
    if (this.options.verification) verifyEventProof(raw as Record<string, unknown>, this.options.verification);
    return withoutProof(event);
  }

  private async deadLetter(
    group: string,
    message: { topic: string; partition: number; offset: string; key: Buffer | null; value: Buffer | null },
    error: Error,
  ): Promise<void> {
    await this.producer.send({
      topic: DEAD_LETTER_TOPIC,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: message.value,
          headers: {
            'rookery-reason': error.message.slice(0, 1000),
            'rookery-consumer-group': group,
            'rookery-source': `${message.topic}/${message.partition}/${message.offset}`,
          },
        },
      ],
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => consumer.disconnect()));
    this.consumers.clear();
    await this.producer.disconnect();
  }
}

/** kafkajs's retry settings: `retries` of a request (of the client's, or of the producer's sends). */
function retryOptions(retries: number | undefined, options: KafkaBusOptions): RetryOptions {
  return { initialRetryTime: 200, retries: retries ?? 8, maxRetryTime: options.publishTimeoutMs ?? 30_000 };
}

/** kafkajs's `ssl` and `sasl` settings; secrets revealed here only, into the client. */
function connectionSecurity(options: KafkaBusOptions): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const { tls, sasl } = options;
  const security: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (tls) {
    security.ssl = {
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      ...(tls.ca?.length ? { ca: [...tls.ca] } : {}),
      ...(tls.cert ? { cert: tls.cert } : {}),
      ...(tls.key ? { key: tls.key.reveal() } : {}),
    };
  }
  if (sasl) {
    const password = sasl.password.reveal();
    if (sasl.mechanism === 'plain') security.sasl = { mechanism: 'plain', username: sasl.username, password };
    else if (sasl.mechanism === 'scram-sha-256') security.sasl = { mechanism: 'scram-sha-256', username: sasl.username, password };
    else security.sasl = { mechanism: 'scram-sha-512', username: sasl.username, password };
  }
  return security;
}

/** What went wrong connecting, in the operator's terms: credentials refused, or no answer (with what to check). */
function connectFailure(options: KafkaBusOptions, error: unknown): string {
  const where = options.brokers.join(',');
  const name = error instanceof Error ? error.name : '';
  if (name === 'KafkaJSSASLAuthenticationError' && options.sasl) {
    return `kafka at ${where} refused the credentials of '${options.sasl.username}' (${options.sasl.mechanism}; check events.sasl)`;
  }
  // A TLS listener drops a client that speaks plaintext to it: say what to check.
  if (!options.tls && error instanceof Error && /closed connection/i.test(error.message)) {
    return `cannot reach kafka at ${where} (it closed the connection: if its listener is SSL or SASL_SSL, configure events.tls)`;
  }
  return `cannot reach kafka at ${where}`;
}

function unavailable(message: string, error: unknown): EventBusUnavailableError {
  const detail = error instanceof Error ? error.message : String(error);
  return new EventBusUnavailableError(`${message}: ${detail}`, { cause: error });
}
