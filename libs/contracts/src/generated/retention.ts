import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { DamagedManifest as _rookery_v1_DamagedManifest, DamagedManifest__Output as _rookery_v1_DamagedManifest__Output } from './rookery/v1/DamagedManifest';
import type { Deleted as _rookery_v1_Deleted, Deleted__Output as _rookery_v1_Deleted__Output } from './rookery/v1/Deleted';
import type { ExpiredBackup as _rookery_v1_ExpiredBackup, ExpiredBackup__Output as _rookery_v1_ExpiredBackup__Output } from './rookery/v1/ExpiredBackup';
import type { ExpiredWal as _rookery_v1_ExpiredWal, ExpiredWal__Output as _rookery_v1_ExpiredWal__Output } from './rookery/v1/ExpiredWal';
import type { KeptBackup as _rookery_v1_KeptBackup, KeptBackup__Output as _rookery_v1_KeptBackup__Output } from './rookery/v1/KeptBackup';
import type { KeptWalRange as _rookery_v1_KeptWalRange, KeptWalRange__Output as _rookery_v1_KeptWalRange__Output } from './rookery/v1/KeptWalRange';
import type { LocalCopies as _rookery_v1_LocalCopies, LocalCopies__Output as _rookery_v1_LocalCopies__Output } from './rookery/v1/LocalCopies';
import type { ObjectLockCheck as _rookery_v1_ObjectLockCheck, ObjectLockCheck__Output as _rookery_v1_ObjectLockCheck__Output } from './rookery/v1/ObjectLockCheck';
import type { OrphanFolder as _rookery_v1_OrphanFolder, OrphanFolder__Output as _rookery_v1_OrphanFolder__Output } from './rookery/v1/OrphanFolder';
import type { PlanRetentionRequest as _rookery_v1_PlanRetentionRequest, PlanRetentionRequest__Output as _rookery_v1_PlanRetentionRequest__Output } from './rookery/v1/PlanRetentionRequest';
import type { RetentionExpire as _rookery_v1_RetentionExpire, RetentionExpire__Output as _rookery_v1_RetentionExpire__Output } from './rookery/v1/RetentionExpire';
import type { RetentionKeep as _rookery_v1_RetentionKeep, RetentionKeep__Output as _rookery_v1_RetentionKeep__Output } from './rookery/v1/RetentionKeep';
import type { RetentionPlan as _rookery_v1_RetentionPlan, RetentionPlan__Output as _rookery_v1_RetentionPlan__Output } from './rookery/v1/RetentionPlan';
import type { RetentionPlanResult as _rookery_v1_RetentionPlanResult, RetentionPlanResult__Output as _rookery_v1_RetentionPlanResult__Output } from './rookery/v1/RetentionPlanResult';
import type { RetentionServiceClient as _rookery_v1_RetentionServiceClient, RetentionServiceDefinition as _rookery_v1_RetentionServiceDefinition } from './rookery/v1/RetentionService';
import type { SkippedBackup as _rookery_v1_SkippedBackup, SkippedBackup__Output as _rookery_v1_SkippedBackup__Output } from './rookery/v1/SkippedBackup';
import type { WalCut as _rookery_v1_WalCut, WalCut__Output as _rookery_v1_WalCut__Output } from './rookery/v1/WalCut';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  rookery: {
    v1: {
      DamagedManifest: MessageTypeDefinition<_rookery_v1_DamagedManifest, _rookery_v1_DamagedManifest__Output>
      Deleted: MessageTypeDefinition<_rookery_v1_Deleted, _rookery_v1_Deleted__Output>
      ExpiredBackup: MessageTypeDefinition<_rookery_v1_ExpiredBackup, _rookery_v1_ExpiredBackup__Output>
      ExpiredWal: MessageTypeDefinition<_rookery_v1_ExpiredWal, _rookery_v1_ExpiredWal__Output>
      KeptBackup: MessageTypeDefinition<_rookery_v1_KeptBackup, _rookery_v1_KeptBackup__Output>
      KeptWalRange: MessageTypeDefinition<_rookery_v1_KeptWalRange, _rookery_v1_KeptWalRange__Output>
      LocalCopies: MessageTypeDefinition<_rookery_v1_LocalCopies, _rookery_v1_LocalCopies__Output>
      ObjectLockCheck: MessageTypeDefinition<_rookery_v1_ObjectLockCheck, _rookery_v1_ObjectLockCheck__Output>
      OrphanFolder: MessageTypeDefinition<_rookery_v1_OrphanFolder, _rookery_v1_OrphanFolder__Output>
      PlanRetentionRequest: MessageTypeDefinition<_rookery_v1_PlanRetentionRequest, _rookery_v1_PlanRetentionRequest__Output>
      RetentionExpire: MessageTypeDefinition<_rookery_v1_RetentionExpire, _rookery_v1_RetentionExpire__Output>
      RetentionKeep: MessageTypeDefinition<_rookery_v1_RetentionKeep, _rookery_v1_RetentionKeep__Output>
      RetentionPlan: MessageTypeDefinition<_rookery_v1_RetentionPlan, _rookery_v1_RetentionPlan__Output>
      RetentionPlanResult: MessageTypeDefinition<_rookery_v1_RetentionPlanResult, _rookery_v1_RetentionPlanResult__Output>
      RetentionService: SubtypeConstructor<typeof grpc.Client, _rookery_v1_RetentionServiceClient> & { service: _rookery_v1_RetentionServiceDefinition }
      SkippedBackup: MessageTypeDefinition<_rookery_v1_SkippedBackup, _rookery_v1_SkippedBackup__Output>
      WalCut: MessageTypeDefinition<_rookery_v1_WalCut, _rookery_v1_WalCut__Output>
    }
  }
}

