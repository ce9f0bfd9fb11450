import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Res, Type } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { TierName } from '@rookery/core';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BodySchemaPipe } from '../auth/body-schema.pipe';
import { CallerName } from '../auth/caller.decorator';
import { ErrorBodyDto } from '../backups/backup-record.dto';
import { CancelRoute, LocationReply, locationOf } from '../backups/backups.controller';
import { RestoreJobService } from './restore-jobs.service';
import { RestoreListDto, RestoreRecordDto, StartRestoreDto } from './restore-record.dto';
import { RestoreRequest, restoreRequestSchema } from './restore-request';

/**
 * The REST surface of the restores a tier service runs (POST/GET /restores, GET /restores/:id,
 * POST /restores/:id/cancel), bound to one tier. A class per tier, so the OpenAPI document names it.
 */
export function createRestoresController(tier: TierName): Type<unknown> {
  @ApiTags('restores')
  @Controller('restores')
  class RestoresController {
    constructor(readonly restores: RestoreJobService) {}

    @Post()
    @RequiresRole(OPERATE_ROLES)
    @HttpCode(HttpStatus.ACCEPTED)
    @ApiOperation({
      summary: `Restore a backup of the ${tier} tier in the background: into a database (logical) or a directory on the service host (physical)`,
    })
    @ApiBody({ type: StartRestoreDto })
    @ApiAcceptedResponse({ type: RestoreRecordDto, description: 'the running restore; poll its Location' })
    @ApiBadRequestResponse({
      type: ErrorBodyDto,
      description:
        "CONFIG_INVALID: a restore of the other method than the tier's, a target URL with a password, a directory outside restores.directoryRoot",
    })
    @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'BACKUP_NOT_FOUND' })
    @ApiConflictResponse({ type: ErrorBodyDto, description: 'LOCK_HELD: a restore of the tier is already running in this service' })
    async start(
      @Res({ passthrough: true }) reply: LocationReply,
      @CallerName() caller: string,
      @Body(new BodySchemaPipe(restoreRequestSchema)) body: RestoreRequest,
    ): Promise<RestoreRecordDto> {
      const record = await this.restores.start(tier, body, caller);
      reply.setHeader('Location', locationOf('restores', record.id));
      return record;
    }

    @Get()
    @RequiresRole(READ_ROLES)
    @ApiOperation({ summary: `Restores of the ${tier} tier this service remembers (its newest 100), newest last` })
    @ApiOkResponse({ type: RestoreListDto })
    list(): RestoreListDto {
      return { restores: this.restores.list(tier) };
    }

    @Get(':id')
    @RequiresRole(READ_ROLES)
    @ApiOperation({ summary: `One restore of the ${tier} tier, with its progress while it runs` })
    @ApiOkResponse({ type: RestoreRecordDto })
    @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'RESTORE_NOT_FOUND' })
    get(@Param('id') id: string): RestoreRecordDto {
      return this.restores.served(tier, id);
    }

    @CancelRoute({
      summary: `Cancel a restore of the ${tier} tier running in this service; answers once it has stopped`,
      type: RestoreRecordDto,
      notFound: 'RESTORE_NOT_FOUND',
      notRunning: 'the restore has ended',
    })
    async cancel(@Param('id') id: string, @CallerName() caller: string): Promise<RestoreRecordDto> {
      this.restores.served(tier, id);
      return this.restores.cancel(id, caller);
    }
  }
  return RestoresController;
}
