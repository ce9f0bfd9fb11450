import { Controller, Inject, Type } from '@nestjs/common';
import { GrpcMethod, Payload } from '@nestjs/microservices';
import { Observable, from, map } from 'rxjs';
import type {
  BackupList,
  BackupProgressUpdate,
  BackupRecord,
  CancelBackupRequest__Output,
  CancelRestoreRequest__Output,
  GetBackupRequest__Output,
  GetRestoreRequest__Output,
  Hold,
  HoldList,
  PlaceHoldRequest__Output,
  ReleaseHoldRequest__Output,
  RestoreList,
  RestoreProgressUpdate,
  RestoreRecord,
  RetentionPlanResult,
  StartBackupRequest__Output,
  StartRestoreRequest__Output,
  WatchBackupRequest__Output,
  WatchRestoreRequest__Output,
} from '@rookery/contracts';
import type { TierName } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { BodySchemaPipe } from '../auth/body-schema.pipe';
import { CallerName } from '../auth/caller.decorator';
import { BackupJobService } from '../backups/backup-jobs.service';
import { startBackupBody } from '../backups/backups.controller';
import { holderName, placeHoldBody } from '../retention/holds.controller';
import { RestoreJobService } from '../restores/restore-jobs.service';
import { restoreRequestSchema } from '../restores/restore-request';
import { ResolvedServiceKitOptions, SERVICE_KIT_OPTIONS } from '../service-kit.constants';
import { toMessage } from './grpc-message';

// The rookery.v1 services of one tier, each method the twin of a REST route: the same roles, the
// same job services, the caller named the same way (CallerName). Errors reach the client through
// RookeryErrorFilter as gRPC statuses.

// Each request checked by the REST route's own schema: the same rules, the same messages.
const startBackupPipe = new BodySchemaPipe(startBackupBody);
const placeHoldPipe = new BodySchemaPipe(placeHoldBody);
const restoreRequestPipe = new BodySchemaPipe(restoreRequestSchema);

/** rookery.v1.BackupService of one tier (POST/GET /backups, GET /backups/:id, POST /backups/:id/cancel). */
export function createBackupsGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class BackupsGrpcController {
    constructor(readonly backups: BackupJobService) {}

    @GrpcMethod('BackupService', 'StartBackup')
    @RequiresRole(OPERATE_ROLES)
    async startBackup(@Payload() request: StartBackupRequest__Output, @CallerName() caller: string): Promise<BackupRecord> {
      const { type } = startBackupPipe.transform(fieldsOf(request));
      return toMessage(await this.backups.start(tier, { requestedBy: caller, type }));
    }

    @GrpcMethod('BackupService', 'GetBackup')
    @RequiresRole(READ_ROLES)
    async getBackup(@Payload() request: GetBackupRequest__Output): Promise<BackupRecord> {
      return toMessage(await this.backups.get(tier, request.id));
    }

    @GrpcMethod('BackupService', 'ListBackups')
    @RequiresRole(READ_ROLES)
    async listBackups(): Promise<BackupList> {
      return { backups: toMessage(await this.backups.list(tier)) };
    }

    @GrpcMethod('BackupService', 'WatchBackup')
    @RequiresRole(READ_ROLES)
    watchBackup(@Payload() request: WatchBackupRequest__Output): Observable<BackupProgressUpdate> {
      return from(this.backups.watch(tier, request.id)).pipe(map((update) => toMessage(update)));
    }

    @GrpcMethod('BackupService', 'CancelBackup')
    @RequiresRole(OPERATE_ROLES)
    async cancelBackup(@Payload() request: CancelBackupRequest__Output, @CallerName() caller: string): Promise<BackupRecord> {
      return toMessage(await this.backups.cancel(tier, request.id, caller));
    }
  }
  return BackupsGrpcController;
}

