import { Controller, Type } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type {
  BackupList,
  BackupRecord,
  GetBackupRequest__Output,
  Hold,
  HoldList,
  PlaceHoldRequest__Output,
  ReleaseHoldRequest__Output,
  RetentionPlanResult,
  StartBackupRequest__Output,
} from '@rookery/contracts';
import { BackupType, ConfigError, TierName } from '@rookery/core';
import { RookeryEngine } from '@rookery/engine';
import { OPERATE_ROLES, READ_ROLES, RequiresRole } from '../auth/auth.decorator';
import { principalOfCall } from '../auth/rpc-request';
import { BackupJobService } from '../backups/backup-jobs.service';
import { toMessage } from './grpc-message';

/**
 * rookery.v1.BackupService of one tier: the operations of POST/GET /backups with the same roles,
 * on the same BackupJobService. The handler's third argument is grpc-js' call, which carries the
 * principal AuthGuard verified.
 */
export function createBackupsGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class BackupsGrpcController {
    constructor(readonly backups: BackupJobService) {}

    @GrpcMethod('BackupService', 'StartBackup')
    @RequiresRole(OPERATE_ROLES)
    async startBackup(request: StartBackupRequest__Output, _metadata: unknown, call: object): Promise<BackupRecord> {
      const requestedBy = principalOfCall(call)?.name ?? 'grpc';
      return toMessage(await this.backups.start(tier, { requestedBy, type: backupType(request.type) }));
    }

    @GrpcMethod('BackupService', 'GetBackup')
    @RequiresRole(READ_ROLES)
    async getBackup(request: GetBackupRequest__Output): Promise<BackupRecord> {
      return toMessage(await this.backups.get(tier, request.id));
    }

    @GrpcMethod('BackupService', 'ListBackups')
    @RequiresRole(READ_ROLES)
    async listBackups(): Promise<BackupList> {
      return { backups: toMessage(await this.backups.list(tier)) };
    }
  }
  return BackupsGrpcController;
}

/** rookery.v1.HoldService of one tier: legal holds straight on the engine (as `rookery hold`). */
export function createHoldsGrpcController(tier: TierName): Type<unknown> {
  @Controller()
  class HoldsGrpcController {
    constructor(readonly engine: RookeryEngine) {}

    @GrpcMethod('HoldService', 'PlaceHold')
    @RequiresRole(OPERATE_ROLES)
    placeHold(request: PlaceHoldRequest__Output): Promise<Hold> {
      if (!request.backup) throw new ConfigError('backup: name the backup id to hold', ['backup']);
      if (!request.reason.trim()) throw new ConfigError('reason: say why the backup is held (a case, a ticket)', ['reason']);
      return this.engine.hold(tier, request.backup, request.reason);
    }

    @GrpcMethod('HoldService', 'ReleaseHold')
    @RequiresRole(OPERATE_ROLES)
    releaseHold(request: ReleaseHoldRequest__Output): Promise<Hold> {
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

/** rookery.v1.RetentionService of one tier: what expiry would do now (a dry run, as GET /retention/plan). */
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
  return [createBackupsGrpcController(tier), createHoldsGrpcController(tier), createRetentionGrpcController(tier)];
}

/** The backup types a request may name (the tier's policy decides which it takes). */
const BACKUP_TYPES: readonly BackupType[] = ['full', 'incremental', 'snapshot'];

function backupType(value: string | undefined): BackupType | undefined {
  if (value === undefined || value === '') return undefined;
  const known = BACKUP_TYPES.find((type) => type === value);
  if (known) return known;
  throw new ConfigError(`type: '${value}' is not a backup type (${BACKUP_TYPES.join(', ')})`, ['type']);
}
