import { Controller, Get, HttpCode, HttpStatus, Param, Post, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiConflictResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { BackupJobService, BackupListDto, BackupRecordDto, ErrorBodyDto } from '@rookery/service-kit';
import { OLTP_TIER } from './oltp.tier';

interface LocationReply {
  setHeader(name: string, value: string): void;
}

@ApiTags('backups')
@Controller('backups')
export class BackupsController {
  constructor(private readonly backups: BackupJobService) {}

  @Post()
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Start a full physical backup of the oltp tier in the background' })
  @ApiAcceptedResponse({ type: BackupRecordDto, description: 'the running backup; poll its Location' })
  @ApiConflictResponse({ type: ErrorBodyDto, description: 'LOCK_HELD: a backup of the tier is already running' })
  @ApiServiceUnavailableResponse({ type: ErrorBodyDto, description: 'the database or the repository cannot be reached' })
  async start(@Res({ passthrough: true }) reply: LocationReply): Promise<BackupRecordDto> {
    const record = await this.backups.start(OLTP_TIER, { requestedBy: 'api' });
    reply.setHeader('Location', `/backups/${encodeURIComponent(record.id)}`);
    return record;
  }

  @Get()
  @ApiOperation({ summary: 'Backups of the oltp tier from the catalog, newest last' })
  @ApiOkResponse({ type: BackupListDto })
  async list(): Promise<BackupListDto> {
    return { backups: await this.backups.list(OLTP_TIER) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One backup of the oltp tier (running, completed or failed)' })
  @ApiOkResponse({ type: BackupRecordDto })
  @ApiNotFoundResponse({ type: ErrorBodyDto, description: 'BACKUP_NOT_FOUND' })
  get(@Param('id') id: string): Promise<BackupRecordDto> {
    return this.backups.get(OLTP_TIER, id);
  }
}
