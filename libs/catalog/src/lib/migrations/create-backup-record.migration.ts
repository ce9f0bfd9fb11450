import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/** The first catalog schema: one table of backup records, indexed for "backups of a tier by time". */
export class CreateBackupRecord1767225600000 implements MigrationInterface {
  name = 'CreateBackupRecord1767225600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'backup_record',
        columns: [
          { name: 'id', type: 'varchar', length: '128', isPrimary: true },
          { name: 'tier', type: 'varchar', length: '16' },
          { name: 'type', type: 'varchar', length: '16' },
          { name: 'method', type: 'varchar', length: '16' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'started_at', type: 'varchar', length: '32' },
          { name: 'finished_at', type: 'varchar', length: '32', isNullable: true },
          { name: 'start_lsn', type: 'varchar', length: '32', isNullable: true },
          { name: 'stop_lsn', type: 'varchar', length: '32', isNullable: true },
          { name: 'bytes', type: 'bigint', isNullable: true },
          { name: 'stored_bytes', type: 'bigint', isNullable: true },
          { name: 'artifacts', type: 'text', default: "'[]'" },
          { name: 'error', type: 'text', isNullable: true },
          { name: 'requested_by', type: 'varchar', length: '128', isNullable: true },
        ],
      }),
    );
    await queryRunner.createIndex(
      'backup_record',
      new TableIndex({ name: 'backup_record_tier_started_at', columnNames: ['tier', 'started_at'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('backup_record');
  }
}
