import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { PublicRoute } from '../auth/auth.decorator';
import { ServiceHealthService } from './service-health.service';

@ApiTags('operations')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly checks: ServiceHealthService,
  ) {}

  @Get()
  @PublicRoute()
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOkResponse({ description: 'repository store and catalog reachable; `info.service` names the service and its tier' })
  @ApiServiceUnavailableResponse({ description: 'a dependency is down; `error` names it and why' })
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.checks.service(), () => this.checks.repository(), () => this.checks.catalogDatabase()]);
  }
}
