import { Controller } from '@nestjs/common';
import { GrpcMethod, Payload } from '@nestjs/microservices';
import type { DrillList, DrillReport, ListDrillsRequest__Output, StartDrillRequest__Output } from '@rookery/contracts';
import { OPERATE_ROLES, READ_ROLES, RequiresRole, toMessage } from '@rookery/service-kit';
import { DrillService } from './drill.service';
import { optionalTier, requireTier } from './validator.controller';

/**
 * rookery.v1.DrillService: POST /drills and GET /drills over gRPC, with the same roles and the
 * tier read from the request's `tier` (a principal scoped to tiers must name one of its own).
 */
@Controller()
export class DrillsGrpcController {
  constructor(private readonly drills: DrillService) {}

  @GrpcMethod('DrillService', 'StartDrill')
  @RequiresRole(OPERATE_ROLES, { tierFrom: 'body' })
  async startDrill(@Payload() request: StartDrillRequest__Output): Promise<DrillReport> {
    return toMessage(await this.drills.run(requireTier(request.tier)));
  }

  @GrpcMethod('DrillService', 'ListDrills')
  @RequiresRole(READ_ROLES, { tierFrom: 'body' })
  async listDrills(@Payload() request: ListDrillsRequest__Output): Promise<DrillList> {
    return { drills: toMessage(await this.drills.list(optionalTier(request.tier))) };
  }
}
