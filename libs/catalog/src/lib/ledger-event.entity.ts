import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One event as the compliance ledger received it: the evidence an auditor files. Append-only and
 * keyed by the event id, so a redelivered event is recorded once. `data` is the event's data as
 * JSON text (portable across SQLite and PostgreSQL).
 */
@Entity({ name: 'ledger_event' })
@Index('ledger_event_subject_time', ['subject', 'time'])
export class LedgerEventEntity {
  @PrimaryColumn({ name: 'event_id', type: 'varchar', length: 64 })
  eventId!: string;

  @Column({ type: 'varchar', length: 128 })
  type!: string;

  /** The tier. */
  @Column({ type: 'varchar', length: 32 })
  subject!: string;

  @Column({ type: 'varchar', length: 128 })
  source!: string;

  /** When the event happened (its CloudEvents time), ISO-8601 UTC. */
  @Column({ type: 'varchar', length: 32 })
  time!: string;

  @Column({ name: 'received_at', type: 'varchar', length: 32 })
  receivedAt!: string;

  @Column({ type: 'text' })
  data!: string;
}
