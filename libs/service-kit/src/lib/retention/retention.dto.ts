import { ApiProperty } from '@nestjs/swagger';
import type { LegalHold, RetentionPlan, TierName } from '@rookery/core';
import type { ExpireResult } from '@rookery/engine';

/** OpenAPI shapes of the holds and retention plan endpoints. */
export class LegalHoldDto implements LegalHold {
  @ApiProperty({ type: String, example: '20261126T020000Z-oltp' }) backupId!: string;
  @ApiProperty({ type: String, enum: ['oltp', 'content', 'queue', 'olap'] }) tier!: TierName;
  @ApiProperty({ type: String, example: 'litigation 2026-114' }) reason!: string;
  @ApiProperty({ type: String, description: 'who placed it', example: 'operator-oltp (oltp-backup service)' }) heldBy!: string;
  @ApiProperty({ type: String, format: 'date-time' }) heldAt!: string;
}

export class HoldListDto {
  @ApiProperty({ type: () => [LegalHoldDto] }) holds!: LegalHoldDto[];
}

export class PlaceHoldDto {
  @ApiProperty({ type: String, description: 'the backup to keep whatever its age', example: '20261126T020000Z-oltp' }) backup!: string;
  @ApiProperty({ type: String, description: 'why (kept with the hold)', example: 'litigation 2026-114' }) reason!: string;
}

export class RetentionPlanDto implements ExpireResult {
  @ApiProperty({ type: String, enum: ['oltp', 'content', 'queue', 'olap'] }) tier!: TierName;
  @ApiProperty({ type: Boolean, enum: [true] }) dryRun!: boolean;
  @ApiProperty({
    type: Object,
    description:
      'what would be expired and what is kept, each with its reasons (backups, WAL, orphan folders), the WAL cut and the bytes freed',
  })
  plan!: RetentionPlan;
  @ApiProperty({ type: [Object], description: 'always empty in a plan' }) skipped!: ExpireResult['skipped'];
  @ApiProperty({ type: Object, description: 'nothing in a plan' }) deleted!: ExpireResult['deleted'];
  @ApiProperty({ type: [Object], description: 'manifests that do not parse or match their checksum: never expired' })
  damaged!: ExpireResult['damaged'];
  @ApiProperty({ type: Object }) objectLock!: ExpireResult['objectLock'];
}
