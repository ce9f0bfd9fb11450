import { Body, Controller, Get, HttpCode, Post, Query } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { TIER_NAMES, TierName, UnknownTierError, isTierName } from '@rookery/core';
import { BodySchemaPipe, OPERATE_ROLES, READ_ROLES, RequiresRole } from '@rookery/service-kit';
import { DrillReport } from '@rookery/validation';
import { DrillService } from './drill.service';
import { ValidatorService } from './validator.service';

const drillBody = z.object({ tier: z.string().optional() }).strict();

@ApiTags('validator')
@Controller()
export class ValidatorController {
  constructor(
    private readonly validations: ValidatorService,
    private readonly drills: DrillService,
  ) {}

  @Get('validations')
  @RequiresRole(READ_ROLES, { tierFrom: 'query' })
  @ApiOperation({ summary: 'validations of backups as they landed, newest first: every check with its detail' })
  @ApiQuery({ name: 'tier', required: false })
  @ApiQuery({ name: 'backupId', required: false })
  async listValidations(@Query('tier') tier?: string, @Query('backupId') backupId?: string) {
    return { validations: await this.validations.list({ tier: optionalTier(tier), backupId }) };
  }

  @Get('drills')
  @RequiresRole(READ_ROLES, { tierFrom: 'query' })
  @ApiOperation({
    summary: 'restore drills, newest first: restore time against the RTO and the data checks; failed drills with their reason (error)',
  })
  @ApiQuery({ name: 'tier', required: false })
  async listDrills(@Query('tier') tier?: string) {
    return { drills: await this.drills.list(optionalTier(tier)) };
  }

  @Post('drills')
  @RequiresRole(OPERATE_ROLES, { tierFrom: 'body' })
  @HttpCode(200)
  @ApiOperation({
    summary:
      "runs a restore drill of the tier's latest backup now and answers its figures when done (409 while one runs); a failed drill answers 422 (failed checks) or the status of what stopped it, with the reason and its record",
  })
  @ApiBody({ schema: { type: 'object', properties: { tier: { type: 'string', enum: [...TIER_NAMES] } }, required: ['tier'] } })
  run(@Body(new BodySchemaPipe(drillBody)) body: z.infer<typeof drillBody>): Promise<DrillReport> {
    return this.drills.run(requireTier(body.tier));
  }
}

export function requireTier(value: string | undefined): TierName {
  if (!value || !isTierName(value)) throw new UnknownTierError(String(value), TIER_NAMES);
  return value;
}

export function optionalTier(value: string | undefined): TierName | undefined {
  return value === undefined ? undefined : requireTier(value);
}
