// Original file: proto/rookery/v1/retention.proto

import type { RetentionExpire as _rookery_v1_RetentionExpire, RetentionExpire__Output as _rookery_v1_RetentionExpire__Output } from '../../rookery/v1/RetentionExpire';
import type { RetentionKeep as _rookery_v1_RetentionKeep, RetentionKeep__Output as _rookery_v1_RetentionKeep__Output } from '../../rookery/v1/RetentionKeep';
import type { WalCut as _rookery_v1_WalCut, WalCut__Output as _rookery_v1_WalCut__Output } from '../../rookery/v1/WalCut';
import type { LocalCopies as _rookery_v1_LocalCopies, LocalCopies__Output as _rookery_v1_LocalCopies__Output } from '../../rookery/v1/LocalCopies';
import type { Long } from '@grpc/proto-loader';

export interface RetentionPlan {
  'tier'?: (string);
  'now'?: (string);
  'expire'?: (_rookery_v1_RetentionExpire | null);
  'keep'?: (_rookery_v1_RetentionKeep | null);
  'walCut'?: (_rookery_v1_WalCut | null);
  'localCopies'?: (_rookery_v1_LocalCopies | null);
  'bytesFreed'?: (number | string | Long);
}

export interface RetentionPlan__Output {
  'tier': (string);
  'now': (string);
  'expire': (_rookery_v1_RetentionExpire__Output | null);
  'keep': (_rookery_v1_RetentionKeep__Output | null);
  'walCut': (_rookery_v1_WalCut__Output | null);
  'localCopies': (_rookery_v1_LocalCopies__Output | null);
  'bytesFreed': (number);
}
