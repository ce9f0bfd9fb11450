import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/** The compliance ledger: every event received, once, indexed by tier and time. */
export class CreateLedgerEvent1795654800000 implements MigrationInterface {
  name = 'CreateLedgerEvent1795654800000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'ledger_event',
        columns: [
          { name: 'event_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'type', type: 'varchar', length: '128' },
          { name: 'subject', type: 'varchar', length: '32' },
          { name: 'source', type: 'varchar', length: '128' },
          { name: 'time', type: 'varchar', length: '32' },
          { name: 'received_at', type: 'varchar', length: '32' },
          { name: 'data', type: 'text' },
        ],
      }),
    );
    await queryRunner.createIndex('ledger_event', new TableIndex({ name: 'ledger_event_subject_time', columnNames: ['subject', 'time'] }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('ledger_event');
  }
}
