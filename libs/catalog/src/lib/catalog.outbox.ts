import { DataSource, EntityManager, In, IsNull } from 'typeorm';
import { OutboxEventEntity } from './outbox-event.entity';

/** An event to store with a catalog change: its id and its serialized CloudEvent. */
export interface OutboxItem {
  eventId: string;
  payload: string;
}

/** What the relay reads (structurally the OutboxStore port of libs/events). */
export interface PendingOutboxEntry {
  eventId: string;
  payload: string;
  createdAt: Date;
  attempts: number;
}

export interface OutboxStats {
  pending: number;
  invalid: number;
  /** Creation time of the oldest event not yet relayed: how far behind the bus is. */
  oldestPendingAt: string | null;
}

/**
 * The outbox table of the catalog database. Services write to it only inside the catalog's own
 * transactions (BackupCatalog record* methods take the events of the change); the relay reads
 * pending entries in insertion order and marks them.
 */
export class CatalogOutbox {
  constructor(private readonly dataSource: DataSource) {}

  /** Stores events within `manager`'s transaction, after any already stored (order is kept). */
  static async enqueue(manager: EntityManager, items: readonly OutboxItem[], now = new Date()): Promise<void> {
    if (items.length === 0) return;
    const row = await manager
      .createQueryBuilder(OutboxEventEntity, 'outbox')
      .select('max(outbox.seq)', 'max')
      .getRawOne<{ max: string | number | null }>();
    let seq = Number(row?.max ?? 0);
    for (const item of items) {
      await manager.insert(OutboxEventEntity, {
        eventId: item.eventId,
        seq: ++seq,
        payload: item.payload,
        createdAt: now.toISOString(),
        relayedAt: null,
        attempts: 0,
        lastError: null,
        invalid: false,
      });
    }
  }

  /** Stores events on their own (a change that has no catalog record, e.g. an audit entry). */
  async enqueue(items: readonly OutboxItem[]): Promise<void> {
    await this.dataSource.transaction((manager) => CatalogOutbox.enqueue(manager, items));
  }

  /** Whether the event was stored (relayed or not; until pruned). */
  async has(eventId: string): Promise<boolean> {
    return (await this.dataSource.getRepository(OutboxEventEntity).countBy({ eventId })) > 0;
  }

  async pending(limit: number): Promise<PendingOutboxEntry[]> {
    const rows = await this.dataSource.getRepository(OutboxEventEntity).find({
      where: { relayedAt: IsNull(), invalid: false },
      order: { seq: 'ASC', eventId: 'ASC' },
      take: limit,
    });
    return rows.map((row) => ({ eventId: row.eventId, payload: row.payload, createdAt: new Date(row.createdAt), attempts: row.attempts }));
  }

  async markRelayed(eventIds: readonly string[], at: Date): Promise<void> {
    if (eventIds.length === 0) return;
    await this.dataSource
      .getRepository(OutboxEventEntity)
      .update({ eventId: In([...eventIds]) }, { relayedAt: at.toISOString(), lastError: null });
  }

  async markFailed(eventIds: readonly string[], error: string): Promise<void> {
    if (eventIds.length === 0) return;
    await this.dataSource
      .createQueryBuilder()
      .update(OutboxEventEntity)
      .set({ attempts: () => 'attempts + 1', lastError: error.slice(0, 2000) })
      .where({ eventId: In([...eventIds]) })
      .execute();
  }

  async markInvalid(eventIds: readonly string[], error: string): Promise<void> {
    if (eventIds.length === 0) return;
    await this.dataSource
      .getRepository(OutboxEventEntity)
      .update({ eventId: In([...eventIds]) }, { invalid: true, lastError: error.slice(0, 2000) });
  }

  async stats(): Promise<OutboxStats> {
    const repository = this.dataSource.getRepository(OutboxEventEntity);
    const pending = await repository.count({ where: { relayedAt: IsNull(), invalid: false } });
    const invalid = await repository.count({ where: { invalid: true } });
    const oldest = await repository.findOne({ where: { relayedAt: IsNull(), invalid: false }, order: { seq: 'ASC' } });
    return { pending, invalid, oldestPendingAt: oldest?.createdAt ?? null };
  }

  /** Removes relayed entries older than `before` (housekeeping; the ledger keeps the history). */
  async prune(before: Date): Promise<number> {
    const result = await this.dataSource
      .createQueryBuilder()
      .delete()
      .from(OutboxEventEntity)
      .where('relayed_at is not null and relayed_at < :before', { before: before.toISOString() })
      .execute();
    return result.affected ?? 0;
  }
}
