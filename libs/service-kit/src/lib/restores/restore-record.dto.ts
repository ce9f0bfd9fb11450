import { ApiExtraModels, ApiProperty, ApiPropertyOptional, getSchemaPath } from '@nestjs/swagger';
import type { TierName } from '@rookery/core';
import { JobProgressDto } from '../backups/backup-record.dto';
import type { LogicalRestoreTarget, PhysicalRestoreTarget, RestoreRequest } from './restore-request';
import type { RestoreRecord, RestoreStatus } from './restore-jobs.service';

/** OpenAPI shapes of the restore endpoints. */
export class RestoreRecordDto implements RestoreRecord {
  @ApiProperty({ type: String, example: 'restore-20261207T120000Z-content-1a2b' }) id!: string;
  @ApiProperty({ type: String, enum: ['oltp', 'content', 'queue', 'olap'] }) tier!: TierName;
  @ApiProperty({ type: String, enum: ['logical', 'physical'] }) kind!: 'logical' | 'physical';
  @ApiProperty({ type: String, description: "as requested: a backup id or 'latest'" }) backup!: string;
  @ApiProperty({ type: String, nullable: true, description: 'the backup restored, once known' }) backupId!: string | null;
  @ApiProperty({ type: String, enum: ['running', 'completed', 'failed'] }) status!: RestoreStatus;
  @ApiProperty({ type: String, format: 'date-time' }) startedAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt!: string | null;
  @ApiProperty({
    type: String,
    description: 'host:port/database (logical) or the directory (physical)',
    example: 'db.internal:5432/content_copy',
  })
  target!: string;
  @ApiProperty({ type: Number, nullable: true, description: 'logical bytes restored, once ended' }) bytes!: number | null;
  @ApiProperty({ type: String, nullable: true, description: 'why the restore failed' }) error!: string | null;
  @ApiProperty({ type: String, example: 'operator-content' }) requestedBy!: string;
  @ApiProperty({ type: [String], description: 'the backups applied, in order' }) backupsApplied!: string[];
  @ApiPropertyOptional({ type: () => JobProgressDto, nullable: true, description: 'where a running restore is; null otherwise' })
  progress?: JobProgressDto | null;
}

export class RestoreListDto {
  @ApiProperty({ type: () => [RestoreRecordDto], description: 'newest last' }) restores!: RestoreRecordDto[];
}

export class LogicalRestoreTargetDto implements LogicalRestoreTarget {
  @ApiProperty({ type: String, enum: ['logical'] }) kind!: 'logical';
  @ApiProperty({
    type: String,
    description: 'the database to restore into (created when absent); no password: the service connects with its own credentials',
    example: 'postgres://restore@db.internal:5432/content_copy',
  })
  url!: string;
  @ApiPropertyOptional({ type: Boolean, description: 'replace what is there' }) clean?: boolean;
  @ApiPropertyOptional({ type: String, description: "only this table ('name' or 'schema.name')" }) table?: string;
  @ApiPropertyOptional({ type: String, description: 'only this schema' }) schema?: string;
}

export class PhysicalRestoreTargetDto implements PhysicalRestoreTarget {
  @ApiProperty({ type: String, enum: ['physical'] }) kind!: 'physical';
  @ApiProperty({
    type: String,
    description: 'a new (absent or empty) directory under the service’s restores.directoryRoot; left for the operator to start',
    example: '/srv/restores/oltp-20261207',
  })
  directory!: string;
  @ApiPropertyOptional({
    type: Object,
    description: 'where recovery stops (one of time, lsn, name, xid); default: the end of the archived WAL',
    example: { time: '2026-12-07T02:00:00Z' },
  })
  recoveryTarget?: PhysicalRestoreTarget['recoveryTarget'];
  @ApiPropertyOptional({ type: Boolean, enum: [false], description: 'a service never starts the restored server' }) start?: false;
}

@ApiExtraModels(LogicalRestoreTargetDto, PhysicalRestoreTargetDto)
export class StartRestoreDto implements RestoreRequest {
  @ApiProperty({ type: String, description: "a backup id or 'latest'", example: 'latest' }) backup!: string;
  @ApiProperty({
    oneOf: [{ $ref: getSchemaPath(LogicalRestoreTargetDto) }, { $ref: getSchemaPath(PhysicalRestoreTargetDto) }],
    description: "logical on the content and olap tiers, physical on oltp and queue (the tier's backup method)",
  })
  target!: LogicalRestoreTargetDto | PhysicalRestoreTargetDto;
}
