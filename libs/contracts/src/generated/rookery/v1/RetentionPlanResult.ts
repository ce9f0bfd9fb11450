// Original file: proto/rookery/v1/retention.proto

import type { RetentionPlan as _rookery_v1_RetentionPlan, RetentionPlan__Output as _rookery_v1_RetentionPlan__Output } from '../../rookery/v1/RetentionPlan';
import type { SkippedBackup as _rookery_v1_SkippedBackup, SkippedBackup__Output as _rookery_v1_SkippedBackup__Output } from '../../rookery/v1/SkippedBackup';
import type { Deleted as _rookery_v1_Deleted, Deleted__Output as _rookery_v1_Deleted__Output } from '../../rookery/v1/Deleted';
import type { DamagedManifest as _rookery_v1_DamagedManifest, DamagedManifest__Output as _rookery_v1_DamagedManifest__Output } from '../../rookery/v1/DamagedManifest';
import type { ObjectLockCheck as _rookery_v1_ObjectLockCheck, ObjectLockCheck__Output as _rookery_v1_ObjectLockCheck__Output } from '../../rookery/v1/ObjectLockCheck';

export interface RetentionPlanResult {
  'tier'?: (string);
  'dryRun'?: (boolean);
  'plan'?: (_rookery_v1_RetentionPlan | null);
  'skipped'?: (_rookery_v1_SkippedBackup)[];
  'deleted'?: (_rookery_v1_Deleted | null);
  'damaged'?: (_rookery_v1_DamagedManifest)[];
  'objectLock'?: (_rookery_v1_ObjectLockCheck | null);
}

export interface RetentionPlanResult__Output {
  'tier': (string);
  'dryRun': (boolean);
  'plan': (_rookery_v1_RetentionPlan__Output | null);
  'skipped': (_rookery_v1_SkippedBackup__Output)[];
  'deleted': (_rookery_v1_Deleted__Output | null);
  'damaged': (_rookery_v1_DamagedManifest__Output)[];
  'objectLock': (_rookery_v1_ObjectLockCheck__Output | null);
}
