import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Inject, Param, Post, Type } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { z } from 'zod';
import type { TierName } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BodySchemaPipe, NoBody } from '../auth/body-schema.pipe';
import { CallerName } from '../auth/caller.decorator';
import { ErrorBodyDto } from '../backups/backup-record.dto';
import { ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';
import { HoldListDto, LegalHoldDto, PlaceHoldDto, RetentionPlanDto } from './retention.dto';

export const placeHoldBody = z.object({ backup: z.string().min(1), reason: z.string().trim().min(1) }).strict();

/**
 * Legal holds of one tier over REST (GET/POST /holds, DELETE /holds/:backup): the engine's holds,
 * kept in the repository, so the CLI and every service see the same ones. A hold names who placed
 * it: the caller, through this service.
 */
export function createHoldsController(tier: TierName): Type<unknown> {
  @ApiTags('holds')
  @Controller('holds')
  class HoldsController {
    constructor(
      readonly engine: RookeryEngine,
      @Inject(SERVICE_KIT_OPTIONS) readonly options: ResolvedServiceKitOptions,
    ) {}

    @Get()
    @RequiresRole(READ_ROLES)
    @ApiOperation({ summary: `Legal holds on backups of the ${tier} tier` })
    @ApiOkResponse({ type: HoldListDto })
    async list(): Promise<HoldListDto> {
      return { holds: await this.engine.holds(tier) };
    }

    @Post()
    @RequiresRole(OPERATE_ROLES)
    @HttpCode(HttpStatus.CREATED)
    @ApiOperation({ summary: `Place a legal hold on a backup of the ${tier} tier: it is never expired while held` })
    @ApiBody({ type: PlaceHoldDto })
    @ApiCreatedResponse({ type: LegalHoldDto })
    @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'BACKUP_NOT_FOUND' })
    place(
      @CallerName() caller: string,
      @Body(new BodySchemaPipe(placeHoldBody)) body: z.infer<typeof placeHoldBody>,
    ): Promise<LegalHoldDto> {
      return this.engine.hold(tier, body.backup, body.reason, holderName(caller, this.options.serviceName));
    }

    @Delete(':backup')
    @RequiresRole(OPERATE_ROLES)
    @ApiOperation({ summary: `Release the legal hold on a backup of the ${tier} tier` })
    @NoBody()
    @ApiOkResponse({ type: LegalHoldDto, description: 'the released hold' })
    @ApiBadRequestResponse({ type: ErrorBodyDto, description: 'CONFIG_INVALID: the backup is not under legal hold' })
    release(@Param('backup') backup: string): Promise<LegalHoldDto> {
      return this.engine.releaseHold(tier, backup);
    }
  }
  return HoldsController;
}

/** GET /retention/plan of one tier: what `rookery expire --dry-run` would report. */
export function createRetentionPlanController(tier: TierName): Type<unknown> {
  @ApiTags('retention')
  @Controller('retention')
  class RetentionPlanController {
    constructor(readonly engine: RookeryEngine) {}

    @Get('plan')
    @RequiresRole(READ_ROLES)
    @ApiOperation({
      summary: `What the ${tier} tier's retention would expire now and what it keeps, and why (a dry run: nothing is deleted)`,
    })
    @ApiOkResponse({ type: RetentionPlanDto })
    plan(): Promise<RetentionPlanDto> {
      return this.engine.expire({ tier, dryRun: true }) as Promise<RetentionPlanDto>;
    }
  }
  return RetentionPlanController;
}

/** Who placed a hold through a service, as the hold records it: the caller, and the service it went through. */
export function holderName(caller: string, serviceName: string): string {
  return `${caller} (${serviceName} service)`;
}