/** rookery.v1.RestoreService of one tier (POST/GET /restores, GET /restores/:id, POST /restores/:id/cancel). */
export function createRestoresGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class RestoresGrpcController {
    constructor(readonly restores: RestoreJobService) {}

    @GrpcMethod('RestoreService', 'StartRestore')
    @RequiresRole(OPERATE_ROLES)
    async startRestore(@Payload() request: StartRestoreRequest__Output, @CallerName() caller: string): Promise<RestoreRecord> {
      return toMessage(await this.restores.start(tier, restoreRequestPipe.transform(restRestoreRequest(request)), caller));
    }

    @GrpcMethod('RestoreService', 'GetRestore')
    @RequiresRole(READ_ROLES)
    getRestore(@Payload() request: GetRestoreRequest__Output): RestoreRecord {
      return toMessage(this.restores.served(tier, request.id));
    }

    @GrpcMethod('RestoreService', 'ListRestores')
    @RequiresRole(READ_ROLES)
    listRestores(): RestoreList {
      return { restores: toMessage(this.restores.list(tier)) };
    }

    @GrpcMethod('RestoreService', 'WatchRestore')
    @RequiresRole(READ_ROLES)
    watchRestore(@Payload() request: WatchRestoreRequest__Output): Observable<RestoreProgressUpdate> {
      this.restores.served(tier, request.id);
      return from(this.restores.watch(request.id)).pipe(map((update) => toMessage(update)));
    }

    @GrpcMethod('RestoreService', 'CancelRestore')
    @RequiresRole(OPERATE_ROLES)
    async cancelRestore(@Payload() request: CancelRestoreRequest__Output, @CallerName() caller: string): Promise<RestoreRecord> {
      this.restores.served(tier, request.id);
      return toMessage(await this.restores.cancel(request.id, caller));
    }
  }
  return RestoresGrpcController;
}

/** rookery.v1.HoldService of one tier (GET/POST /holds, DELETE /holds/:backup). */
export function createHoldsGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class HoldsGrpcController {
    constructor(
      readonly engine: RookeryEngine,
      @Inject(SERVICE_KIT_OPTIONS) readonly options: ResolvedServiceKitOptions,
    ) {}

    @GrpcMethod('HoldService', 'PlaceHold')
    @RequiresRole(OPERATE_ROLES)
    placeHold(@Payload() request: PlaceHoldRequest__Output, @CallerName() caller: string): Promise<Hold> {
      const { backup, reason } = placeHoldPipe.transform(fieldsOf(request));
      return this.engine.hold(tier, backup, reason, holderName(caller, this.options.serviceName));
    }

    @GrpcMethod('HoldService', 'ReleaseHold')
    @RequiresRole(OPERATE_ROLES)
    releaseHold(@Payload() request: ReleaseHoldRequest__Output): Promise<Hold> {
      return this.engine.releaseHold(tier, request.backup);
    }

    @GrpcMethod('HoldService', 'ListHolds')
    @RequiresRole(READ_ROLES)
    async listHolds(): Promise<HoldList> {
      return { holds: await this.engine.holds(tier) };
    }
  }
  return HoldsGrpcController;
}

/** rookery.v1.RetentionService of one tier (GET /retention/plan): what expiry would do now, a dry run. */
export function createRetentionGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class RetentionGrpcController {
    constructor(readonly engine: RookeryEngine) {}

    @GrpcMethod('RetentionService', 'PlanRetention')
    @RequiresRole(READ_ROLES)
    async planRetention(): Promise<RetentionPlanResult> {
      return toMessage(await this.engine.expire({ tier, dryRun: true }));
    }
  }
  return RetentionGrpcController;
}

/** Every rookery.v1 service a tier service offers. */
export function createTierGrpcControllers(tier: TierName): Type<unknown>[] {
  return [
    createBackupsGrpcController(tier),
    createRestoresGrpcController(tier),
    createHoldsGrpcController(tier),
    createRetentionGrpcController(tier),
  ];
}

/**
 * The fields a message carries, as a REST body would: unset ones (absent, or an unset message)
 * and proto-loader's oneof markers ('_type': 'type') left out, so a strict schema sees only what
 * the caller sent.
 */
function fieldsOf(message: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(message)
      .filter(([name, value]) => !name.startsWith('_') && value !== undefined && value !== null)
      .map(([name, value]) => [name, typeof value === 'object' && !Array.isArray(value) ? fieldsOf(value as object) : value]),
  );
}

/** StartRestore's target (a oneof) as POST /restores' body names it: `{ kind: 'logical' | 'physical', … }`. */
function restRestoreRequest(request: StartRestoreRequest__Output): Record<string, unknown> {
  const { backup, logical, physical } = request;
  const target = logical ? { kind: 'logical', ...fieldsOf(logical) } : physical ? { kind: 'physical', ...fieldsOf(physical) } : undefined;
  return { backup, target };
}
