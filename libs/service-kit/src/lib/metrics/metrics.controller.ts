import { Controller, Get, Header } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BackupMetricsService } from './backup-metrics.service';
import { ObjectiveMetricsService } from './objective-metrics.service';

@ApiTags('operations')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: BackupMetricsService,
    private readonly objectives: ObjectiveMetricsService,
  ) {}

  @Get()
  @RequiresRole(READ_ROLES)
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiOkResponse({ description: 'Prometheus text exposition format' })
  async scrape(): Promise<string> {
    await this.objectives.refresh();
    return this.metrics.registry.metrics();
  }
}
