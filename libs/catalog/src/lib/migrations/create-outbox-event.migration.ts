import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

/** The transactional outbox: events stored with the catalog change they report, relayed later. */
export class CreateOutboxEvent1795651200000 implements MigrationInterface {
  name = 'CreateOutboxEvent1795651200000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.createTable(
      new Table({
        name: 'outbox_event',
        columns: [
          { name: 'event_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'seq', type: 'bigint' },
          { name: 'payload', type: 'text' },
          { name: 'created_at', type: 'varchar', length: '32' },
          { name: 'relayed_at', type: 'varchar', length: '32', isNullable: true },
          { name: 'attempts', type: 'integer', default: 0 },
          { name: 'last_error', type: 'text', isNullable: true },
          { name: 'invalid', type: 'boolean', default: false },
        ],
      }),
    );
    await queryRunner.createIndex(
      'outbox_event',
      new TableIndex({ name: 'outbox_event_pending', columnNames: ['relayed_at', 'invalid', 'seq'] }),
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropTable('outbox_event');
  }
}
