import type { Consumer, Kafka, LogEntry, Producer } from 'kafkajs';
import { EventBusUnavailableError } from '@rookery/core';
import { CloudEvent, parseEvent, serializeEvent, topicOf, validateEvent } from './cloud-event';
import { EventBus, EventHandler, SubscribeOptions, Subscription } from './event-bus';
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
      retry: { initialRetryTime: 200, retries: options.retries ?? 8, maxRetryTime: options.publishTimeoutMs ?? 30_000 },
    });
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
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
      throw unavailable(`cannot reach kafka at ${options.brokers.join(',')}`, error);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    return new KafkaEventBus(kafka, producer);
  }

  async publish(events: CloudEvent | readonly CloudEvent[]): Promise<void> {
    const list = (Array.isArray(events) ? events : [events]) as readonly CloudEvent[];
    const byTopic = new Map<string, { key: string; value: Buffer; headers: Record<string, string> }[]>();
    for (const event of list.map((item) => validateEvent(item))) {
      const messages = byTopic.get(topicOf(event)) ?? [];
      messages.push({
        key: event.subject,
        value: serializeEvent(event),
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
          event = parseEvent(message.value ?? Buffer.alloc(0));
        } catch (error) {
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

function unavailable(message: string, error: unknown): EventBusUnavailableError {
  const detail = error instanceof Error ? error.message : String(error);
  return new EventBusUnavailableError(`${message}: ${detail}`, { cause: error });
}
