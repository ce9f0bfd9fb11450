import { DataSource, FindOptionsWhere, In, LessThanOrEqual, MoreThanOrEqual, And } from 'typeorm';
import { CatalogDataSourceOptions, openCatalogDataSource } from './catalog-data-source.factory';
import { LedgerEventEntity } from './ledger-event.entity';

/** An event as the ledger keeps it (the CloudEvent's fields the reports need, data parsed). */
export interface LedgerEntry {
  eventId: string;
  type: string;
  subject: string;
  source: string;
  time: string;
  receivedAt: string;
  data: Record<string, unknown>;
}

export interface LedgerQuery {
  subject?: string;
  types?: readonly string[];
  /** Inclusive bounds on the event time (ISO-8601). */
  since?: string;
  until?: string;
}

/**
 * The compliance ledger (DESIGN §9): every event the compliance service consumed, appended once
 * per event id whatever the number of deliveries, read back in event-time order for reports.
 */
export class EventLedger {
  constructor(private readonly dataSource: DataSource) {}

  static async open(url: string, options: CatalogDataSourceOptions = {}): Promise<EventLedger> {
    return new EventLedger(await openCatalogDataSource(url, options));
  }

  /** Appends the entries not yet recorded; returns how many were new. */
  async append(entries: readonly Omit<LedgerEntry, 'receivedAt'>[], receivedAt = new Date()): Promise<number> {
    if (entries.length === 0) return 0;
    return this.dataSource.transaction(async (manager) => {
      const known = new Set(
        (
          await manager.find(LedgerEventEntity, {
            select: { eventId: true },
            where: { eventId: In(entries.map((entry) => entry.eventId)) },
          })
        ).map((row) => row.eventId),
      );
      const fresh = entries.filter(
        (entry, index) => !known.has(entry.eventId) && entries.findIndex((other) => other.eventId === entry.eventId) === index,
      );
      if (fresh.length === 0) return 0;
      await manager
        .createQueryBuilder()
        .insert()
        .into(LedgerEventEntity)
        .values(fresh.map((entry) => ({ ...entry, data: JSON.stringify(entry.data), receivedAt: receivedAt.toISOString() })))
        .orIgnore()
        .execute();
      return fresh.length;
    });
  }

  async list(query: LedgerQuery = {}): Promise<LedgerEntry[]> {
    const where: FindOptionsWhere<LedgerEventEntity> = {};
    if (query.subject) where.subject = query.subject;
    if (query.types) where.type = In([...query.types]);
    if (query.since && query.until) where.time = And(MoreThanOrEqual(query.since), LessThanOrEqual(query.until));
    else if (query.since) where.time = MoreThanOrEqual(query.since);
    else if (query.until) where.time = LessThanOrEqual(query.until);
    const rows = await this.dataSource.getRepository(LedgerEventEntity).find({ where, order: { time: 'ASC', eventId: 'ASC' } });
    return rows.map((row) => ({ ...row, data: JSON.parse(row.data) as Record<string, unknown> }));
  }

  /** Whether the event is recorded (consumers that must not redo work for a redelivered event). */
  async has(eventId: string): Promise<boolean> {
    return (await this.dataSource.getRepository(LedgerEventEntity).countBy({ eventId })) > 0;
  }

  async count(): Promise<number> {
    return this.dataSource.getRepository(LedgerEventEntity).count();
  }

  async close(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
