import { readFileSync } from 'node:fs';
import { Admin, Kafka, KafkaConfig, logLevel } from 'kafkajs';
import type { KafkaSecurity } from './kafka.harness';
import { pollUntil } from './poll';

/** A raw kafkajs client's `ssl` and `sasl` for a broker the harness started `secured` (none: plaintext). */
export function kafkaClientSecurity(security?: KafkaSecurity): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  if (!security) return {};
  return {
    ssl: { ca: [readFileSync(security.caFile, 'utf8')] },
    sasl: { mechanism: security.mechanism, username: security.username, password: security.password },
  };
}

/**
 * Waits until consumer group `group` has committed, on every partition of `topics`, the offset of
 * the newest message: it has handled everything published there so far (rookery's Kafka consumer
 * commits an offset only after its handler resolved). For a spec that checks a redelivered event
 * was handled once: poll for this, then count, instead of sleeping and hoping the copy arrived.
 */
export async function waitForConsumerGroupCaughtUp(
  brokers: readonly string[],
  group: string,
  topics: readonly string[],
  security?: KafkaSecurity,
): Promise<void> {
  const admin = new Kafka({
    clientId: 'rookery-test-lag',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    ...kafkaClientSecurity(security),
  }).admin();
  await admin.connect();
  try {
    await pollUntil(
      () => consumerGroupLag(admin, group, topics),
      (lag) => lag === 0,
      { what: `consumer group '${group}' to handle every message of ${topics.join(', ')}`, intervalMs: 200 },
    );
  } finally {
    await admin.disconnect();
  }
}

/** Messages of `topics` that `group` has not committed yet, over all partitions. */
async function consumerGroupLag(admin: Admin, group: string, topics: readonly string[]): Promise<number> {
  const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
  let lag = 0;
  for (const topic of topics) {
    const positions = committed.find((entry) => entry.topic === topic)?.partitions ?? [];
    for (const { partition, high, low } of await admin.fetchTopicOffsets(topic)) {
      const offset = Number(positions.find((entry) => entry.partition === partition)?.offset ?? -1);
      lag += Number(high) - (offset < 0 ? Number(low) : offset);
    }
  }
  return lag;
}
