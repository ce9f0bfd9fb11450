import type { Type } from '@nestjs/common';
import type { TierName } from '@rookery/core';
import { createBackupsController } from './backups/backups.controller';
import { createRestoresController } from './restores/restores.controller';
import { createTierGrpcControllers } from './grpc/tier.grpc-controllers';
import { createHoldsController, createRetentionPlanController } from './retention/holds.controller';

/**
 * The REST routes every tier service offers for its tier: backups, restores, legal holds and the
 * retention plan; and the same operations as rookery.v1 gRPC services (served when service.grpc
 * is set). An app lists these beside its own controllers.
 */
export function tierControllers(tier: TierName): Type<unknown>[] {
  return [
    createBackupsController(tier),
    createRestoresController(tier),
    createHoldsController(tier),
    createRetentionPlanController(tier),
    ...createTierGrpcControllers(tier),
  ];
}
