import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { READ_ROLES, RequiresRole } from '@rookery/service-kit';
import { RookeryEngine } from '@rookery/engine';
import { WalStatus } from '@rookery/wal';
import { OLTP_TIER } from './oltp.tier';

/** GET /status: where WAL archiving of the oltp tier stands (its RPO exposure right now). */
@ApiTags('status')
@Controller('status')
export class StatusController {
  constructor(private readonly engine: RookeryEngine) {}

  @Get()
  @RequiresRole(READ_ROLES)
  @ApiOperation({ summary: 'WAL archive of the oltp tier: newest archived segment, archive lag, current RPO exposure' })
  @ApiOkResponse({ description: '{ tier, wal: { lastArchived, archivedFiles, server, serverProblem, exposure } }' })
  async status(): Promise<{ tier: string; wal: WalStatus }> {
    return { tier: OLTP_TIER, wal: await this.engine.walStatus(OLTP_TIER) };
  }
}
