import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { BackupRecord, BackupStatus } from '@rookery/catalog';
import type { ArtifactRecord, BackupMethod, BackupType, TierName } from '@rookery/core';
import type { ErrorBody } from '../errors/rookery-error.filter';
import type { JobProgress } from '../jobs/job-progress';

/** OpenAPI shapes of the backup endpoints; every property type is spelled out for the document. */
export class ArtifactDto {
  @ApiProperty({ type: String, example: 'base.tar.zst' }) name!: string;
  @ApiProperty({
    type: String,
    enum: [
      'base-tar',
      'tablespace-tar',
      'base-incremental',
      'tablespace-incremental',
      'page-index',
      'pg-manifest',
      'dump',
      'changeset',
      'wal',
    ],
  })
  kind!: ArtifactRecord['kind'];
  @ApiPropertyOptional({
    type: Object,
    description: "a tablespace-tar's tablespace",
    example: { oid: 16384, name: 'fast', location: '/srv/pg/fast' },
  })
  tablespace?: ArtifactRecord['tablespace'];
  @ApiPropertyOptional({
    type: Object,
    description:
      "a base-incremental / tablespace-incremental's pages: read from the tar it was compared from, stored because they changed, " +
      'the files stored whole and removed; pagesSkipped (PostgreSQL 17 and later): those the server did not send',
    example: { pagesRead: 131072, pagesStored: 2048, wholeFiles: 12, removed: 1, pagesSkipped: 120000 },
  })
  incremental?: ArtifactRecord['incremental'];
  @ApiPropertyOptional({
    type: Object,
    description: "a page-index stored as a delta against the same tar's page index of backup deltaOf (the parent); absent: a full index",
    example: { deltaOf: '20261126T020000Z-oltp' },
  })
  pageIndex?: ArtifactRecord['pageIndex'];
  @ApiProperty({ type: Number, description: 'logical bytes (before compression and encryption)' }) bytes!: number;
  @ApiProperty({ type: Number, description: 'bytes in the store' }) storedBytes!: number;
  @ApiProperty({ type: String, description: 'sha256 of the stored bytes' }) sha256!: string;
  @ApiProperty({ type: String, required: false, description: 'sha256 of the logical bytes (absent for a base tar the server compressed)' })
  logicalSha256?: string;
  @ApiProperty({ type: Object, example: { codec: 'zstd', level: 1 } }) compression!: ArtifactRecord['compression'];
  @ApiProperty({ type: Object, example: { algorithm: 'none' } }) encryption!: ArtifactRecord['encryption'];
}

export class JobProgressDto implements JobProgress {
  @ApiProperty({ type: String, enum: ['backup', 'upload', 'download', 'extract', 'verify', 'sync', 'start'] }) phase!: JobProgress['phase'];
  @ApiProperty({ type: Number, description: 'logical bytes so far' }) bytes!: number;
  @ApiPropertyOptional({ type: Number, description: 'logical bytes expected, when known (an estimate while a base backup streams)' })
  totalBytes?: number;
}

export class BackupRecordDto implements BackupRecord {
  @ApiProperty({ type: String, example: '20261126T020000Z-oltp' }) id!: string;
  @ApiProperty({ type: String, enum: ['oltp', 'content', 'queue', 'olap'] }) tier!: TierName;
  @ApiProperty({ type: String, enum: ['full', 'incremental', 'snapshot'] }) type!: BackupType;
  @ApiProperty({ type: String, enum: ['physical', 'logical'] }) method!: BackupMethod;
  @ApiProperty({ type: String, enum: ['running', 'completed', 'failed'] }) status!: BackupStatus;
  @ApiProperty({ type: String, format: 'date-time' }) startedAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt!: string | null;
  @ApiProperty({ type: String, nullable: true, example: '0/2000028' }) startLsn!: string | null;
  @ApiProperty({ type: String, nullable: true, example: '0/2000100' }) stopLsn!: string | null;
  @ApiProperty({ type: Number, nullable: true }) bytes!: number | null;
  @ApiProperty({ type: Number, nullable: true }) storedBytes!: number | null;
  @ApiProperty({ type: () => [ArtifactDto] }) artifacts!: ArtifactRecord[];
  @ApiProperty({ type: String, nullable: true, description: 'why the run failed' }) error!: string | null;
  @ApiProperty({ type: String, nullable: true, example: 'api' }) requestedBy!: string | null;
  @ApiProperty({
    type: String,
    nullable: true,
    example: '20261126T020000Z-oltp',
    description: 'the backup this incremental was taken against; null for a full, and until the backup completes',
  })
  parent!: string | null;
  @ApiPropertyOptional({
    type: () => JobProgressDto,
    nullable: true,
    description: 'GET /backups/:id: where the backup is while it runs in this service; null otherwise',
  })
  progress?: JobProgress | null;
}

export class StartBackupDto {
  @ApiPropertyOptional({
    type: String,
    enum: ['full', 'incremental', 'snapshot'],
    default: 'full',
    description: "full, or the tier's scheduled type: incremental (content), snapshot (olap)",
  })
  type?: BackupType;
}

export class BackupListDto {
  @ApiProperty({ type: () => [BackupRecordDto], description: 'newest last' }) backups!: BackupRecordDto[];
}

export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({ type: String, example: 'LOCK_HELD' }) code!: string;
  @ApiProperty({ type: String }) message!: string;
  @ApiPropertyOptional({ type: String }) hint?: string;
}
