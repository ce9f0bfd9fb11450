import type { BackupCatalog } from '@rookery/catalog';
import { RookeryConfig } from '@rookery/config';
import { CloudEvent, KafkaEventBus, OutboxRelay, kafkaBusOptions, outboxPayload } from '@rookery/events';
import { load } from './cli.lazy';
import { log } from './cli.log';

/** How long the CLI waits for Kafka before leaving its events in the outbox for the next relay. */
const RELAY_TIMEOUT_MS = 10_000;
export const CLI_EVENT_SOURCE = 'rookery/cli';

/**
 * The CLI's events (DESIGN §7). With Kafka configured, they are stored in the catalog's outbox
 * and relayed at once (bounded wait); if Kafka is down they stay there and the next relay (the
 * next CLI run, or any service sharing the catalog) delivers them: the command itself never
 * fails because of events, it says on stderr that they wait. With no brokers (the embedded
 * default) the in-process bus has no subscriber in a CLI process: nothing is stored.
 */
export async function publishCliEvents(config: RookeryConfig, events: readonly CloudEvent[]): Promise<void> {
  if (config.events.brokers.length === 0 || events.length === 0) return;
  let catalog: BackupCatalog | null = null;
  try {
    catalog = await load.catalog().BackupCatalog.open(config.catalog.url);
    await catalog.outbox.enqueue(events.map((event) => ({ eventId: event.id, payload: outboxPayload(event) })));
    await withTimeout(relay(config, catalog), RELAY_TIMEOUT_MS);
  } catch (error) {
    log.warn(`events wait in the catalog outbox (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
  } finally {
    await catalog?.close().catch(() => undefined);
  }
}

async function relay(config: RookeryConfig, catalog: BackupCatalog): Promise<void> {
  // TLS, SASL and the signing key as the services use them: the CLI's events carry its proof.
  const bus = await KafkaEventBus.connect({
    ...kafkaBusOptions({ ...config.events, clientId: `${config.events.clientId}-cli` }),
    publishTimeoutMs: RELAY_TIMEOUT_MS,
    // A CLI run must not linger retrying a broker that is down: the connect gives up after two
    // retries and the events wait in the outbox. The publish itself keeps the default retries
    // (within RELAY_TIMEOUT_MS): just after a broker restarted, a partition's leader is not yet
    // known and the first answers are "not the leader" (seen in CI, events.int-spec).
    retries: 2,
  });
  try {
    await new OutboxRelay(catalog.outbox, bus).relayOnce();
  } finally {
    await bus.close();
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kafka did not acknowledge within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
