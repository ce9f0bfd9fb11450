import { existsSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaHandle, startKafka } from './kafka.harness';

describe('kafka harness', () => {
  let kafka: KafkaHandle;

  beforeAll(async () => {
    kafka = await startKafka();
  }, 180_000);

  afterAll(async () => {
    await kafka?.stop();
  });

  it('serves an idempotent producer and a consumer group on a topic created by the admin client', async () => {
    const client = new Kafka({ clientId: 'harness-test', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
    const admin = client.admin();
    const producer = client.producer({ idempotent: true, maxInFlightRequests: 1 });
    const consumer = client.consumer({ groupId: 'harness-test' });
    try {
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'rookery.test', numPartitions: 2 }], waitForLeaders: true });
      expect(await admin.listTopics()).toContain('rookery.test');
      await producer.connect();
      await producer.send({
        topic: 'rookery.test',
        messages: [
          { key: 'oltp', value: 'first' },
          { key: 'oltp', value: 'second' },
        ],
      });
      await consumer.connect();
      await consumer.subscribe({ topic: 'rookery.test', fromBeginning: true });
      const received: string[] = [];
      await new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            received.push(`${message.key?.toString()}:${message.value?.toString()}`);
            if (received.length === 2) resolve();
          },
        });
      });
      // One key, one partition: order is kept.
      expect(received).toEqual(['oltp:first', 'oltp:second']);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  }, 120_000);

  it('stops the broker and removes its data', async () => {
    const second = await startKafka();
    await second.stop();
    expect(() => process.kill(second.pid, 0)).toThrow();
    expect(existsSync(second.workDir)).toBe(false);
  }, 180_000);
});
