import { Column, Entity, Index, PrimaryColumn, ValueTransformer } from 'typeorm';

/** PostgreSQL returns bigint as a string; the catalog hands out numbers (byte counts fit in 2^53). */
const bigintAsNumber: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null || value === undefined ? null : Number(value)),
};

/**
 * One row per backup the catalog knows of. Column types are spelled out (no reliance on
 * emitDecoratorMetadata) and limited to types SQLite and PostgreSQL share; times are ISO-8601 UTC
 * strings, which sort chronologically as text. The schema is owned by the migrations, never
 * synchronised from this class.
 */
@Entity({ name: 'backup_record' })
@Index('backup_record_tier_started_at', ['tier', 'startedAt'])
export class BackupRecordEntity {
  @PrimaryColumn({ type: 'varchar', length: 128 })
  id!: string;

  @Column({ type: 'varchar', length: 16 })
  tier!: string;

  @Column({ type: 'varchar', length: 16 })
  type!: string;

  @Column({ type: 'varchar', length: 16 })
  method!: string;

  @Column({ type: 'varchar', length: 16 })
  status!: string;

  @Column({ name: 'started_at', type: 'varchar', length: 32 })
  startedAt!: string;

  @Column({ name: 'finished_at', type: 'varchar', length: 32, nullable: true })
  finishedAt!: string | null;

  @Column({ name: 'start_lsn', type: 'varchar', length: 32, nullable: true })
  startLsn!: string | null;

  @Column({ name: 'stop_lsn', type: 'varchar', length: 32, nullable: true })
  stopLsn!: string | null;

  @Column({ type: 'bigint', nullable: true, transformer: bigintAsNumber })
  bytes!: number | null;

  @Column({ name: 'stored_bytes', type: 'bigint', nullable: true, transformer: bigintAsNumber })
  storedBytes!: number | null;

  /** The manifest's artifact records as JSON text: portable across SQLite and PostgreSQL. */
  @Column({ type: 'text', default: '[]' })
  artifacts!: string;

  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @Column({ name: 'requested_by', type: 'varchar', length: 128, nullable: true })
  requestedBy!: string | null;

  @Column({ type: 'varchar', length: 128, nullable: true })
  parent!: string | null;
}
