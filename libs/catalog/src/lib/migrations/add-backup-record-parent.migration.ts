import { MigrationInterface, QueryRunner, TableColumn } from 'typeorm';

/**
 * The backup an incremental was taken against, so API callers see a chain. Records already in the
 * catalog get null here; the reindex every service runs on start fills it in from their manifests.
 */
export class AddBackupRecordParent1795737600000 implements MigrationInterface {
  name = 'AddBackupRecordParent1795737600000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.addColumn('backup_record', new TableColumn({ name: 'parent', type: 'varchar', length: '128', isNullable: true }));
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.dropColumn('backup_record', 'parent');
  }
}
