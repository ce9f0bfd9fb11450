import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One event waiting to be relayed to the bus, stored in the same transaction as the catalog change
 * it reports (the transactional outbox of DESIGN §7). The payload is opaque here: the serialized
 * CloudEvent built and validated by libs/events. `seq` keeps insertion order for relaying.
 */
@Entity({ name: 'outbox_event' })
@Index('outbox_event_pending', ['relayedAt', 'invalid', 'seq'])
export class OutboxEventEntity {
  @PrimaryColumn({ name: 'event_id', type: 'varchar', length: 64 })
  eventId!: string;

  @Column({ type: 'bigint', transformer: { to: (value: number) => value, from: (value: string | number) => Number(value) } })
  seq!: number;

  @Column({ type: 'text' })
  payload!: string;

  @Column({ name: 'created_at', type: 'varchar', length: 32 })
  createdAt!: string;

  @Column({ name: 'relayed_at', type: 'varchar', length: 32, nullable: true })
  relayedAt!: string | null;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  /** Set aside: not a valid event for this rookery, never offered to the relay again. */
  @Column({ type: 'boolean', default: false })
  invalid!: boolean;
}
