import { Controller, Get, HttpCode, HttpStatus, Param, Post, Res, Type } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { TierName } from '@rookery/core';
import { BackupJobService } from './backup-jobs.service';
import { BackupListDto, BackupRecordDto, ErrorBodyDto } from './backup-record.dto';

interface LocationReply {
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
    @HttpCode(HttpStatus.ACCEPTED)
    @ApiOperation({ summary: `Start a full backup of the ${tier} tier in the background` })
    @ApiAcceptedResponse({ type: BackupRecordDto, description: 'the running backup; poll its Location' })
    @ApiConflictResponse({ type: ErrorBodyDto, description: 'LOCK_HELD: a backup of the tier is already running' })
    @ApiServiceUnavailableResponse({ type: ErrorBodyDto, description: 'the database or the repository cannot be reached' })
    async start(@Res({ passthrough: true }) reply: LocationReply): Promise<BackupRecordDto> {
      const record = await this.backups.start(tier, { requestedBy: 'api' });
      reply.setHeader('Location', `/backups/${encodeURIComponent(record.id)}`);
      return record;
    }

    @Get()
    @ApiOperation({ summary: `Backups of the ${tier} tier from the catalog, newest last` })
    @ApiOkResponse({ type: BackupListDto })
    async list(): Promise<BackupListDto> {
      return { backups: await this.backups.list(tier) };
    }

    @Get(':id')
    @ApiOperation({ summary: `One backup of the ${tier} tier (running, completed or failed)` })
    @ApiOkResponse({ type: BackupRecordDto })
    @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'BACKUP_NOT_FOUND' })
    get(@Param('id') id: string): Promise<BackupRecordDto> {
      return this.backups.get(tier, id);
    }
  }
  return BackupsController;
}
