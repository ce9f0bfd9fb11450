import { Body, Controller, Get, HttpCode, HttpStatus, Param, Post, Res, Type, applyDecorators } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { z } from 'zod';
import type { TierName } from '@rookery/core';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BodySchemaPipe, NoBody } from '../auth/body-schema.pipe';
import { CallerName } from '../auth/caller.decorator';
import { BackupJobService } from './backup-jobs.service';
import { BackupListDto, BackupRecordDto, ErrorBodyDto, StartBackupDto } from './backup-record.dto';

/** The body of POST /backups; the type is checked against the tier's policy by the job service. */
export const startBackupBody = z.object({ type: z.enum(['full', 'incremental', 'snapshot']).optional() }).strict();

/**
 * A POST :id/cancel route: for operators, no body, answering once the job has stopped with its
 * ended record (200), 404 for an unknown id and 409 NOT_RUNNING for one that is not running.
 */
export function CancelRoute(options: { summary: string; type: Type<unknown>; notFound: string; notRunning: string }): MethodDecorator {
  return applyDecorators(
    Post(':id/cancel'),
    RequiresRole(OPERATE_ROLES),
    HttpCode(HttpStatus.OK),
    ApiOperation({ summary: options.summary }),
    NoBody(),
    ApiOkResponse({ type: options.type, description: 'the ended job: failed, its error naming who cancelled it' }),
    ApiNotFoundResponse({ type: ErrorBodyDto, description: options.notFound }),
    ApiConflictResponse({ type: ErrorBodyDto, description: `NOT_RUNNING: ${options.notRunning}` }),
  );
}

/** The Location of a created resource: its path under `collection`. */
export function locationOf(collection: string, id: string): string {
  return `/${collection}/${encodeURIComponent(id)}`;
}

export interface LocationReply {
  setHeader(name: string, value: string): void;
}

/**
 * The REST surface every tier service offers for its backups (POST/GET /backups, GET
 * /backups/:id), bound to one tier. A class per tier, so the OpenAPI document names the tier.
 */
export function createBackupsController(tier: TierName): Type<unknown> {
  @ApiTags('backups')
  @Controller('backups')
  class BackupsController {
    constructor(readonly backups: BackupJobService) {}

    @Post()
    @RequiresRole(OPERATE_ROLES)
    @HttpCode(HttpStatus.ACCEPTED)
    @ApiOperation({ summary: `Start a backup of the ${tier} tier in the background (full unless the body names another type)` })
    @ApiBody({ type: StartBackupDto, required: false })
    @ApiAcceptedResponse({ type: BackupRecordDto, description: 'the running backup; poll its Location' })
    @ApiBadRequestResponse({ type: ErrorBodyDto, description: 'CONFIG_INVALID: the tier does not take this backup type' })
    @ApiConflictResponse({ type: ErrorBodyDto, description: 'LOCK_HELD: a backup of the tier is already running' })
    @ApiServiceUnavailableResponse({ type: ErrorBodyDto, description: 'the database or the repository cannot be reached' })
    async start(
      @Res({ passthrough: true }) reply: LocationReply,
      @Body(new BodySchemaPipe(startBackupBody)) body: z.infer<typeof startBackupBody>,
      @CallerName() caller: string,
    ): Promise<BackupRecordDto> {
      // The body is checked against the tier's policy by the job service (no pipe: one rule, one place).
      const record = await this.backups.start(tier, { requestedBy: caller, type: body.type });
      reply.setHeader('Location', locationOf('backups', record.id));
      return record;
    }

    @Get()
    @RequiresRole(READ_ROLES)
    @ApiOperation({ summary: `Backups of the ${tier} tier from the catalog, newest last` })
    @ApiOkResponse({ type: BackupListDto })
    async list(): Promise<BackupListDto> {
      return { backups: await this.backups.list(tier) };
    }

    @Get(':id')
    @RequiresRole(READ_ROLES)
    @ApiOperation({ summary: `One backup of the ${tier} tier (running, completed or failed)` })
    @ApiOkResponse({ type: BackupRecordDto })
    @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'BACKUP_NOT_FOUND' })
    get(@Param('id') id: string): Promise<BackupRecordDto> {
      return this.backups.get(tier, id);
    }

    @CancelRoute({
      summary: `Cancel a backup of the ${tier} tier running in this service; answers once it has stopped`,
      type: BackupRecordDto,
      notFound: 'BACKUP_NOT_FOUND',
      notRunning: 'the backup is not running in this service',
    })
    cancel(@Param('id') id: string, @CallerName() caller: string): Promise<BackupRecordDto> {
      return this.backups.cancel(tier, id, caller);
    }
  }
  return BackupsController;
}
