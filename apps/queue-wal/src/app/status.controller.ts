import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { READ_ROLES, RequiresRole } from '@rookery/service-kit';
import type { WalStreamStatus } from '@rookery/wal';
import { WalStreamService } from './wal-stream.service';

@ApiTags('wal')
@Controller('status')
export class StatusController {
  constructor(private readonly stream: WalStreamService) {}

  @Get()
  @RequiresRole(READ_ROLES)
  @ApiOperation({ summary: 'State of the synchronous WAL stream of the queue tier' })
  @ApiOkResponse({
    description:
      'receiver (pg_receivewal running, pid, restarts, last exit), uploads (last segment and partial pushed, pending files, failures) and primary (registered in synchronous_standby_names, sync state, flush LSN, slot) — or primary.error when the primary cannot be asked',
  })
  status(): Promise<WalStreamStatus> {
    return this.stream.status();
  }
}
