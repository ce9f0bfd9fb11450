import { Body, Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { TIER_NAMES, TierName, UnknownTierError, isTierName } from '@rookery/core';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BodySchemaPipe } from '../auth/body-schema.pipe';
import { ReplicationJobService } from './replication-jobs.service';

const replicateBody = z.object({ tier: z.string(), verify: z.boolean().optional() }).strict();

/**
 * GET /replication?tier=T: each backup's copy status per region and each region's WAL lag, plus
 * the service's last run. POST /replication { tier, verify? }: a run now (operator; audited).
 */
@ApiTags('replication')
@Controller('replication')
export class ReplicationController {
  constructor(private readonly jobs: ReplicationJobService) {}

  @Get()
  @RequiresRole(READ_ROLES, { tierFrom: 'query' })
  @ApiOperation({ summary: 'Copy status per backup and region, WAL lag per region, last run' })
  @ApiQuery({ name: 'tier', required: true, enum: TIER_NAMES })
  @ApiOkResponse({ description: 'ReplicationStatus with lastRun' })
  status(@Query('tier') tier: string) {
    return this.jobs.status(tierOf(tier));
  }

  @Post()
  @RequiresRole(OPERATE_ROLES, { tierFrom: 'body' })
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Copy what the replica regions lack now (verify: re-read every copy)' })
  replicate(@Body(new BodySchemaPipe(replicateBody)) body: z.infer<typeof replicateBody>) {
    return this.jobs.replicate(tierOf(body.tier), { verify: body.verify === true });
  }
}

function tierOf(value: string): TierName {
  if (!isTierName(value)) throw new UnknownTierError(value, TIER_NAMES);
  return value;
}
